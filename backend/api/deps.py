"""Dependencies shared by the routes, as named ``Annotated`` aliases.

The application's long-lived objects (settings, database engine, chain client) are
built once by ``backend.main.create_app`` and kept in an :class:`AppContext` on
``app.state``; the aliases below hand them to routes.

Dependencies that only hand out an attribute are ``async``: FastAPI runs a sync
dependency in its worker-thread pool, and a hop there per dependency is both slow and a
resource requests compete for. :func:`get_db` admits at most as many requests to a
database session as the connection pool holds (:attr:`AppContext.db_slots`), and makes
the others wait on the event loop, holding no worker thread. Without that gate, a burst
of more requests than threads deadlocks: every thread ends up in a request waiting for a
connection while the requests holding the connections wait for a thread, until the pool
timeout answers 500 (seen with 100 concurrent clients; ``benchmarks/api/latency.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from anyio import CapacityLimiter
from anyio.to_thread import run_sync
from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3

from backend.core.config import Settings
from backend.errors import AuthenticationError
from backend.models.auth import AuthSession
from backend.services import auth, signedreq
from backend.services.blobs import Quarantine
from backend.services.uploads import DigestCache
from ingest.blobstore import BlobStore


@dataclass(frozen=True, slots=True)
class AppContext:
    """What one application instance is built from."""

    settings: Settings
    engine: Engine
    w3: Web3
    blobs: BlobStore
    """Clip bytes by CID (``SHOTBANK_BLOB_DIR``)."""
    quarantine: Quarantine
    """Blobs found damaged (see ``backend.services.blobs``)."""
    db_slots: CapacityLimiter
    """Requests that may hold a database session at once: the connection pool's size."""
    digests: DigestCache = field(default_factory=DigestCache)
    """Running upload digests of this process (see ``backend.services.uploads``)."""


async def get_context(request: Request) -> AppContext:
    """The :class:`AppContext` of the application serving ``request``."""
    context = request.app.state.context
    assert isinstance(context, AppContext), "app was not built by create_app()"
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> Settings:
    """The application's settings."""
    return context.settings


async def get_engine(context: ContextDep) -> Engine:
    """The application's database engine."""
    return context.engine


async def get_web3(context: ContextDep) -> Web3:
    """The application's chain client."""
    return context.w3


async def get_db(context: ContextDep) -> AsyncIterator[Session]:
    """One database session per request, closed when the request is done.

    Admission waits for one of :attr:`AppContext.db_slots` first (see the module
    docstring); the session is closed in a worker thread (closing may talk to the
    database).
    """
    async with context.db_slots:
        session = Session(context.engine)
        try:
            yield session
        finally:
            await run_sync(session.close)


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
Web3Dep = Annotated[Web3, Depends(get_web3)]
SessionDep = Annotated[Session, Depends(get_db)]


async def get_digests(context: ContextDep) -> DigestCache:
    """The process's cache of running upload digests."""
    return context.digests


DigestsDep = Annotated[DigestCache, Depends(get_digests)]


async def get_blob_store(context: ContextDep) -> BlobStore:
    """The application's blob store."""
    return context.blobs


async def get_quarantine(context: ContextDep) -> Quarantine:
    """The CIDs this process found damaged and refuses to serve."""
    return context.quarantine


BlobStoreDep = Annotated[BlobStore, Depends(get_blob_store)]
QuarantineDep = Annotated[Quarantine, Depends(get_quarantine)]


def session_token(request: Request, settings: SettingsDep) -> str:
    """The caller's session token: ``Authorization: Bearer <token>``, else the cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("The Authorization header must be 'Bearer <token>'.")
        return token.strip()
    cookie = request.cookies.get(settings.session_cookie_name)
    if cookie:
        return cookie
    raise AuthenticationError("Sign in first (no session token was sent).")


SessionTokenDep = Annotated[str, Depends(session_token)]


def get_current_session(db: SessionDep, token: SessionTokenDep) -> AuthSession:
    """The caller's live session; 401 when there is none."""
    return auth.authenticate(db, token=token)


def get_current_address(session: Annotated[AuthSession, Depends(get_current_session)]) -> str:
    """The signed-in wallet address (EIP-55 checksum form)."""
    return session.address


CurrentSession = Annotated[AuthSession, Depends(get_current_session)]
CurrentAddress = Annotated[str, Depends(get_current_address)]


def get_optional_address(request: Request, db: SessionDep, settings: SettingsDep) -> str | None:
    """The signed-in wallet, or ``None`` for a caller that sent no session token.

    A token that is sent must be valid (401 otherwise): a caller who thinks it is signed
    in learns that it is not, instead of silently seeing less.
    """
    if request.headers.get("authorization") is None and not request.cookies.get(
        settings.session_cookie_name
    ):
        return None
    return auth.authenticate(db, token=session_token(request, settings)).address


OptionalAddress = Annotated[str | None, Depends(get_optional_address)]


async def get_raw_body(request: Request) -> bytes:
    """The request's raw body, read once (Starlette keeps it for the route's own use)."""
    return await request.body()


def request_target(request: Request) -> str:
    """The request target as it came on the wire: percent-encoded path and query."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def get_requester_address(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    body: Annotated[bytes, Depends(get_raw_body)],
) -> str:
    """The caller's address from a SIWE session or a signed request (EIP-55 form).

    ``Authorization: Shotbank-Signature ...`` is verified by
    ``backend.services.signedreq`` (401 ``invalid_authorization``, ``request_signature_invalid``,
    ``request_expired``, ``request_replayed``); anything else must be a session (bearer
    token or cookie, 401 without one).
    """
    header = request.headers.get("authorization")
    if signedreq.is_signed_request(header):
        assert header is not None
        return signedreq.verify_signed_request(
            db,
            authorization=header,
            method=request.method,
            path=request_target(request),
            body=body,
            chain_id=settings.chain_id,
        )
    return auth.authenticate(db, token=session_token(request, settings)).address


RequesterDep = Annotated[str, Depends(get_requester_address)]
