"""``make up``: the whole embedded stack on one machine, for development.

``python -m backend.devstack`` runs, in order, as a list of managed services:

1. **anvil** (npm ``@foundry-rs/anvil``) on 127.0.0.1, chain id 31337, the public dev
   mnemonic, instant mining of transactions plus a block every ``block_time_s``, and
   ``--state var/chain/anvil-state.json`` so the next ``make up`` continues the chain;
2. the **contracts**: reused when ``var/deployments.json`` names this chain, code exists
   at every address and the shipped artifacts are the ones deployed; otherwise deployed
   with ``shotbank.chain.deploy.deploy_all`` (:data:`DEV_DEPLOY_PARAMS`: the shortest
   challenge window the distributor allows, 60 s) and written to the deployments file.
   The dev accounts are then topped up with SHOT from the treasury, the local validator
   account (:data:`LOCAL_VALIDATOR`) is staked with the registry's ``minStake`` unless it
   already is, and the RewardDistributor's pool is funded from the treasury once per
   deployment (all idempotent); the token's emission is the distributor's to draw;
3. the **backend** (``python -m backend``, uvicorn) on 127.0.0.1:8000, with a consensus
   quorum of 1 (one local validator), 1 confirmation for stake changes and sent
   transactions, epochs of 120 s, and dev account 0 as the operator that submits epoch
   roots and draws emission (``SHOTBANK_OPERATOR_KEY``);
4. one **validator node** (``shotbank validator run`` as :data:`LOCAL_VALIDATOR`, the
   in-project model, metrics on 127.0.0.1:9464; ``SHOTBANK_DEVSTACK_VALIDATOR_NODE=false``
   leaves it out), so a clip uploaded to the stack gets scored and decided.

It then prints the URLs, contract addresses and the DEV ONLY accounts, and supervises:
SIGINT (Ctrl-C) or SIGTERM stops the services in reverse order (anvil dumps its state
on the way out) and exits 0; a service that dies on its own stops the rest and exits 1.
Children run in their own sessions (a terminal's Ctrl-C reaches only this supervisor)
and get SIGTERM from the kernel if the supervisor itself is killed.

Configuration: the backend's ``SHOTBANK_*`` settings (``SHOTBANK_PORT``,
``SHOTBANK_VAR_DIR``...) and :class:`DevstackSettings` (``SHOTBANK_DEVSTACK_*``).
The anvil binary is found by ``shotbank.chain.devnode.find_anvil`` (``SHOTBANK_ANVIL``
overrides it).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Final

import httpx
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from web3 import Web3
from web3.exceptions import Web3Exception

import backend
from backend.core.config import Settings
from backend.errors import BackendError, DevstackError, PortInUseError
from shotbank.chain.abi import CONTRACT_NAMES, load_artifact
from shotbank.chain.contracts import RewardDistributor, ShotToken, ValidatorRegistry, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, load_deployments, save_deployment
from shotbank.chain.devnode import DEV_CHAIN_ID, DEV_MNEMONIC, dev_accounts, find_anvil
from shotbank.chain.rpc import RetryPolicy, connect
from shotbank.errors import ShotbankError

_SOURCE_ROOT: Final = Path(backend.__file__).resolve().parent.parent
_POLL_S: Final = 0.1
_PROBE_TIMEOUT_S: Final = 2.0
_TX_TIMEOUT_S: Final = 60.0
_LOG_TAIL_BYTES: Final = 4000
_PR_SET_PDEATHSIG: Final = 1
#: Epoch length of the backend the devstack starts (``SHOTBANK_EPOCH_LENGTH_S``).
DEV_EPOCH_LENGTH_S: Final = 120
#: Contract parameters of the dev deployment: the distributor's shortest challenge window,
#: and a snapshot age (blocks, one a second) that outlasts a slow signing round.
DEV_DEPLOY_PARAMS: Final = DeployParams(challenge_window_s=60, max_snapshot_age_blocks=3600)


class DevstackSettings(BaseSettings):
    """Knobs of the development stack itself, from ``SHOTBANK_DEVSTACK_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="SHOTBANK_DEVSTACK_", extra="ignore", frozen=True)

    anvil_port: int = Field(8545, ge=1, le=65535)
    block_time_s: int = Field(1, ge=1, le=60)
    """A block is mined this often even without transactions (which mine at once), so
    confirmations advance. The saved chain state grows by about 1.7 MB per 1,000 blocks."""

    fund_shot: int = Field(10_000, ge=0, le=10**12)
    """Whole SHOT each funded dev account is topped up to."""

    reward_pool_shot: int = Field(100_000, ge=0, le=10**12)
    """Whole SHOT the treasury puts into the RewardDistributor's pool when a deployment's
    pool was never funded, so the first epochs have something to allocate (scheduled
    emission adds to it at every epoch close)."""

    validator_node: bool = True
    """Start one local validator node (``shotbank validator run`` as
    :data:`LOCAL_VALIDATOR`, the in-project model) so uploaded clips get decided."""
    validator_metrics_port: int = Field(9464, ge=1, le=65535)
    """Where the local validator node serves its Prometheus metrics."""

    startup_timeout_s: float = Field(120.0, gt=0, le=900)
    stop_timeout_s: float = Field(30.0, gt=0, le=300)
    project_root: Path = _SOURCE_ROOT
    """Where ``node_modules`` (and so anvil) is installed."""


