"""Dependencies shared by the routes, as named ``Annotated`` aliases.

The application's long-lived objects (settings, database engine, chain client) are
built once by ``backend.main.create_app`` and kept in an :class:`AppContext` on
``app.state``; the aliases below hand them to routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3

from backend.core.config import Settings
from backend.core.db import iter_session


@dataclass(frozen=True, slots=True)
class AppContext:
    """What one application instance is built from."""

    settings: Settings
    engine: Engine
    w3: Web3


def get_context(request: Request) -> AppContext:
    """The :class:`AppContext` of the application serving ``request``."""
    context = request.app.state.context
    assert isinstance(context, AppContext), "app was not built by create_app()"
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_settings(context: ContextDep) -> Settings:
    """The application's settings."""
    return context.settings


def get_engine(context: ContextDep) -> Engine:
    """The application's database engine."""
    return context.engine


def get_web3(context: ContextDep) -> Web3:
    """The application's chain client."""
    return context.w3


def get_db(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """One database session per request, closed when the response is sent."""
    yield from iter_session(engine)


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
Web3Dep = Annotated[Web3, Depends(get_web3)]
SessionDep = Annotated[Session, Depends(get_db)]
