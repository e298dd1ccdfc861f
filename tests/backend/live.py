"""A real backend for tests: uvicorn serving ``create_app(settings)`` on a free port.

Used by the tests that need real HTTP (tus clients, the ``shotbank`` CLI, benchmarks of
the API); the fixtures ``live`` and ``caller_for`` in ``tests/backend/conftest.py`` wrap it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from eth_account.signers.local import LocalAccount

from backend.core.config import Settings
from backend.main import create_app
from shotbank.chain.siwe import build_siwe_message, sign_siwe_message

DOMAIN = "shotbank.test"
URI = "https://shotbank.test"
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class LiveServer:
    """A uvicorn server running ``create_app(settings)`` in a thread."""

    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def uploads_url(self) -> str:
        return f"{self.url}/api/v1/uploads/"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def start_server(settings: Settings) -> LiveServer:
    """Start the backend on a kernel-chosen port and wait until it accepts requests."""
    sock = socket.socket()  # closed by uvicorn when it shuts down
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "server thread died"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return LiveServer(settings=settings, server=server, thread=thread, port=port)


ServerFactory = Callable[..., LiveServer]


def sign_in(base_url: str, account: LocalAccount) -> str:
    """A session token for ``account`` obtained through the HTTP API."""
    with httpx.Client(base_url=base_url) as client:
        nonce = client.get("/api/v1/auth/nonce").json()["nonce"]
        message = build_siwe_message(
            domain=DOMAIN, address=account.address, uri=URI, chain_id=31337, nonce=nonce
        )
        response = client.post(
            "/api/v1/auth/verify",
            json={"message": message, "signature": sign_siwe_message(account, message)},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token


@dataclass
class Caller:
    """An httpx client of a live server, signed in as one wallet."""

    http: httpx.Client
    token: str
    server: LiveServer

    def create(self, length: int, metadata: str | None = None, **headers: str) -> httpx.Response:
        all_headers = {**TUS, "Upload-Length": str(length), **headers}
        if metadata is not None:
            all_headers["Upload-Metadata"] = metadata
        return self.http.post("/api/v1/uploads/", headers=all_headers)

    def created(self, length: int) -> str:
        response = self.create(length)
        assert response.status_code == 201, response.text
        location: str = response.headers["location"]
        return location

    def patch(self, location: str, offset: int, body: Any, **headers: str) -> httpx.Response:
        return self.http.patch(
            location,
            content=body,
            headers={
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                **headers,
            },
        )

    def head(self, location: str) -> httpx.Response:
        return self.http.head(location, headers=TUS)