@dataclass(frozen=True, slots=True)
class DevAccount:
    """One anvil dev account and what the devstack uses it for."""

    index: int
    role: str
    funded: bool


#: Roles of the first anvil dev accounts (derivation path m/44'/60'/0'/0/index).
DEV_ROLES: Final = (
    DevAccount(0, "deployer + treasury", funded=False),
    DevAccount(1, "guardian", funded=False),
    DevAccount(2, "contributor", funded=True),
    DevAccount(3, "contributor", funded=True),
    DevAccount(4, "validator", funded=True),
    DevAccount(5, "validator", funded=True),
    DevAccount(6, "validator", funded=True),
    DevAccount(7, "trainer", funded=True),
    DevAccount(8, "validator (staked)", funded=False),
)
#: The account staked as the stack's own validator: funded with exactly ``minStake``,
#: all of it staked, so the top-ups of the other accounts never touch it.
LOCAL_VALIDATOR: Final = 8
_DEPLOYER: Final = 0
_GUARDIAN: Final = 1


class _StopRequested(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised out of a signal handler to abandon start-up."""


class _DeployedArtifacts(BaseModel):
    """``var/chain/deployed-artifacts.json``: which build of the contracts is on the chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int
    artifacts_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    contracts: dict[str, str] = Field(max_length=64)
    deploy_params: DeployParams | None = None
    """The constructor parameters; ``None`` in records written before they were kept."""


#: ``prctl`` resolved in the parent: the child between fork and exec should do no more
#: than call it.
_PRCTL: Final = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child if the devstack dies."""

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may already have died between fork and prctl.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def ensure_port_free(port: int, *, what: str, env_var: str, host: str = "127.0.0.1") -> None:
    """Raise :class:`PortInUseError` when something already listens on ``host``:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: a port with only TIME_WAIT leftovers is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"Port {port} on {host} (for {what}) is already in use ({exc.strerror}). "
                f"Stop whatever listens there (another `make up`?) or set {env_var}."
            ) from exc


class ManagedProcess:
    """A child process of the devstack: started, probed until ready, stopped for sure."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        stop_timeout_s: float = 30.0,
    ) -> None:
        """Describe (not start) a service; output goes to ``log_path`` or our own stdout."""
        self.name = name
        self.argv = list(argv)
        self.ready = ready
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log_path = log_path
        self.stop_timeout_s = stop_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id while started."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn the process in its own session."""
        if self._process is not None:
            raise DevstackError(f"{self.name} is already started")
        if self.log_path is not None:
            self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(  # noqa: S603 - argument list built by the devstack
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log is not None else None,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )

    def exit_code(self) -> int | None:
        """The exit status if the process has ended, else ``None``."""
        return self._process.poll() if self._process is not None else None

    def log_tail(self) -> str:
        """The end of the service's log file, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _LOG_TAIL_BYTES))
            return fh.read().decode(errors="replace")

    def wait_ready(self, *, deadline: float, stop: threading.Event) -> None:
        """Poll :attr:`ready` until it holds; fail if the process dies or time runs out."""
        while True:
            if stop.is_set():
                raise _StopRequested
            code = self.exit_code()
            if code is not None:
                tail = self.log_tail()
                where = f"; its log ({self.log_path}) ends with:\n{tail}" if tail else ""
                raise DevstackError(f"{self.name} exited with status {code} at start-up{where}")
            if self.ready():
                return
            if time.monotonic() > deadline:
                raise DevstackError(f"{self.name} was not ready in time (see {self.log_path})")
            time.sleep(_POLL_S)

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL after ``stop_timeout_s``; True if it ended by itself."""
        process = self._process
        if process is None:
            return True
        clean = True
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                clean = False
                process.kill()
                process.wait(timeout=self.stop_timeout_s)
        # Anything the service left in its session goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return clean


