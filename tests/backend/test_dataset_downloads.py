"""Licensed shard downloads on a live server: access (401/402/operators), the shard name
allow-list, HTTP Range and conditional requests, against the real packed files.

The version is frozen and packed by the real routes and packer; licences are rows as the
market indexer writes them (the indexer itself is tested on anvil in
``test_marketsync.py``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session

from backend.models.licences import DatasetLicence, DatasetListing
from shotbank.chain.deployments import Deployment, save_deployment
from tests.backend.dataset_fixtures import (
    MARKET,
    Packed,
    clips,
    operator,
    packed,
    server,
)
from tests.backend.live import Caller, LiveServer

__all__ = ["clips", "operator", "packed", "server"]  # fixtures used here


@pytest.fixture
def trainer(server: LiveServer, caller_for: Callable[..., Caller], packed: Packed) -> Caller:
    """A signed-in wallet holding a licence for the packed version."""
    account: LocalAccount = Account.create()
    packed.license(account.address)
    return caller_for(server, account)


def test_a_licensed_trainer_downloads_every_shard_byte_for_byte(
    packed: Packed, trainer: Caller
) -> None:
    for number in range(len(packed.index["shards"])):
        name, data, sha256 = packed.shard(number)
        response = trainer.http.get(f"{packed.base}/shards/{name}")
        assert response.status_code == 200, response.text
        assert response.content == data
        assert hashlib.sha256(response.content).hexdigest() == sha256
        assert response.headers["etag"] == f'"{sha256}"'
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["content-type"] == "application/x-tar"
        assert "private" in response.headers["cache-control"]
    head = trainer.http.head(f"{packed.base}/shards/{name}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert head.content == b""


def test_ranges_return_the_exact_bytes_and_an_unsatisfiable_range_is_416(
    packed: Packed, trainer: Caller
) -> None:
    name, data, _ = packed.shard()
    url = f"{packed.base}/shards/{name}"
    part = trainer.http.get(url, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.content == data[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(data)}"
    assert part.headers["content-length"] == "1024"
    tail = trainer.http.get(url, headers={"Range": "bytes=-700"})
    assert (tail.status_code, tail.content) == (206, data[-700:])
    assert tail.headers["content-range"] == f"bytes {len(data) - 700}-{len(data) - 1}/{len(data)}"
    rest = trainer.http.get(url, headers={"Range": f"bytes={len(data) - 5}-"})
    assert (rest.status_code, rest.content) == (206, data[-5:])
    past = trainer.http.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(data)}"
    assert past.json()["error"]["code"] == "range_not_satisfiable"
    several = trainer.http.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, data)


def test_conditional_requests_answer_304_and_a_stale_if_range_gets_the_whole_body(
    packed: Packed, trainer: Caller
) -> None:
    name, data, sha256 = packed.shard(1)
    url = f"{packed.base}/shards/{name}"
    etag = f'"{sha256}"'
    fresh = trainer.http.get(url, headers={"If-None-Match": etag})
    assert (fresh.status_code, fresh.content) == (304, b"")
    assert fresh.headers["etag"] == etag
    other = trainer.http.get(url, headers={"If-None-Match": '"' + "0" * 64 + '"'})
    assert (other.status_code, other.content) == (200, data)
    resumed = trainer.http.get(url, headers={"Range": "bytes=10-19", "If-Range": etag})
    assert (resumed.status_code, resumed.content) == (206, data[10:20])
    stale = trainer.http.get(
        url, headers={"Range": "bytes=10-19", "If-Range": '"' + "1" * 64 + '"'}
    )
    assert (stale.status_code, stale.content) == (200, data)
    dated = trainer.http.get(
        url, headers={"Range": "bytes=10-19", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    assert (dated.status_code, dated.content) == (200, data)


def test_no_session_is_401_and_a_session_without_licence_is_402_naming_the_purchase(
    server: LiveServer, packed: Packed, caller_for: Callable[..., Caller]
) -> None:
    name, _, _ = packed.shard()
    url = f"{packed.base}/shards/{name}"
    with httpx.Client(base_url=server.url) as anonymous:
        refused = anonymous.get(url)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
    stranger_account: LocalAccount = Account.create()
    stranger = caller_for(server, stranger_account)
    unlisted = stranger.http.get(url)
    assert unlisted.status_code == 402
    assert unlisted.json()["error"]["code"] == "licence_required"
    assert "no DatasetMarket is deployed on chain 31337" in unlisted.json()["error"]["message"]
    assert f"purchase({packed.version_id}, maxPrice)" in unlisted.json()["error"]["message"]

    save_deployment(
        server.settings.deployments_path,
        Deployment(chain_id=31337, start_block=0, contracts={"DatasetMarket": MARKET}),
    )
    market = Deployment(chain_id=31337, start_block=0, contracts={"DatasetMarket": MARKET})
    address = market.contracts["DatasetMarket"]
    message = stranger.http.get(url).json()["error"]["message"]
    assert f"the version is not listed on DatasetMarket({address}) on chain 31337" in message
    with Session(packed.world.engine) as db:
        db.add(
            DatasetListing(
                version_id=packed.version_id,
                manifest_hash=packed.version_id,
                price=25 * 10**17,
                terms_uri="ipfs://terms",
                lister=address,
                block_number=3,
                log_index=0,
                block_hash="0x" + "ab" * 32,
                tx_hash="0x" + "cd" * 32,
            )
        )
        db.commit()
    listed = stranger.http.get(url)
    assert listed.status_code == 402
    assert (
        f"buy a licence with DatasetMarket({address}).purchase({packed.version_id}, "
        f"{25 * 10**17}) on chain 31337 (price 2.5 SHOT" in listed.json()["error"]["message"]
    )
    assert "access follows 3 confirmations after the purchase" in listed.json()["error"]["message"]
    assert stranger.http.head(url).status_code == 402
    packed.license(stranger_account.address)
    assert stranger.http.get(url).status_code == 200


def test_a_licence_for_another_version_grants_nothing(
    server: LiveServer, packed: Packed, caller_for: Callable[..., Caller]
) -> None:
    account: LocalAccount = Account.create()
    stranger = caller_for(server, account)
    with Session(packed.world.engine) as db:
        db.add(
            DatasetLicence(
                tx_hash="0x" + secrets.token_hex(32),
                log_index=0,
                version_id="0x" + secrets.token_hex(32),
                buyer=account.address,
                price=1,
                contributor_share=1,
                validator_share=0,
                treasury_share=0,
                block_number=1,
                block_hash="0x" + secrets.token_hex(32),
            )
        )
        db.commit()
    name, _, _ = packed.shard()
    assert stranger.http.get(f"{packed.base}/shards/{name}").status_code == 402


def test_only_shard_names_of_the_index_are_served(
    server: LiveServer, packed: Packed, trainer: Caller
) -> None:
    for name in (
        "index.json",
        "manifest.jsonl",
        "shard-999999.tar",
        "..%2Findex.json",
        "%2E%2E%2F%2E%2E%2Fshotbank.db",
        "shard-000000.tar%00",
    ):
        refused = trainer.http.get(f"{packed.base}/shards/{name}")
        assert refused.status_code == 404, (name, refused.text)
        assert refused.json()["error"]["code"] in {"dataset_shard_not_found", "not_found"}
    named = trainer.http.get(f"{packed.base}/shards/index.json").json()["error"]
    assert named["code"] == "dataset_shard_not_found"
    assert "is not a shard of version 1" in named["message"]
    unknown = trainer.http.get(f"{packed.base[:-1]}9/shards/shard-000000.tar")
    assert unknown.json()["error"]["code"] == "dataset_version_not_found"


def test_operators_download_without_a_licence(
    server: LiveServer,
    packed: Packed,
    caller_for: Callable[..., Caller],
    operator: LocalAccount,
) -> None:
    name, data, _ = packed.shard()
    response = caller_for(server, operator).http.get(f"{packed.base}/shards/{name}")
    assert (response.status_code, response.content) == (200, data)
