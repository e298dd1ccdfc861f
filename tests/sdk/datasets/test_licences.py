"""``client.licences()`` on a live backend: the caller's licences by session or by signed
request (no sign-in), anyone's by address, newest first, parsed into ``Licence``.

Licences are rows as the market indexer writes them (the indexer itself, on anvil, is
exercised by ``test_buy.py``)."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, col, func, select

import shotbank
from backend.models.licences import DatasetLicence, RequestNonce
from shotbank.client import NotSignedInError, ShotbankClient
from shotbank.client.models import Licence
from shotbank.client.signed import EMPTY_BODY_SHA256, parse_authorization, recover_request_signer
from tests.backend.conftest import (
    _no_shotbank_environment,
    caller_for,
    closed_port,
    live,
    make_settings,
    upload_settings,
)
from tests.backend.dataset_fixtures import Packed, clips, operator, packed, server
from tests.backend.live import LiveServer
from tests.sdk.datasets.market_world import dataset_id

__all__ = [
    "_no_shotbank_environment",
    "caller_for",
    "clips",
    "closed_port",
    "live",
    "make_settings",
    "operator",
    "packed",
    "server",
    "upload_settings",
]

FOREIGN_VERSION = "0x" + "f0" * 32


def _foreign_licence(packed: Packed, buyer: str, *, block: int) -> None:
    """A licence for a versionId that is no version of this backend."""
    with Session(packed.world.engine) as db:
        db.add(
            DatasetLicence(
                tx_hash="0x" + secrets.token_hex(32),
                log_index=0,
                version_id=FOREIGN_VERSION,
                buyer=buyer,
                price=5,
                contributor_share=3,
                validator_share=1,
                treasury_share=1,
                block_number=block,
                block_hash="0x" + secrets.token_hex(32),
            )
        )
        db.commit()


@pytest.fixture
def holder(packed: Packed) -> LocalAccount:
    """A wallet with two licences: the packed version (block 7), a foreign one (block 9)."""
    account: LocalAccount = Account.create()
    packed.license(account.address, block=7)
    _foreign_licence(packed, account.address, block=9)
    return account


def _check(found: list[Licence], packed: Packed, holder: LocalAccount) -> None:
    assert [licence.version_id for licence in found] == [FOREIGN_VERSION, packed.version_id]
    foreign, own = found
    assert (foreign.dataset_id, foreign.number, foreign.price) == (None, None, 5)
    assert (own.dataset_id, own.number, own.price) == (dataset_id(packed), 1, 10**18)
    assert {licence.buyer for licence in found} == {holder.address}
    assert own.contributor_share + own.validator_share + own.treasury_share == own.price
    assert own.block_number == 7


def _nonces(packed: Packed, address: str) -> int:
    with Session(packed.world.engine) as db:
        count = db.exec(
            select(func.count())
            .select_from(RequestNonce)
            .where(col(RequestNonce.address) == address)
        ).one()
    return int(count)


def test_licences_by_signed_request_need_no_sign_in_and_each_call_is_signed_afresh(
    server: LiveServer, packed: Packed, holder: LocalAccount
) -> None:
    with ShotbankClient(server.url, account=holder) as client:
        assert client.token is None
        assert client.signs_requests
        first = client.licences()
        _check(first, packed, holder)
        # A second call is a new signature (a reused nonce would be refused as replayed).
        assert client.licences() == first
    assert _nonces(packed, holder.address) == 2


def test_client_with_an_account_signs_in_with_siwe_and_downloads_by_its_session(
    server: LiveServer, packed: Packed, holder: LocalAccount, tmp_path: Path
) -> None:
    with shotbank.Client(server.url, account=holder) as client:
        assert client.token is not None
        assert client.session().address == holder.address
        assert not client.signs_requests
        _check(client.licences(), packed, holder)
        report = client.version(dataset_id(packed), 1).download(tmp_path, progress=False)
        assert report.shards == len(packed.index["shards"])
    assert _nonces(packed, holder.address) == 0
    with shotbank.Client(server.url) as public:
        assert public.token is None
        assert [d.id for d in public.datasets()] == [dataset_id(packed)]


def test_licences_by_session_and_by_address_agree(
    server: LiveServer, packed: Packed, holder: LocalAccount
) -> None:
    with ShotbankClient(server.url) as client:
        client.sign_in(holder)
        assert not client.signs_requests
        mine = client.licences()
        _check(mine, packed, holder)
        assert _nonces(packed, holder.address) == 0
        # The public route: anyone's licences by address, the same rows.
        assert client.licences(holder.address) == mine
        assert client.licences(holder.address.lower()) == mine
        assert client.licences(Account.create().address) == []


def test_a_signed_in_client_built_to_sign_requests_signs_them(
    server: LiveServer, packed: Packed, holder: LocalAccount
) -> None:
    with ShotbankClient(server.url, sign_requests=True) as client:
        client.sign_in(holder)
        assert client.signs_requests
        _check(client.licences(), packed, holder)
    assert _nonces(packed, holder.address) == 1


def test_licences_without_a_session_or_a_wallet_raise_not_signed_in(server: LiveServer) -> None:
    with ShotbankClient(server.url) as client, pytest.raises(NotSignedInError):
        client.licences()
    with ShotbankClient(server.url) as client, pytest.raises(ValueError, match="not a 20-byte"):
        client.licences("0x1234")


def test_a_retried_signed_request_carries_a_new_nonce_over_the_exact_target() -> None:
    """Over an httpx transport that answers 503 once: the retry is signed again."""
    account: LocalAccount = Account.create()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/version":
            return httpx.Response(200, json={"version": "0", "chain_id": 4242})
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503, json={"error": {"code": "busy", "message": "later"}})
        return httpx.Response(200, json={"licences": []})

    with ShotbankClient(
        "http://backend.test",
        account=account,
        transport=httpx.MockTransport(answer),
        sleep=lambda _s: None,
    ) as client:
        assert client.licences() == []
    headers = [parse_authorization(request.headers["authorization"]) for request in seen]
    assert len(headers) == 2
    assert headers[0].nonce != headers[1].nonce
    for request, header in zip(seen, headers, strict=True):
        signer = recover_request_signer(
            header,
            method="GET",
            path=request.url.raw_path.decode(),
            body_sha256=EMPTY_BODY_SHA256,
            chain_id=4242,
        )
        assert signer == account.address == header.address
