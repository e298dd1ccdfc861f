"""A local development chain: anvil from the npm package ``@foundry-rs/anvil``.

Used by the test suite and by ``make up``. The node binds to 127.0.0.1 on a port the
kernel picks (``--port 0``; the real port is read from anvil's output, so there is no
race for a "free" port), uses chain id 31337 and the standard dev mnemonic (decision
record 0001), and is stopped -- terminate, then kill -- when the context exits.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from eth_account import Account
from eth_account.signers.local import LocalAccount

from shotbank.chain.errors import ChainConfigError, NodeUnavailableError

__all__ = [
    "DEV_CHAIN_ID",
    "DEV_MNEMONIC",
    "AnvilNode",
    "dev_accounts",
    "find_anvil",
]

DEV_CHAIN_ID: Final = 31337
DEV_MNEMONIC: Final = "test test test test test test test test test test test junk"
_LISTENING = re.compile(rb"Listening on (127\.0\.0\.1):(\d+)")
_PLATFORM_BINARY: Final = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
_WRAPPER: Final = Path("node_modules/.bin/anvil")


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies.

    So a test run killed with SIGKILL does not leave anvil processes behind.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def dev_accounts(count: int = 10, mnemonic: str = DEV_MNEMONIC) -> list[LocalAccount]:
    """The first ``count`` accounts of ``mnemonic`` on the standard path ``m/44'/60'/0'/0/i``."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)
    ]


def find_anvil(project_root: Path) -> Path:
    """Locate the anvil binary installed by npm under ``project_root``.

    ``SHOTBANK_ANVIL`` overrides the search. The platform package's binary is preferred
    over the ``node_modules/.bin`` wrapper (a Node script that would sit between us and
    the process we need to stop). Raises :class:`ChainConfigError` when none is found.
    """
    override = os.environ.get("SHOTBANK_ANVIL")
    candidates = [Path(override)] if override else []
    candidates += [project_root / _PLATFORM_BINARY, project_root / _WRAPPER]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ChainConfigError(
        "anvil not found: run scripts/setup.sh (npm package @foundry-rs/anvil) "
        "or set SHOTBANK_ANVIL"
    )


class AnvilNode:
    """A running anvil process; use as a context manager or call :meth:`stop`."""

    def __init__(
        self,
        binary: Path,
        *,
        chain_id: int = DEV_CHAIN_ID,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 20.0,
    ) -> None:
        """Configure (not start) anvil at ``binary``; ``extra_args`` go to its command line."""
        self.binary = binary
        self.chain_id = chain_id
        self.extra_args = tuple(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """HTTP JSON-RPC endpoint of the running node."""
        if self.port is None:
            raise NodeUnavailableError("anvil is not running", method="", endpoint="")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the node, while it runs."""
        return self._process.pid if self._process else None

    def start(self) -> Self:
        """Start anvil and wait until it listens; returns ``self``."""
        if self._process is not None:
            return self
        self._log = tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log")  # noqa: SIM115
        args = [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--chain-id",
            str(self.chain_id),
            "--mnemonic",
            DEV_MNEMONIC,
            "--color",
            "never",
            *self.extra_args,
        ]
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, argument list
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            output = Path(self._log.name).read_bytes()
            match = _LISTENING.search(output)
            if match:
                self.port = int(match.group(2))
                return self
            returncode = self._process.poll()
            if returncode is not None:
                self.stop()
                raise NodeUnavailableError(
                    f"anvil exited with {returncode}: {output[-2000:].decode(errors='replace')}",
                    method="",
                    endpoint="",
                )
            time.sleep(0.02)
        self.stop()
        raise NodeUnavailableError(
            f"anvil did not listen within {self.startup_timeout_s} s", method="", endpoint=""
        )

    def output(self) -> str:
        """Everything anvil has printed so far (for failure messages)."""
        if self._log is None:
            return ""
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        """Stop the node: SIGTERM, then SIGKILL after 5 s. Safe to call twice."""
        process, self._process = self._process, None
        self.port = None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        """Start the node."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the node."""
        self.stop()
