"""A live backend with two ready dataset versions, for the model-registration tests.

Real clips go through the real ingest and consensus (``tests.backend.datasets_world``),
an operator freezes them through the HTTP API and the server's own packer packs them:

* version 1 of dataset ``lineage``: ALICE 2 clips, BOB 1;
* version 2 of the same dataset, frozen after CAROL added a clip: ALICE 2, BOB 1, CAROL 1
  -- so the two versions share contributors, and two of them have equal counts.

Licences are rows as the market indexer writes them (the indexer is tested on anvil in
``test_marketsync.py``). Run records are built with :class:`shotbank.runs.RunRecord`
for a version; the real fine-tuning run that writes one is exercised by the SDK CLI test.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.models.datasets import DatasetCreate, DatasetVersion
from backend.models.licences import DatasetLicence
from backend.services import datasets
from ingest.blobstore import LocalBlobStore
from shotbank.runs import RunRecord
from tests.backend.datasets_world import NOW, DatasetWorld
from tests.backend.live import DOMAIN, URI, LiveServer, sign_in, start_server
from tests.ingest.mediagen import ClipSpec, make_clip

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
CAROL = "0x" + "c3" * 20
FIRST_OWNERS = (ALICE, ALICE, BOB)
SECOND_OWNERS = (CAROL,)


@dataclass(frozen=True)
class ReadyVersion:
    """A ready version as the API shows it, and its row id."""

    dataset_id: str
    number: int
    id: str
    version_hash: str
    samples: int


@dataclass
class ModelsWorld:
    """The live server, its database and the two versions."""

    server: LiveServer
    engine: Engine
    operator: LocalAccount
    first: ReadyVersion
    second: ReadyVersion

    @property
    def url(self) -> str:
        return self.server.url

    def license(self, buyer: str, version: ReadyVersion) -> None:
        """A licence row as the market indexer writes it for a purchase by ``buyer``."""
        with Session(self.engine) as db:
            db.add(
                DatasetLicence(
                    tx_hash="0x" + secrets.token_hex(32),
                    log_index=1,
                    version_id="0x" + version.version_hash,
                    buyer=buyer,
                    price=10**18,
                    contributor_share=7 * 10**17,
                    validator_share=2 * 10**17,
                    treasury_share=10**17,
                    block_number=7,
                    block_hash="0x" + secrets.token_hex(32),
                )
            )
            db.commit()

    def trainer(self) -> LocalAccount:
        """A fresh wallet holding a licence for the first version."""
        account: LocalAccount = Account.create()
        self.license(account.address, self.first)
        return account

    def http(self, account: LocalAccount | None = None) -> httpx.Client:
        """An HTTP client of the server, signed in as ``account`` when given."""
        headers = {}
        if account is not None:
            headers["Authorization"] = f"Bearer {sign_in(self.url, account)}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def run_record(version: ReadyVersion, **changes: Any) -> RunRecord:
    """A run record over ``version`` with fresh output weights (a new model hash)."""
    started = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    held = max(1, version.samples // 3)
    document: dict[str, Any] = {
        "dataset": {
            "version_hash": version.version_hash,
            "samples": version.samples,
            "train_samples": version.samples - held,
            "held_out_samples": held,
        },
        "base_model": {
            "name": "shotbank-tiny",
            "tag": "synthetic-v1",
            "weights_sha256": hashlib.sha256(b"base weights").hexdigest(),
        },
        "hyperparameters": {"steps": 2, "batch_size": 2, "lr": 0.001, "seed": 1},
        "device": "cpu",
        "metrics": [
            {
                "step": 0,
                "train_loss": None,
                "text_to_clip": {"r@1": 0.25, "r@5": 1.0},
                "clip_to_text": {"r@1": 0.5, "r@5": 1.0},
            },
            {
                "step": 2,
                "train_loss": 1.5,
                "text_to_clip": {"r@1": 0.5, "r@5": 1.0},
                "clip_to_text": {"r@1": 0.75, "r@5": 1.0},
            },
        ],
        "output": {
            "file": "model.safetensors",
            "sha256": secrets.token_hex(32),
            "size": 1234,
        },
        "started_at": started.isoformat(),
        "finished_at": (started + timedelta(minutes=3)).isoformat(),
    }
    document.update(changes)
    return RunRecord.model_validate(document)


@contextmanager
def _clean_environment() -> Iterator[None]:
    """Settings built with no ``SHOTBANK_*`` variable of the machine (module fixtures run
    outside the function-scoped fixture that clears them)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SHOTBANK_"):
                patch.delenv(name)
        yield


