"""Fixtures for the clips API tests: real clips (PyAV), real tus uploads, signed-in wallets.

The ingest pipeline does not run in these tests (``ingest_workers=0``): where a test needs
a clip in a later state, it moves the row there directly in the database, standing in
for the pipeline (probing/queued, with the real probe's facts and poster) or for
consensus (accepted). Everything else goes through the HTTP API.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.main import create_app
from backend.models.clips import Clip
from shotbank.chain.siwe import build_siwe_message, sign_siwe_message
from tests.backend.conftest import SettingsFactory
from tests.backend.live import DOMAIN, TUS, URI
from tests.ingest.mediagen import ClipSpec, make_clip

#: A valid annotation of the default test clip (3 s, with sound); tests copy and vary it.
ANNOTATION: dict[str, Any] = {
    "schema_version": "1",
    "scene": {
        "description": "A grey gradient slides across the frame while a tone plays.",
        "tags": ["Test", "gradient"],
        "setting": "interior",
    },
    "camera": {
        "movement": "truck",
        "direction": "right",
        "lens": {"focal_length_mm": 35, "sensor": "super35"},
        "path": {
            "position_scale": "metric",
            "keyframes": [
                {"time_s": 0, "position_m": [0, 0, 1.5], "orientation_wxyz": [1, 0, 0, 0]},
                {"time_s": 2.5, "position_m": [1.2, 0, 1.5], "orientation_wxyz": [1, 0, 0, 0]},
            ],
        },
    },
    "lighting": {"setup": "high_key", "contrast": "low"},
    "audio": {"genre": "ambience", "dialogue": False, "recording": "studio"},
    "rights": {
        "licence": "cc0-1.0",
        "model_release": "not_required",
        "location_release": "not_required",
    },
}


def annotation(**sections: Any) -> dict[str, Any]:
    """A deep copy of :data:`ANNOTATION` with whole sections replaced."""
    document = copy.deepcopy(ANNOTATION)
    document.update(sections)
    return document


def camera_path_text(*times_us: int, header: str | None = "https://example.test/source") -> str:
    """A RealEstate10K-style text: one identity-rotation pose per timestamp (microseconds)."""
    lines = [header] if header is not None else []
    for number, stamp in enumerate(times_us):
        x = 0.1 * number
        lines.append(f"{stamp} 0.5 0.9 0.5 0.5 0 0 1 0 0 {x} 0 1 0 0 0 0 1 0")
    return "\n".join(lines) + "\n"


# --- real media -------------------------------------------------------------------------

MediaFactory = Callable[[int], bytes]


@pytest.fixture(scope="session")
def encoded_clips(tmp_path_factory: pytest.TempPathFactory) -> MediaFactory:
    """``encoded_clips(n)``: a real 3 s 640x480 H.264/AAC MP4, a different one for each n."""
    folder = tmp_path_factory.mktemp("clips-media")
    made: dict[int, bytes] = {}

    def factory(number: int) -> bytes:
        if number not in made:
            # Tones must fit whole periods in a 20 ms audio chunk: multiples of 50 Hz.
            spec = ClipSpec(tone_hz=200.0 + 50.0 * number)
            made[number] = make_clip(folder / f"clip-{number}.mp4", spec).read_bytes()
        return made[number]

    return factory


@pytest.fixture
def media(encoded_clips: MediaFactory) -> MediaFactory:
    """``media(n)``: clip n, made unique to this test by a trailing MP4 ``free`` box.

    Same n, same bytes within a test; never the same bytes as another test's, so tests
    sharing one database (PostgreSQL) never see each other's clips as duplicates.
    """
    salt = secrets.token_bytes(16)

    def factory(number: int) -> bytes:
        free_box = struct.pack(">I4s", 8 + len(salt), b"free") + salt
        return encoded_clips(number) + free_box

    return factory


# --- wallets and their requests -----------------------------------------------------------


@dataclass
class Contributor:
    """A signed-in wallet making requests through ``http`` (a TestClient or an httpx client)."""

    http: httpx.Client
    address: str
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kwargs)

    def start_upload(self, length: int, first: bytes = b"", filename: str = "shot.mp4") -> str:
        """Create a tus upload of ``length`` bytes (``first`` as its first chunk); its id."""
        metadata = "filename " + base64.b64encode(filename.encode()).decode()
        headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata}
        if first:
            headers["Content-Type"] = "application/offset+octet-stream"
        response = self.request("POST", "/api/v1/uploads/", headers=headers, content=first)
        assert response.status_code == 201, response.text
        return response.headers["location"].rsplit("/", 1)[1]

    def upload(self, data: bytes, filename: str = "shot.mp4") -> str:
        """A complete tus upload of ``data``; its id."""
        upload_id = self.start_upload(len(data), data, filename)
        info = self.request("GET", f"/api/v1/uploads/{upload_id}", headers=TUS).json()
        assert info["state"] == "complete"
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        return upload_id

    def submit(
        self,
        upload_id: str,
        document: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {"upload_id": upload_id, "annotation": document or ANNOTATION, **extra}
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.request("POST", "/api/v1/clips", json=body, headers=headers)

    def submitted(self, data: bytes, document: dict[str, Any] | None = None) -> dict[str, Any]:
        """Upload ``data`` and submit it; the owner's view of the new clip."""
        response = self.submit(self.upload(data), document)
        assert response.status_code == 202, response.text
        view: dict[str, Any] = response.json()
        return view


