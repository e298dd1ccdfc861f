"""Signed requests on a live server: a trainer's key alone downloads a licensed shard
(Range included) and lists its licences, and every bad header gets its documented 401.

The header is made by the SDK's own signer (``shotbank.client.signed.sign_request``), so
client and server are tested against each other; licences are rows as the market
indexer writes them (the indexer is tested on anvil in ``test_marketsync.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.errors import RequestReplayedError
from backend.services.signedreq import verify_signed_request
from shotbank.client.signed import MAX_AUTHORIZATION_BYTES, sign_request
from tests.backend.dataset_fixtures import (  # noqa: F401 - fixtures used by name
    Packed,
    clips,
    operator,
    packed,
    server,
)
from tests.backend.live import LiveServer

CHAIN_ID = 31337


@pytest.fixture
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:  # noqa: F811 - the fixture
    """A client with no session at all."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def buyer(packed: Packed) -> LocalAccount:  # noqa: F811 - the imported fixture
    """A wallet holding a licence for the packed version (no session anywhere)."""
    account: LocalAccount = Account.create()
    packed.license(account.address)
    return account


def _signed(account: LocalAccount, path: str, *, method: str = "GET", **kwargs: object) -> str:
    return sign_request(account, method, path, b"", CHAIN_ID, **kwargs)  # type: ignore[arg-type]


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_a_signed_request_downloads_a_licensed_shard_with_range(
    packed: Packed,  # noqa: F811 - the imported fixture
    buyer: LocalAccount,
    anonymous: httpx.Client,
) -> None:
    name, data, sha256 = packed.shard()
    path = f"{packed.base}/shards/{name}"
    whole = anonymous.get(path, headers={"Authorization": _signed(buyer, path)})
    assert (whole.status_code, whole.content) == (200, data)
    assert whole.headers["etag"] == f'"{sha256}"'
    part = anonymous.get(
        path, headers={"Authorization": _signed(buyer, path), "Range": "bytes=100-1123"}
    )
    assert (part.status_code, part.content) == (206, data[100:1124])
    head = anonymous.head(path, headers={"Authorization": _signed(buyer, path, method="HEAD")})
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))

    # Parallel Range requests, each with its own fresh nonce, all succeed.
    def fetch(start: int) -> httpx.Response:
        headers = {"Authorization": _signed(buyer, path), "Range": f"bytes={start}-{start + 99}"}
        return anonymous.get(path, headers=headers)

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(fetch, range(0, 800, 100)))
    assert [(p.status_code, p.content) for p in parts] == [
        (206, data[start : start + 100]) for start in range(0, 800, 100)
    ]


def test_a_signed_request_speaks_for_its_signer_only(
    packed: Packed,  # noqa: F811 - the imported fixture
    anonymous: httpx.Client,
) -> None:
    stranger: LocalAccount = Account.create()
    name, _, _ = packed.shard()
    path = f"{packed.base}/shards/{name}"
    refused = anonymous.get(path, headers={"Authorization": _signed(stranger, path)})
    assert _error(refused) == (402, "licence_required")
    assert stranger.address in refused.json()["error"]["message"]
    assert _error(anonymous.get(path)) == (401, "unauthenticated")


def test_bad_signed_requests_get_their_documented_401_codes(
    packed: Packed,  # noqa: F811 - the imported fixture
    buyer: LocalAccount,
    anonymous: httpx.Client,
) -> None:
    name, _, _ = packed.shard()
    path = f"{packed.base}/shards/{name}"
    other: LocalAccount = Account.create()
    now = int(time.time())
    forged = _signed(other, path).replace(other.address, buyer.address)
    cases = {
        "malformed": ("Shotbank-Signature address=0x12, timestamp=1", "invalid_authorization"),
        "oversized": (
            _signed(buyer, path) + ", pad=" + "0" * MAX_AUTHORIZATION_BYTES,
            "invalid_authorization",
        ),
        "forged (another key, the buyer's address)": (forged, "request_signature_invalid"),
        "another path": (_signed(buyer, path + "?x=1"), "request_signature_invalid"),
        "another method": (_signed(buyer, path, method="POST"), "request_signature_invalid"),
        "another chain": (sign_request(buyer, "GET", path, b"", 1), "request_signature_invalid"),
        "stale": (_signed(buyer, path, timestamp=now - 400), "request_expired"),
        "from the future": (_signed(buyer, path, timestamp=now + 400), "request_expired"),
    }
    for case, (header, code) in cases.items():
        answer = anonymous.get(path, headers={"Authorization": header})
        assert _error(answer) == (401, code), case
    oversized = _signed(buyer, path) + ", pad=" + "0" * MAX_AUTHORIZATION_BYTES
    refused = anonymous.get(path, headers={"Authorization": oversized})
    assert "longer than 1024 bytes" in refused.json()["error"]["message"]
    once = _signed(buyer, path)
    assert anonymous.get(path, headers={"Authorization": once}).status_code == 200
    assert _error(anonymous.get(path, headers={"Authorization": once})) == (
        401,
        "request_replayed",
    )


def test_licences_are_listed_for_a_signed_caller_and_publicly_by_address(
    packed: Packed,  # noqa: F811 - the imported fixture
    buyer: LocalAccount,
    anonymous: httpx.Client,
) -> None:
    packed.license(buyer.address, block=9)
    path = "/api/v1/licences"
    mine = anonymous.get(path, headers={"Authorization": _signed(buyer, path)})
    assert mine.status_code == 200, mine.text
    licences = mine.json()["licences"]
    assert [item["block_number"] for item in licences] == [9, 7], "newest first"
    dataset_id = packed.base.split("/")[4]
    assert {(item["dataset_id"], item["number"]) for item in licences} == {(dataset_id, 1)}
    assert licences[0]["version_id"] == packed.version_id
    assert licences[0]["buyer"] == buyer.address
    assert licences[0]["price"] == str(10**18)
    public = anonymous.get(f"{path}/{buyer.address.lower()}")
    assert public.json() == mine.json()
    assert anonymous.get(f"{path}/0x{'00' * 20}").json() == {"licences": []}
    assert _error(anonymous.get(path)) == (401, "unauthenticated")


def test_a_nonce_is_accepted_once_even_under_concurrent_verification(
    settings: Settings,
) -> None:
    account: LocalAccount = Account.create()
    engine = create_db_engine(settings)
    upgrade_to_head(engine)
    header = _signed(account, "/x")

    def verify(_: int) -> str:
        with Session(engine) as db:
            try:
                return verify_signed_request(
                    db, authorization=header, method="GET", path="/x", body=b"", chain_id=CHAIN_ID
                )
            except RequestReplayedError:
                return "replayed"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(verify, range(4)))
    engine.dispose()
    assert outcomes == sorted([account.address, "replayed", "replayed", "replayed"])