def _wait_ready(http: httpx.Client, dataset_id: str, number: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    path = f"/api/v1/datasets/{dataset_id}/versions/{number}"
    while (summary := http.get(path).json())["status"] == "packing":
        assert time.monotonic() < deadline, "the packer did not finish the version"
        time.sleep(0.05)
    assert summary["status"] == "ready", summary
    return dict(summary)


def _ready(engine: Engine, summary: dict[str, Any]) -> ReadyVersion:
    with Session(engine) as db:
        row = db.exec(
            select(DatasetVersion).where(
                col(DatasetVersion.version_hash) == summary["version_hash"]
            )
        ).one()
        return ReadyVersion(
            dataset_id=row.dataset_id,
            number=row.number,
            id=row.id,
            version_hash=summary["version_hash"],
            samples=summary["samples"],
        )


def _clips(folder: Path, tone_base: float) -> list[bytes]:
    """Small real MP4s, one per owner of both versions, distinct by their tone."""
    return [
        make_clip(
            folder / f"clip-{n}.mp4",
            ClipSpec(width=160, height=120, seconds=2.0, tone_hz=tone_base + 50 * n),
        ).read_bytes()
        for n in range(len(FIRST_OWNERS) + len(SECOND_OWNERS))
    ]


def frozen_versions(
    world: DatasetWorld, folder: Path, *, tone_base: float
) -> tuple[ReadyVersion, ReadyVersion]:
    """Both versions made through the services (no server): define, freeze, pack."""
    clips = _clips(folder, tone_base)
    operator = world.settings.operators[0]
    with Session(world.engine) as db:
        dataset_id = datasets.create_dataset(
            db,
            request=DatasetCreate(slug=f"lineage-{secrets.token_hex(4)}", title="Lineage"),
            created_by=operator,
            now=NOW,
        ).id
    made = []
    for data_and_owners in (
        zip(clips, FIRST_OWNERS, strict=False),
        zip(clips[len(FIRST_OWNERS) :], SECOND_OWNERS, strict=True),
    ):
        for data, owner in data_and_owners:
            world.accepted(data, owner=owner)
        version = datasets.freeze_version(
            world.engine,
            settings=world.settings,
            dataset_id=dataset_id,
            created_by=operator,
            now=NOW,
        )
        while datasets.pack_next(world.engine, settings=world.settings, blobs=world.blobs):
            pass
        with Session(world.engine) as db:
            summary = datasets.version_view(db, dataset_id=dataset_id, number=version.number)
        made.append(_ready(world.engine, summary.model_dump(mode="json")))
    return made[0], made[1]


@contextmanager
def models_world(folder: Path, *, tone_base: float = 300.0) -> Iterator[ModelsWorld]:
    """Start the server under ``folder``, make both versions, stop it afterwards.

    ``tone_base`` makes the clips' bytes (hence the versions' hashes) differ from those
    of another world on the same database.
    """
    operator: LocalAccount = Account.create()
    with socket.socket() as sock:  # a port nothing listens on: no chain node
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with _clean_environment():
        settings = Settings(
            var_dir=folder / "var",
            chain_rpc_url=f"http://127.0.0.1:{closed_port}",
            chain_rpc_timeout_s=2.0,
            siwe_domain=DOMAIN,
            siwe_uri=URI,
            operators=[operator.address],
            ingest_workers=0,
            ingest_min_short_side=120,
            dataset_poll_s=0.05,
        )
    server = start_server(settings)
    engine = create_db_engine(settings)
    try:
        world = DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))
        clips = _clips(folder, tone_base)
        with httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {sign_in(server.url, operator)}"},
            timeout=30,
        ) as http:
            for data, owner in zip(clips, FIRST_OWNERS, strict=False):
                world.accepted(data, owner=owner)
            made = http.post(
                "/api/v1/datasets", json={"slug": "lineage", "title": "Lineage", "filter": {}}
            )
            assert made.status_code == 201, made.text
            dataset_id = made.json()["id"]
            frozen = http.post(f"/api/v1/datasets/{dataset_id}/versions")
            assert frozen.status_code == 202, frozen.text
            first = _ready(engine, _wait_ready(http, dataset_id, 1))
            for data, owner in zip(clips[len(FIRST_OWNERS) :], SECOND_OWNERS, strict=True):
                world.accepted(data, owner=owner)
            frozen = http.post(f"/api/v1/datasets/{dataset_id}/versions")
            assert frozen.status_code == 202, frozen.text
            second = _ready(engine, _wait_ready(http, dataset_id, 2))
        yield ModelsWorld(server, engine, operator, first, second)
    finally:
        engine.dispose()
        server.stop()
