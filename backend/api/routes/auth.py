"""Sign-In with Ethereum: ``/auth/nonce``, ``/auth/verify``, ``/auth/session``, ``/auth/logout``."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from backend.api.deps import CurrentSession, SessionDep, SessionTokenDep, SettingsDep
from backend.errors import ErrorResponse
from backend.models.auth import NoncePublic, SessionCreated, SessionPublic, VerifyRequest
from backend.services import auth

router = APIRouter(
    prefix="/auth",
    tags=["auth"],
    responses={status.HTTP_401_UNAUTHORIZED: {"model": ErrorResponse}},
)


@router.get("/nonce", responses={status.HTTP_429_TOO_MANY_REQUESTS: {"model": ErrorResponse}})
def read_nonce(response: Response, db: SessionDep, settings: SettingsDep) -> NoncePublic:
    """Issue a single-use nonce and say which domain, URI and chain id to sign for."""
    issued = auth.issue_nonce(db, settings=settings)
    response.headers["Cache-Control"] = "no-store"
    return NoncePublic(
        nonce=issued.nonce,
        expires_at=issued.expires_at,
        domain=settings.siwe_domain_value,
        uri=settings.siwe_uri_value,
        chain_id=settings.chain_id,
    )


@router.post("/verify")
def verify(
    body: VerifyRequest, response: Response, db: SessionDep, settings: SettingsDep
) -> SessionCreated:
    """Check a signed SIWE message and open a session (optionally also as a cookie)."""
    opened = auth.sign_in(db, settings=settings, message=body.message, signature=body.signature)
    response.headers["Cache-Control"] = "no-store"
    if body.cookie:
        response.set_cookie(
            settings.session_cookie_name,
            opened.token,
            max_age=settings.session_ttl_s,
            httponly=True,
            secure=settings.session_cookie_secure_value,
            samesite="strict",
            path="/",
        )
    return SessionCreated(
        token=opened.token,
        address=opened.session.address,
        created_at=opened.session.created_at,
        expires_at=opened.session.expires_at,
    )


@router.get("/session")
def read_session(session: CurrentSession) -> SessionPublic:
    """The caller's current session."""
    return SessionPublic(
        address=session.address, created_at=session.created_at, expires_at=session.expires_at
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(db: SessionDep, token: SessionTokenDep, settings: SettingsDep) -> Response:
    """Revoke the caller's session and clear the cookie."""
    auth.revoke(db, token=token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        httponly=True,
        secure=settings.session_cookie_secure_value,
        samesite="strict",
    )
    return response
