"""Sign-In with Ethereum through the HTTP API, with real keys signing real SIWE messages.

Every test runs on SQLite and on the machine's PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.main import create_app
from backend.models.auth import AuthNonce, AuthSession
from backend.services.auth import hash_token
from shotbank.chain.siwe import build_siwe_message, sign_siwe_message
from tests.backend.conftest import SettingsFactory

DOMAIN = "shotbank.test"
URI = "https://shotbank.test"
CHAIN_ID = 31337


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def auth_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    """Settings bound to DOMAIN/URI/CHAIN_ID, on SQLite or PostgreSQL."""
    extra: dict[str, Any] = {}
    if request.param == "postgres":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    return make_settings(siwe_domain=DOMAIN, siwe_uri=URI, chain_id=CHAIN_ID, **extra)


@pytest.fixture
def auth_client(auth_settings: Settings) -> Iterator[TestClient]:
    """A client of an app with ``auth_settings``."""
    with TestClient(create_app(auth_settings)) as client:
        yield client


@pytest.fixture
def wallet() -> LocalAccount:
    """A fresh key."""
    account: LocalAccount = Account.create()
    return account


def _nonce(client: TestClient) -> str:
    response = client.get("/api/v1/auth/nonce")
    assert response.status_code == 200
    body = response.json()
    assert (body["domain"], body["uri"], body["chain_id"]) == (DOMAIN, URI, CHAIN_ID)
    nonce: str = body["nonce"]
    return nonce


def _signed(
    client: TestClient, account: LocalAccount, *, signer: LocalAccount | None = None, **fields: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {"domain": DOMAIN, "uri": URI, "chain_id": CHAIN_ID}
    values.update(fields)
    if "nonce" not in values:
        values["nonce"] = _nonce(client)
    message = build_siwe_message(address=account.address, statement="Sign in to Shotbank", **values)
    return {"message": message, "signature": sign_siwe_message(signer or account, message)}


def _verify(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/auth/verify", json=body)


def _error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_sign_in_returns_a_session_bound_to_the_address(
    auth_client: TestClient, wallet: LocalAccount
) -> None:
    response = _verify(auth_client, _signed(auth_client, wallet))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["address"] == wallet.address
    assert "set-cookie" not in response.headers
    session = auth_client.get(
        "/api/v1/auth/session", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert session.status_code == 200
    assert session.json()["address"] == wallet.address


def test_only_the_hash_of_the_session_token_is_stored(
    auth_client: TestClient, auth_settings: Settings, wallet: LocalAccount
) -> None:
    token = _verify(auth_client, _signed(auth_client, wallet)).json()["token"]
    engine = create_db_engine(auth_settings)
    try:
        with Session(engine) as db:
            rows = db.exec(select(AuthSession).where(AuthSession.address == wallet.address)).all()
    finally:
        engine.dispose()
    assert [row.token_hash for row in rows] == [hash_token(token)]
    assert token not in {row.token_hash for row in rows}


def test_a_replayed_message_is_rejected_as_nonce_used(
    auth_client: TestClient, wallet: LocalAccount
) -> None:
    body = _signed(auth_client, wallet)
    assert _verify(auth_client, body).status_code == 200
    replay = _verify(auth_client, body)
    assert replay.status_code == 401
    assert _error_code(replay) == "nonce_used"


def test_a_nonce_the_server_never_issued_is_rejected(
    auth_client: TestClient, wallet: LocalAccount
) -> None:
    response = _verify(auth_client, _signed(auth_client, wallet, nonce="abcdefgh12345678"))
    assert (response.status_code, _error_code(response)) == (401, "nonce_unknown")


def test_an_expired_message_is_rejected(auth_client: TestClient, wallet: LocalAccount) -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    body = _signed(auth_client, wallet, issued_at=issued, expires_in=timedelta(minutes=30))
    response = _verify(auth_client, body)
    assert (response.status_code, _error_code(response)) == (401, "siwe_expired")


def test_a_message_valid_for_too_long_is_rejected(
    auth_client: TestClient, wallet: LocalAccount
) -> None:
    response = _verify(auth_client, _signed(auth_client, wallet, expires_in=timedelta(days=2)))
    assert (response.status_code, _error_code(response)) == (401, "siwe_expired")


def test_an_expired_nonce_is_rejected(
    auth_client: TestClient, auth_settings: Settings, wallet: LocalAccount
) -> None:
    body = _signed(auth_client, wallet)
    engine = create_db_engine(auth_settings)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(AuthNonce).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        engine.dispose()
    response = _verify(auth_client, body)
    assert (response.status_code, _error_code(response)) == (401, "nonce_expired")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("domain", "evil.example", "siwe_domain_mismatch"),
        ("uri", "https://evil.example", "siwe_uri_mismatch"),
        ("chain_id", 1, "siwe_chain_mismatch"),
    ],
)
def test_a_message_for_another_domain_uri_or_chain_is_rejected(
    auth_client: TestClient, wallet: LocalAccount, field: str, value: object, code: str
) -> None:
    fields: dict[str, Any] = {field: value}
    response = _verify(auth_client, _signed(auth_client, wallet, **fields))
    assert (response.status_code, _error_code(response)) == (401, code)


def test_a_signature_from_another_key_is_rejected(
    auth_client: TestClient, wallet: LocalAccount
) -> None:
    body = _signed(auth_client, wallet, signer=Account.create())
    response = _verify(auth_client, body)
    assert (response.status_code, _error_code(response)) == (401, "siwe_invalid_signature")


def test_a_rejected_attempt_does_not_burn_the_nonce(
    auth_client: TestClient, wallet: LocalAccount
) -> None:
    nonce = _nonce(auth_client)
    forged = _signed(auth_client, wallet, signer=Account.create(), nonce=nonce)
    assert _verify(auth_client, forged).status_code == 401
    assert _verify(auth_client, _signed(auth_client, wallet, nonce=nonce)).status_code == 200


@pytest.mark.parametrize(
    "message",
    ["hello", "shotbank.test wants you to sign in\nNonce: abcdefgh1234", "x" * 3000],
    ids=["garbage", "partial", "too-long"],
)
def test_a_malformed_or_oversized_message_is_rejected(
    auth_client: TestClient, wallet: LocalAccount, message: str
) -> None:
    signature = sign_siwe_message(wallet, message)
    response = _verify(auth_client, {"message": message, "signature": signature})
    assert (response.status_code, _error_code(response)) == (401, "siwe_malformed")


def test_a_message_beyond_the_hard_request_cap_is_a_validation_error(
    auth_client: TestClient,
) -> None:
    response = _verify(auth_client, {"message": "x" * 9000, "signature": "0x" + "00" * 65})
    assert (response.status_code, _error_code(response)) == (422, "validation_error")


def test_logout_revokes_the_session(auth_client: TestClient, wallet: LocalAccount) -> None:
    token = _verify(auth_client, _signed(auth_client, wallet)).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert auth_client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    response = auth_client.get("/api/v1/auth/session", headers=headers)
    assert (response.status_code, _error_code(response)) == (401, "session_invalid")


def test_an_expired_session_is_rejected(
    auth_client: TestClient, auth_settings: Settings, wallet: LocalAccount
) -> None:
    token = _verify(auth_client, _signed(auth_client, wallet)).json()["token"]
    engine = create_db_engine(auth_settings)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(AuthSession)
                .where(AuthSession.token_hash == hash_token(token))  # type: ignore[arg-type]
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        engine.dispose()
    response = auth_client.get("/api/v1/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, _error_code(response)) == (401, "session_expired")


@pytest.mark.parametrize(
    "header", ["Bearer not-a-token", "Basic dXNlcjpwdw==", "Bearer " + "a" * 500]
)
def test_unknown_or_malformed_credentials_are_rejected(
    auth_client: TestClient, header: str
) -> None:
    response = auth_client.get("/api/v1/auth/session", headers={"Authorization": header})
    assert response.status_code == 401


def test_no_credentials_is_unauthenticated(auth_client: TestClient) -> None:
    response = auth_client.get("/api/v1/auth/session")
    assert (response.status_code, _error_code(response)) == (401, "unauthenticated")


def test_cookie_mode_sets_an_httponly_cookie_that_authenticates(
    auth_client: TestClient, wallet: LocalAccount
) -> None:
    body = _signed(auth_client, wallet) | {"cookie": True}
    response = _verify(auth_client, body)
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "shotbank_session=" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    session = auth_client.get("/api/v1/auth/session")  # the client sends the cookie back
    assert session.status_code == 200
    assert session.json()["address"] == wallet.address
    assert auth_client.post("/api/v1/auth/logout").status_code == 204
    assert auth_client.get("/api/v1/auth/session").status_code == 401


def test_the_session_cookie_is_secure_outside_development(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(environment="production", secret_key="k" * 40)
    assert settings.session_cookie_secure_value
    assert not make_settings().session_cookie_secure_value


def test_nonce_issuing_is_capped(make_settings: SettingsFactory) -> None:
    with TestClient(create_app(make_settings(max_pending_nonces=10))) as client:
        statuses = [client.get("/api/v1/auth/nonce").status_code for _ in range(11)]
        last = client.get("/api/v1/auth/nonce")
    assert statuses[:10] == [200] * 10
    assert (last.status_code, _error_code(last)) == (429, "rate_limited")


def test_an_oversized_request_body_is_refused_before_parsing(auth_client: TestClient) -> None:
    response = auth_client.post(
        "/api/v1/auth/verify",
        content=b'{"message": "' + b"x" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, _error_code(response)) == (413, "request_too_large")