def api_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error object of ``response``, asserting its HTTP status and error code."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def session_token(http: httpx.Client, account: LocalAccount) -> str:
    """Sign ``account`` in through the API; its bearer token."""
    nonce = http.get("/api/v1/auth/nonce").json()["nonce"]
    message = build_siwe_message(
        domain=DOMAIN, address=account.address, uri=URI, chain_id=31337, nonce=nonce
    )
    response = http.post(
        "/api/v1/auth/verify",
        json={"message": message, "signature": sign_siwe_message(account, message)},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def contributor_on(http: httpx.Client, account: LocalAccount | None = None) -> Contributor:
    """A fresh (or the given) wallet signed in on ``http``."""
    account = account or Account.create()
    token = session_token(http, account)
    return Contributor(
        http=http, address=account.address, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
def clip_settings(upload_settings: SettingsFactory) -> Settings:
    """Settings for the clips tests: SIWE for the test domain, no ingest workers."""
    return upload_settings(ingest_workers=0)


@pytest.fixture
def api(clip_settings: Settings) -> Iterator[TestClient]:
    """The real application (migrated on start-up) behind a TestClient."""
    with TestClient(create_app(clip_settings)) as client:
        yield client


@pytest.fixture
def wallet(api: TestClient) -> Callable[[], Contributor]:
    """``wallet()``: a new signed-in contributor on ``api``."""
    return lambda: contributor_on(api)


@pytest.fixture
def alice(wallet: Callable[[], Contributor]) -> Contributor:
    """A signed-in contributor."""
    return wallet()


@pytest.fixture
def bob(wallet: Callable[[], Contributor]) -> Contributor:
    """Another signed-in contributor."""
    return wallet()


# --- the database, standing in for the pipeline and for consensus ---------------------------


@pytest.fixture
def engine(clip_settings: Settings) -> Iterator[Engine]:
    """An engine on the app's database, for what the API cannot do (yet)."""
    built = create_db_engine(clip_settings)
    yield built
    built.dispose()


def set_clip(engine: Engine, clip_id: str, **values: Any) -> None:
    """Change a clip's row directly, as the pipeline or consensus would."""
    with Session(engine) as db:
        done = db.execute(update(Clip).where(col(Clip.id) == clip_id).values(**values))
        assert getattr(done, "rowcount", 0) == 1
        db.commit()


def stored_clip(engine: Engine, clip_id: str) -> Clip:
    """The clip's row as stored."""
    with Session(engine) as db:
        clip = db.get(Clip, clip_id)
        assert clip is not None
        db.expunge(clip)
        return clip


def blob_dir(settings: Settings) -> Path:
    """Where the app's local blob store keeps its files."""
    return settings.blob_path