def _json_rpc_answers(url: str, chain_id: int) -> bool:
    payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        answer = httpx.post(url, json=payload, timeout=_PROBE_TIMEOUT_S).json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(answer, dict) and answer.get("result") == hex(chain_id)


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=_PROBE_TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


def artifacts_fingerprint() -> str:
    """SHA-256 over the shipped creation bytecode of every Shotbank contract."""
    digest = hashlib.sha256()
    for name in CONTRACT_NAMES:
        digest.update(name.encode() + b"\0" + load_artifact(name).bytecode.encode() + b"\0")
    return digest.hexdigest()


def _format_shot(amount_wei: int, decimals: int) -> str:
    whole, fraction = divmod(amount_wei, 10**decimals)
    return f"{whole:,}" + (f".{fraction:0{decimals}d}".rstrip("0") if fraction else "")


class Devstack:
    """Starts, supervises and stops the development services."""

    def __init__(
        self,
        settings: Settings,
        devstack_settings: DevstackSettings,
        *,
        console: Console | None = None,
    ) -> None:
        """Prepare a stack for ``settings`` (backend) and ``devstack_settings``."""
        if settings.environment != "development":
            raise DevstackError(
                "The devstack uses publicly known dev keys and runs only with "
                f"SHOTBANK_ENVIRONMENT=development (got {settings.environment})."
            )
        if settings.chain_id != DEV_CHAIN_ID:
            raise DevstackError(
                f"The devstack runs the dev chain {DEV_CHAIN_ID}; "
                f"unset SHOTBANK_CHAIN_ID (got {settings.chain_id})."
            )
        self.settings = settings
        self.options = devstack_settings
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.var_dir = settings.var_dir
        self.chain_dir = self.var_dir / "chain"
        self.log_dir = self.var_dir / "log"
        self.state_file = self.chain_dir / "anvil-state.json"
        self.artifacts_file = self.chain_dir / "deployed-artifacts.json"
        self.rpc_url = f"http://127.0.0.1:{devstack_settings.anvil_port}"
        self.api_base = f"http://{settings.host}:{settings.port}"
        self.accounts: list[LocalAccount] = dev_accounts(len(DEV_ROLES))
        self.services: list[ManagedProcess] = []
        self._w3: Web3 | None = None
        self._stop = threading.Event()
        self._interruptible = True

    # --- lifecycle -------------------------------------------------------------------

    def run(self) -> int:
        """Bring everything up, supervise until told to stop; the process exit status."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            with self._var_dir_lock():
                try:
                    return self._up_and_supervise()
                finally:
                    self._interruptible = False
                    self._stop_all()
        except _StopRequested:
            return 0
        except (BackendError, ShotbankError, Web3Exception) as exc:
            self._interruptible = False
            self._say(f"[bold red]error:[/] {escape(str(exc))}")
            return 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _up_and_supervise(self) -> int:
        try:
            deployment, reused = self._start_all()
        finally:
            # From here on a signal only sets the stop event; supervision notices it.
            self._interruptible = False
        self._print_banner(deployment, reused=reused)
        return self._supervise()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        first = not self._stop.is_set()
        self._stop.set()
        if first:
            self._say(f"received {signal.Signals(signum).name}, stopping")
            if self._interruptible:
                raise _StopRequested

    @contextlib.contextmanager
    def _shielded(self) -> Iterator[None]:
        """Defer a stop signal until the block ends (spawning must not be torn in half)."""
        self._interruptible = False
        try:
            yield
        finally:
            self._interruptible = True
        if self._stop.is_set():
            raise _StopRequested

    @contextlib.contextmanager
    def _var_dir_lock(self) -> Iterator[None]:
        for directory in (self.var_dir, self.chain_dir, self.log_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.var_dir / "devstack.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DevstackError(
                    f"Another devstack is running on {self.var_dir}; stop it first."
                ) from None
            yield
        finally:
            os.close(fd)

    def _start_all(self) -> tuple[Deployment, bool]:
        ensure_port_free(
            self.options.anvil_port,
            what="the anvil chain RPC",
            env_var="SHOTBANK_DEVSTACK_ANVIL_PORT",
        )
        ensure_port_free(
            self.settings.port,
            what="the backend API",
            env_var="SHOTBANK_PORT",
            host=self.settings.host,
        )
        if self.options.anvil_port == self.settings.port:
            raise PortInUseError("The anvil port and the backend port must differ.")
        if self.options.validator_node:
            ensure_port_free(
                self.options.validator_metrics_port,
                what="the validator node's metrics",
                env_var="SHOTBANK_DEVSTACK_VALIDATOR_METRICS_PORT",
            )
        deadline = time.monotonic() + self.options.startup_timeout_s

        self._start(self._anvil_service(), deadline)
        w3 = self._w3 = connect(
            self.rpc_url,
            expected_chain_id=DEV_CHAIN_ID,
            policy=RetryPolicy(attempts=3, timeout_s=10),
        )
        deployment, reused = self.deploy_or_reuse(w3)
        self.fund_dev_accounts(w3, deployment)
        self.stake_local_validator(w3, deployment)
        self.fund_reward_pool(w3, deployment)
        self._start(self._backend_service(), deadline)
        if self.options.validator_node:
            self._start(self._validator_service(), deadline)
        return deployment, reused

    def _start(self, service: ManagedProcess, deadline: float) -> None:
        self._say(f"starting {service.name}")
        with self._shielded():
            self.services.append(service)
            service.start()
        service.wait_ready(deadline=deadline, stop=self._stop)
        self._say(f"{service.name} is ready (pid {service.pid})")

    def _supervise(self) -> int:
        while not self._stop.wait(0.5):
            for service in self.services:
                code = service.exit_code()
                if code is not None:
                    self._say(f"[bold red]error:[/] {service.name} exited unexpectedly ({code})")
                    return 1
        return 0

    def _stop_all(self) -> None:
        for service in reversed(self.services):
            if service.exit_code() is None:
                self._say(f"stopping {service.name}")
            if not service.stop():
                self._say(f"[yellow]{service.name} did not stop in time and was killed[/]")
        self.services.clear()
        if self._stop.is_set():
            self._say("stopped")

    # --- services --------------------------------------------------------------------

    def _anvil_service(self) -> ManagedProcess:
        argv = [
            str(find_anvil(self.options.project_root)),
            "--host", "127.0.0.1",
            "--port", str(self.options.anvil_port),
            "--chain-id", str(DEV_CHAIN_ID),
            "--mnemonic", DEV_MNEMONIC,
            "--accounts", "10",
            "--block-time", str(self.options.block_time_s),
            # Transactions still mine at once; the interval only adds empty blocks.
            "--mixed-mining",
            "--state", str(self.state_file),
            "--color", "never",
        ]  # fmt: skip
        return ManagedProcess(
            "anvil",
            argv,
            ready=lambda: _json_rpc_answers(self.rpc_url, DEV_CHAIN_ID),
            log_path=self.log_dir / "anvil.log",
            stop_timeout_s=self.options.stop_timeout_s,
        )

    def _backend_service(self) -> ManagedProcess:
        env = dict(os.environ)
        env.update(
            {
                "SHOTBANK_ENVIRONMENT": "development",
                "SHOTBANK_VAR_DIR": str(self.var_dir),
                "SHOTBANK_CHAIN_RPC_URL": self.rpc_url,
                "SHOTBANK_CHAIN_ID": str(DEV_CHAIN_ID),
                "SHOTBANK_DEPLOYMENTS_FILE": str(self.settings.deployments_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        # One local validator decides a clip alone; anvil mines a block every
        # block_time_s, so one confirmation keeps stake changes quick. Explicit settings win.
        env.setdefault("SHOTBANK_CONSENSUS_QUORUM", "1")
        env.setdefault("SHOTBANK_CHAIN_CONFIRMATIONS", "1")
        env.setdefault("SHOTBANK_OUTBOX_CONFIRMATIONS", "1")
        env.setdefault("SHOTBANK_CHAIN_POLL_S", str(self.options.block_time_s))
        # Epochs close every two minutes, and dev account 0 (deployer and treasury, a
        # publicly known key) submits their roots and draws emission.
        env.setdefault("SHOTBANK_EPOCH_LENGTH_S", str(DEV_EPOCH_LENGTH_S))
        env.setdefault("SHOTBANK_OPERATOR_KEY", "0x" + bytes(self.accounts[_DEPLOYER].key).hex())
        # Dev account 0 signed in may also define and freeze datasets.
        env.setdefault("SHOTBANK_OPERATORS", f'["{self.accounts[_DEPLOYER].address}"]')
        return ManagedProcess(
            "backend",
            [sys.executable, "-m", "backend"],
            ready=lambda: _http_ok(f"{self.api_base}/api/v1/health"),
            env=env,
            cwd=self.options.project_root,
            stop_timeout_s=self.options.stop_timeout_s,
        )

    def _validator_service(self) -> ManagedProcess:
        """``shotbank validator run`` as :data:`LOCAL_VALIDATOR`, keyed by a file, never argv."""
        key_file = self.chain_dir / "validator.key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as sink:
            sink.write("0x" + bytes(self.accounts[LOCAL_VALIDATOR].key).hex() + "\n")
        port = self.options.validator_metrics_port
        # The validator signs with its own key file, never with another key of the stack.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SHOTBANK_PRIVATE_KEY", "SHOTBANK_OPERATOR_KEY")
        }
        # The in-project model (no real CLIP weights can be downloaded for development)
        # and one decode worker; explicit SHOTBANK_VALIDATOR_* settings win.
        env.setdefault("SHOTBANK_VALIDATOR_MODEL", "shotbank-tiny")
        env.setdefault("SHOTBANK_VALIDATOR_PRETRAINED", "synthetic-v1")
        env.setdefault("SHOTBANK_VALIDATOR_WORKERS", "1")
        env.update(
            {
                "SHOTBANK_KEY_FILE": str(key_file),
                "SHOTBANK_VALIDATOR_API_URL": self.api_base,
                "SHOTBANK_VALIDATOR_RPC_URL": self.rpc_url,
                "SHOTBANK_VALIDATOR_STATE_DIR": str(self.var_dir / "validator"),
                "SHOTBANK_VALIDATOR_METRICS_HOST": "127.0.0.1",
                "SHOTBANK_VALIDATOR_METRICS_PORT": str(port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return ManagedProcess(
            "validator",
            [sys.executable, "-c", "from shotbank.cli import main; main()", "validator", "run"],
            # Metrics are served last in the node's start-up (model, stake, sign-in first).
            ready=lambda: _http_ok(f"http://127.0.0.1:{port}/metrics"),
            env=env,
            cwd=self.options.project_root,
            log_path=self.log_dir / "validator.log",
            stop_timeout_s=self.options.stop_timeout_s,
        )

    # --- contracts -------------------------------------------------------------------

    def deploy_or_reuse(self, w3: Web3) -> tuple[Deployment, bool]:
        """The contracts on ``w3``'s chain and whether they were reused (not deployed now).

        Reuse needs the deployments file's entry for the dev chain, code at every address,
        and the artifacts recorded at deployment to equal the shipped ones.
        """
        path = self.settings.deployments_path
        fingerprint = artifacts_fingerprint()
        existing = load_deployments(path).get(DEV_CHAIN_ID)
        if existing is not None:
            why_not = self._why_not_reusable(w3, existing, fingerprint)
            if why_not is None:
                self._say(f"reusing the contracts in {path}")
                return existing, True
            self._say(f"deploying the contracts again: {why_not}")
        else:
            self._say("deploying the contracts")
        deployer = self.accounts[_DEPLOYER]
        deployment = deploy_all(
            w3,
            deployer,
            treasury=deployer.address,
            guardian=self.accounts[_GUARDIAN].address,
            params=DEV_DEPLOY_PARAMS,
        )
        with self._shielded():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_deployment(path, deployment)
            record = _DeployedArtifacts(
                chain_id=DEV_CHAIN_ID,
                artifacts_sha256=fingerprint,
                contracts=dict(deployment.contracts),
                deploy_params=DEV_DEPLOY_PARAMS,
            )
            self.artifacts_file.write_text(record.model_dump_json(indent=2) + "\n")
        return deployment, False

    def _why_not_reusable(self, w3: Web3, deployment: Deployment, fingerprint: str) -> str | None:
        missing = [name for name in CONTRACT_NAMES if name not in deployment.contracts]
        if missing:
            return f"the deployments file lacks {', '.join(missing)}"
        for name in CONTRACT_NAMES:
            if not w3.eth.get_code(Web3.to_checksum_address(deployment.contracts[name])):
                return f"no code at {name} {deployment.contracts[name]} (chain state was reset)"
        try:
            record = _DeployedArtifacts.model_validate_json(self.artifacts_file.read_bytes())
        except (OSError, ValidationError):
            return f"{self.artifacts_file} is missing or unreadable"
        if record.contracts != dict(deployment.contracts):
            return "the deployed contracts are not the ones recorded with their artifacts"
        if record.artifacts_sha256 != fingerprint:
            return "the contract artifacts changed since they were deployed"
        if record.deploy_params != DEV_DEPLOY_PARAMS:
            return "the contracts were deployed with other parameters (challenge window...)"
        return None

    def fund_dev_accounts(self, w3: Web3, deployment: Deployment) -> None:
        """Top every funded dev account up to ``fund_shot`` SHOT from the treasury."""
        token = ShotToken.from_deployment(w3, deployment)
        decimals = token.decimals()
        target = self.options.fund_shot * 10**decimals
        treasury = self.accounts[_DEPLOYER]
        transfers: list[tuple[str, int]] = []
        for role in DEV_ROLES:
            if role.funded:
                address = self.accounts[role.index].address
                balance = token.balance_of(address)
                if balance < target:
                    transfers.append((address, target - balance))
        if not transfers:
            return
        needed = sum(amount for _, amount in transfers)
        available = token.balance_of(treasury.address)
        if available < needed:
            raise DevstackError(
                f"The treasury holds {_format_shot(available, decimals)} SHOT, "
                f"{_format_shot(needed, decimals)} are needed to fund the dev accounts; "
                "lower SHOTBANK_DEVSTACK_FUND_SHOT."
            )
        self._say(f"funding {len(transfers)} dev accounts with SHOT")
        for recipient, amount in transfers:
            send_call(w3, treasury, token.transfer(recipient, amount), timeout_s=_TX_TIMEOUT_S)

    def stake_local_validator(self, w3: Web3, deployment: Deployment) -> None:
        """Stake :data:`LOCAL_VALIDATOR` with the registry's ``minStake``, unless it is.

        The SHOT come from the treasury, only as much as the stake lacks.
        """
        registry = ValidatorRegistry.from_deployment(w3, deployment)
        token = ShotToken.from_deployment(w3, deployment)
        validator = self.accounts[LOCAL_VALIDATOR]
        missing = registry.min_stake() - registry.stake_of(validator.address)
        if missing <= 0:
            return
        self._say(f"staking the local validator {validator.address}")
        shortfall = missing - token.balance_of(validator.address)
        if shortfall > 0:
            treasury = self.accounts[_DEPLOYER]
            if token.balance_of(treasury.address) < shortfall:
                raise DevstackError(
                    "The treasury cannot fund the local validator's stake "
                    f"({_format_shot(shortfall, token.decimals())} SHOT)."
                )
            send_call(
                w3, treasury, token.transfer(validator.address, shortfall), timeout_s=_TX_TIMEOUT_S
            )
        send_call(w3, validator, token.approve(registry.address, missing), timeout_s=_TX_TIMEOUT_S)
        send_call(w3, validator, registry.stake(missing), timeout_s=_TX_TIMEOUT_S)

    def fund_reward_pool(self, w3: Web3, deployment: Deployment) -> None:
        """Fund the RewardDistributor with ``reward_pool_shot`` SHOT, unless it ever was.

        ``totalFunded()`` only grows, so a pool funded once (by this, an emission draw or a
        sale) is never funded again by the devstack.
        """
        distributor = RewardDistributor.from_deployment(w3, deployment)
        token = ShotToken.from_deployment(w3, deployment)
        amount = self.options.reward_pool_shot * 10 ** token.decimals()
        if amount == 0 or distributor.total_funded() > 0:
            return
        treasury = self.accounts[_DEPLOYER]
        if token.balance_of(treasury.address) < amount:
            raise DevstackError(
                f"The treasury cannot fund the reward pool with {self.options.reward_pool_shot:,} "
                "SHOT; lower SHOTBANK_DEVSTACK_REWARD_POOL_SHOT."
            )
        self._say(f"funding the reward pool with {self.options.reward_pool_shot:,} SHOT")
        send_call(w3, treasury, token.approve(distributor.address, amount), timeout_s=_TX_TIMEOUT_S)
        send_call(w3, treasury, distributor.fund(amount), timeout_s=_TX_TIMEOUT_S)

    # --- output ----------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.console.print(f"[bold blue]\\[devstack][/] {message}")

    def _print_banner(self, deployment: Deployment, *, reused: bool) -> None:
        base = self.api_base
        assert self._w3 is not None
        token = ShotToken.from_deployment(self._w3, deployment)
        decimals = token.decimals()
        print_ = self.console.print
        print_()
        print_(f"[bold green]{'=' * 26} Shotbank devstack is up {'=' * 26}[/]")
        for label, value in (
            ("Web app", f"{base}/"),
            ("API", f"{base}/api/v1"),
            ("API docs", f"{base}/docs   (OpenAPI: {base}/openapi.json)"),
            ("Health", f"{base}/api/v1/health"),
            ("Chain RPC", f"{self.rpc_url}   (anvil, chain id {DEV_CHAIN_ID})"),
            ("Database", self.settings.database_url_display),
            ("State", f"{self.var_dir}   (chain: {self.state_file.name}, logs: log/)"),
        ):
            print_(f"  [bold]{label:<11}[/] {escape(value)}")
        how = (
            f"reused from {self.settings.deployments_path}"
            if reused
            else f"deployed from block {deployment.start_block}"
        )
        print_(f"\n[bold]Contracts[/] ({escape(how)})")
        for name, address in deployment.contracts.items():
            print_(f"  {name:<19} {address}")
        validator = self.accounts[LOCAL_VALIDATOR].address
        staked = ValidatorRegistry.from_deployment(self._w3, deployment).stake_of(validator)
        print_(
            f"\n[bold]Validator[/] {validator}   "
            f"(dev account {LOCAL_VALIDATOR}, {_format_shot(staked, decimals)} SHOT staked)"
        )
        distributor = RewardDistributor.from_deployment(self._w3, deployment)
        print_(
            f"[bold]Rewards[/]   pool {_format_shot(distributor.total_funded(), decimals)} SHOT "
            f"funded, epochs every {DEV_EPOCH_LENGTH_S} s, challenge window "
            f"{distributor.challenge_window()} s, operator: dev account {_DEPLOYER}"
        )
        if self.options.validator_node:
            port = self.options.validator_metrics_port
            print_(
                f"  node: shotbank validator run, metrics http://127.0.0.1:{port}/metrics, "
                "log log/validator.log"
            )
        print_(
            "\n[bold red]DEV ONLY[/] - anvil's well-known keys from the public test mnemonic; "
            "anyone can spend from them on any real network. Never fund them."
        )
        print_(f"  {'#':>2} {'role':<20} {'address':<42} {'private key':<66} SHOT")
        for role in DEV_ROLES:
            account = self.accounts[role.index]
            balance = token.balance_of(account.address)
            print_(
                f"  {role.index:>2} {role.role:<20} {account.address} "
                f"0x{account.key.hex()} {_format_shot(balance, decimals)}"
            )
        print_(f"  mnemonic: {DEV_MNEMONIC}")
        print_("\nPress Ctrl-C to stop; the chain state is kept for the next `make up`.")
        print_(f"[bold green]{'=' * 77}[/]")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m backend.devstack``; returns the exit status."""
    if argv:
        print(__doc__)
        return 0 if argv[0] in {"-h", "--help"} else 2
    console = Console(highlight=False, soft_wrap=True)
    try:
        stack = Devstack(Settings(), DevstackSettings(), console=console)
    except (ValidationError, BackendError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 1
    return stack.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
