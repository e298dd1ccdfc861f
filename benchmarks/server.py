"""A real backend process for the benchmarks, and what talking to it needs.

:func:`backend_process` starts ``python -m backend`` -- uvicorn as deployed: one worker, no
reload -- on a free loopback port with its own var dir and ``SHOTBANK_*`` settings in its
environment (the caller's own ``SHOTBANK_*`` variables are not passed on), waits until it
answers, and stops it with SIGTERM. It runs in its own process so that a load generator
or an upload client never shares its interpreter (or its GIL).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
from eth_account.signers.local import LocalAccount

from shotbank.chain.siwe import build_siwe_message, sign_siwe_message

ROOT: Final = Path(__file__).resolve().parent.parent
_SIZE: Final = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS: Final = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes in ``"8MiB"``, ``"1G"``, ``"262144"`` (binary units; ``K``/``KiB`` = 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (e.g. 8MiB, 1GiB, 4096)")
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) * _UNITS[unit]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class BackendProcess:
    """A running ``python -m backend``."""

    url: str
    var_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server process used so far; ``None`` off Linux."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server wrote (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _server_env(settings: Mapping[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOTBANK_")}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextmanager
def backend_process(
    var_dir: Path,
    *,
    database_url: str | None = None,
    settings: Mapping[str, str] | None = None,
    log_level: str = "warning",
    startup_timeout_s: float = 60.0,
) -> Iterator[BackendProcess]:
    """Run the backend (SQLite under ``var_dir`` unless ``database_url``) until the block ends.

    ``settings`` are further ``SHOTBANK_*`` variables. The chain RPC points at a closed
    port (nothing here needs a chain). The server's output goes to ``var_dir/backend.log``.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    values = {
        "SHOTBANK_ENVIRONMENT": "development",
        "SHOTBANK_HOST": "127.0.0.1",
        "SHOTBANK_PORT": str(port),
        "SHOTBANK_VAR_DIR": str(var_dir),
        "SHOTBANK_LOG_LEVEL": log_level,
        "SHOTBANK_CHAIN_RPC_URL": f"http://127.0.0.1:{free_port()}",
        "SHOTBANK_CHAIN_RPC_TIMEOUT_S": "1",
    }
    if database_url is not None:
        values["SHOTBANK_DATABASE_URL"] = database_url
    values.update(settings or {})
    log_path = var_dir / "backend.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend"],
            cwd=ROOT,
            env=_server_env(values),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = BackendProcess(
        url=f"http://127.0.0.1:{port}", var_dir=var_dir, log_path=log_path, process=process
    )
    try:
        _wait_until_up(server, startup_timeout_s)
        yield server
    finally:
        _stop(process)


def _wait_until_up(server: BackendProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"the backend exited at start-up:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/api/v1/version", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the backend did not answer in {timeout_s} s:\n{server.log_tail()}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sign_in(client: httpx.Client, account: LocalAccount) -> str:
    """A session token for ``account`` (SIWE through ``/auth/nonce`` and ``/auth/verify``).

    Signs for the domain, URI and chain id the server announces with the nonce.
    """
    issued = client.get("/api/v1/auth/nonce")
    issued.raise_for_status()
    offer = issued.json()
    message = build_siwe_message(
        domain=offer["domain"],
        address=account.address,
        uri=offer["uri"],
        chain_id=offer["chain_id"],
        nonce=offer["nonce"],
    )
    verified = client.post(
        "/api/v1/auth/verify",
        json={"message": message, "signature": sign_siwe_message(account, message)},
    )
    if verified.status_code != 200:
        raise RuntimeError(f"sign-in failed: {verified.status_code} {verified.text}")
    token: str = verified.json()["token"]
    return token
