"""``ShotbankClient`` against scripted HTTP answers: retries, error envelopes, paging, sign-in.

The answers come from ``httpx.MockTransport`` (the HTTP library's own test transport),
so these tests pin the client's decisions -- which requests are repeated, how errors are
read -- without a server. Talking to the real backend is covered end to end in
``tests/backend/test_contribute_cli.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from shotbank.chain.siwe import verify_siwe_message
from shotbank.client import (
    ApiError,
    ApiUnavailableError,
    NotSignedInError,
    RetryPolicy,
    ShotbankClient,
    UnexpectedResponseError,
)
from tests.sdk.annotation.conftest import MINIMAL

Handler = Callable[[httpx.Request], httpx.Response]
NOW = datetime.now(UTC)
CLIP: dict[str, Any] = {
    "id": "c" * 32,
    "status": "received",
    "created_at": NOW.isoformat(),
    "upload_id": "u" * 32,
    "reasons": [],
}


class Recorder:
    """A scripted server: answers from a list and records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(sleeps: list[float]) -> Iterator[Callable[[Handler], ShotbankClient]]:
    clients: list[ShotbankClient] = []

    def factory(handler: Handler, token: str | None = "t0ken") -> ShotbankClient:
        client = ShotbankClient(
            "http://shotbank.test/",
            token=token,
            retry=RetryPolicy(attempts=3, backoff_s=0.5, max_backoff_s=4),
            transport=httpx.MockTransport(handler),
            sleep=sleeps.append,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def _error(status: int, code: str, message: str = "no", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


def test_a_read_is_retried_on_503_with_backoff_and_then_succeeds(
    make_client: Callable[[Handler], ShotbankClient], sleeps: list[float]
) -> None:
    server = Recorder(
        _error(503, "dependency_unavailable"),
        httpx.ConnectError("refused"),
        httpx.Response(200, json=CLIP),
    )
    clip = make_client(server).get_clip("c" * 32)

    assert clip.id == "c" * 32
    assert clip.is_owner_view
    assert clip.is_pending
    assert len(server.requests) == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0


def test_retries_are_bounded(
    make_client: Callable[[Handler], ShotbankClient], sleeps: list[float]
) -> None:
    server = Recorder(*[_error(503, "dependency_unavailable", "db down")] * 3)

    with pytest.raises(ApiError) as caught:
        make_client(server).get_clip("c" * 32)

    assert (caught.value.status, caught.value.code, caught.value.message) == (
        503,
        "dependency_unavailable",
        "db down",
    )
    assert len(server.requests) == 3


def test_a_server_retry_after_is_honoured_up_to_the_cap(
    make_client: Callable[[Handler], ShotbankClient], sleeps: list[float]
) -> None:
    busy = httpx.Response(503, headers={"Retry-After": "60"})
    server = Recorder(busy, httpx.Response(200, json=CLIP))

    make_client(server).get_clip("x")

    assert sleeps == [4.0]


def test_a_timed_out_post_without_idempotency_key_is_not_repeated(
    make_client: Callable[[Handler], ShotbankClient],
) -> None:
    server = Recorder(httpx.ReadTimeout("slow"), httpx.Response(202, json=CLIP))

    with pytest.raises(ApiUnavailableError) as caught:
        make_client(server).create_clip("u" * 32, MINIMAL)

    assert caught.value.method == "POST"
    assert caught.value.url == "http://shotbank.test/api/v1/clips"
    assert isinstance(caught.value, ConnectionError)
    assert len(server.requests) == 1


def test_a_post_with_idempotency_key_is_repeated_with_the_same_key_and_body(
    make_client: Callable[[Handler], ShotbankClient],
) -> None:
    server = Recorder(
        httpx.ReadTimeout("slow"), _error(503, "busy"), httpx.Response(200, json=CLIP)
    )

    make_client(server).create_clip("u" * 32, MINIMAL, idempotency_key="key-1")

    assert len(server.requests) == 3
    assert {r.headers["idempotency-key"] for r in server.requests} == {"key-1"}
    assert len({r.content for r in server.requests}) == 1
    body = json.loads(server.requests[0].content)
    assert body == {"upload_id": "u" * 32, "annotation": MINIMAL}


def test_a_refused_connection_is_retried_even_for_a_post(
    make_client: Callable[[Handler], ShotbankClient],
) -> None:
    server = Recorder(httpx.ConnectError("refused"), httpx.Response(202, json=CLIP))

    make_client(server).create_clip("u" * 32, MINIMAL)

    assert len(server.requests) == 2


def test_a_503_to_a_post_without_key_is_not_repeated(
    make_client: Callable[[Handler], ShotbankClient],
) -> None:
    server = Recorder(_error(503, "busy"), httpx.Response(202, json=CLIP))

    with pytest.raises(ApiError, match="busy"):
        make_client(server).create_clip("u" * 32, MINIMAL)
    assert len(server.requests) == 1


def test_the_error_envelope_is_carried_whole(
    make_client: Callable[[Handler], ShotbankClient],
) -> None:
    server = Recorder(
        _error(409, "clip_duplicate", "Clip abc has the same content.", existing_clip_id="abc"),
        httpx.Response(
            422,
            json={
                "error": {
                    "code": "validation_error",
                    "message": "The request is invalid (1 problem).",
                    "details": [{"loc": ["body", "annotation", "scene"], "msg": "Field required"}],
                }
            },
        ),
        httpx.Response(502, text="<html>bad gateway</html>"),
    )
    client = make_client(server)

    with pytest.raises(ApiError) as duplicate:
        client.create_clip("u" * 32, MINIMAL)
    with pytest.raises(ApiError) as invalid:
        client.create_clip("u" * 32, {})
    with pytest.raises(ApiError) as gateway:
        client.create_clip("u" * 32, {})

    assert duplicate.value.code == "clip_duplicate"
    assert duplicate.value.extra == {"existing_clip_id": "abc"}
    assert str(duplicate.value) == "409 clip_duplicate: Clip abc has the same content."
    assert invalid.value.details == [
        {"loc": ["body", "annotation", "scene"], "msg": "Field required"}
    ]
    assert (gateway.value.status, gateway.value.code) == (502, "http_502")


def test_an_answer_outside_the_contract_is_an_unexpected_response(
    make_client: Callable[[Handler], ShotbankClient],
) -> None:
    server = Recorder(httpx.Response(200, json={"id": 1}))

    with pytest.raises(UnexpectedResponseError, match="not a Clip"):
        make_client(server).get_clip("x")


def test_list_clips_follows_the_cursor_and_repeats_status(
    make_client: Callable[[Handler], ShotbankClient],
) -> None:
    second = {**CLIP, "id": "d" * 32}
    server = Recorder(
        httpx.Response(200, json={"items": [CLIP], "next_cursor": "opaque-1"}),
        httpx.Response(200, json={"items": [second], "next_cursor": None}),
    )

    clips = list(make_client(server).list_clips(status=["queued", "received"], page_size=1))

    assert [c.id for c in clips] == ["c" * 32, "d" * 32]
    first, last = (r.url.params for r in server.requests)
    assert first.get_list("status") == ["queued", "received"]
    assert first["limit"] == "1"
    assert "cursor" not in first
    assert last["cursor"] == "opaque-1"
    with pytest.raises(ValueError, match="page_size"):
        next(make_client(server).list_clips(page_size=101))


def test_calls_that_need_a_session_say_so_before_sending(
    make_client: Callable[..., ShotbankClient],
) -> None:
    server = Recorder()

    with pytest.raises(NotSignedInError):
        make_client(server, token=None).get_clip("x")
    assert server.requests == []


def test_sign_in_signs_what_the_nonce_endpoint_asks_for_and_keeps_the_token(
    make_client: Callable[..., ShotbankClient],
) -> None:
    account: LocalAccount = Account.create()
    verified: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/nonce":
            return httpx.Response(
                200,
                json={
                    "nonce": "abcdefgh12345678",
                    "expires_at": (NOW + timedelta(minutes=5)).isoformat(),
                    "domain": "shotbank.example",
                    "uri": "https://shotbank.example",
                    "chain_id": 8453,
                },
            )
        if request.url.path == "/api/v1/auth/verify":
            body = json.loads(request.content)
            siwe = verify_siwe_message(
                body["message"],
                body["signature"],
                domain="shotbank.example",
                uri="https://shotbank.example",
                nonce="abcdefgh12345678",
                chain_id=8453,
            )
            verified.append(siwe.address)
            return httpx.Response(
                200,
                json={
                    "token": "s3ss10n",
                    "token_type": "bearer",
                    "address": siwe.address,
                    "created_at": NOW.isoformat(),
                    "expires_at": (NOW + timedelta(hours=1)).isoformat(),
                },
            )
        assert request.headers["authorization"] == "Bearer s3ss10n"
        return httpx.Response(200, json=CLIP)

    client = make_client(handler, token=None)
    session = client.sign_in(account)
    client.get_clip("x")

    assert verified == [account.address] == [session.address]
    assert client.token == "s3ss10n"
    assert client.address == account.address
