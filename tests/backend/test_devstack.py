"""``make up``: the devstack's refusals, and the real stack started, stopped and restarted."""

from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from rich.console import Console
from sqlmodel import Session
from web3 import HTTPProvider, Web3

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.devstack import (
    DEV_DEPLOY_PARAMS,
    DEV_ROLES,
    LOCAL_VALIDATOR,
    Devstack,
    DevstackSettings,
    ensure_port_free,
)
from backend.errors import DevstackError, PortInUseError
from backend.services import stakes
from backend.services.outboxstore import operator_account
from scoring.clipgen import scene_frames, tone, write_clip
from scoring.synthetic import Scene
from shotbank.annotation.vocabulary import LightingSetup
from shotbank.chain.contracts import RewardDistributor, ShotToken, ValidatorRegistry, send_call
from shotbank.chain.deployments import load_deployments
from shotbank.chain.devnode import AnvilNode, dev_accounts
from shotbank.client import ShotbankClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
#: Private key of anvil's account 0 (public knowledge): the banner must show it.
DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _quiet_stack(settings: Settings, **options: Any) -> tuple[Devstack, io.StringIO]:
    output = io.StringIO()
    console = Console(file=output, width=200, highlight=False, soft_wrap=True)
    return Devstack(settings, DevstackSettings(**options), console=console), output


# --- refusals (no processes started) --------------------------------------------------------


def test_port_check_names_the_port_and_the_variable_to_change() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(
            PortInUseError, match=rf"Port {port} .* set SHOTBANK_DEVSTACK_ANVIL_PORT"
        ):
            ensure_port_free(port, what="anvil", env_var="SHOTBANK_DEVSTACK_ANVIL_PORT")
    ensure_port_free(port, what="anvil", env_var="SHOTBANK_DEVSTACK_ANVIL_PORT")


def test_devstack_exits_1_with_a_clear_message_when_the_chain_port_is_taken(
    settings: Settings,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        stack, output = _quiet_stack(settings, anvil_port=listener.getsockname()[1])
        assert stack.run() == 1
    assert "already in use" in output.getvalue()
    assert "SHOTBANK_DEVSTACK_ANVIL_PORT" in output.getvalue()
    assert stack.services == []


def test_devstack_refuses_a_var_dir_another_devstack_holds(settings: Settings) -> None:
    settings.var_dir.mkdir(parents=True)
    fd = os.open(settings.var_dir / "devstack.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        stack, output = _quiet_stack(settings, anvil_port=_free_port())
        assert stack.run() == 1
    finally:
        os.close(fd)
    assert "Another devstack is running" in output.getvalue()


def test_devstack_refuses_to_run_outside_development(make_settings: Any) -> None:
    production = make_settings(environment="production", secret_key="s" * 40)
    with pytest.raises(DevstackError, match="SHOTBANK_ENVIRONMENT=development"):
        Devstack(production, DevstackSettings())


def test_devstack_refuses_a_chain_id_other_than_the_dev_chain(make_settings: Any) -> None:
    with pytest.raises(DevstackError, match="31337"):
        Devstack(make_settings(chain_id=1), DevstackSettings())


# --- the real stack -----------------------------------------------------------------------


@dataclass
class RunningStack:
    """A devstack subprocess and where to reach it."""

    process: subprocess.Popen[bytes]
    api: str
    rpc: str
    output: Path
    #: The local validator node's metrics endpoint.
    validator_metrics: str = ""

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def w3(self) -> Web3:
        return Web3(HTTPProvider(self.rpc, request_kwargs={"timeout": 10}))


def _processes_of(var_dir: Path) -> list[int]:
    """Pids whose command line or environment mentions ``var_dir`` (anvil, backend)."""
    needle = str(var_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (
                needle in (entry / "cmdline").read_bytes()
                or needle in (entry / "environ").read_bytes()
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


@pytest.fixture
def start_stack(tmp_path: Path, anvil_binary: Path) -> Iterator[Any]:
    """Start ``python -m backend.devstack`` on free ports; kill leftovers at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(var_dir: Path, name: str) -> RunningStack:
        api_port, anvil_port, metrics_port = _free_port(), _free_port(), _free_port()
        env = dict(os.environ)
        env.update(
            {
                "SHOTBANK_VAR_DIR": str(var_dir),
                "SHOTBANK_PORT": str(api_port),
                "SHOTBANK_DEVSTACK_ANVIL_PORT": str(anvil_port),
                "SHOTBANK_DEVSTACK_VALIDATOR_METRICS_PORT": str(metrics_port),
                "SHOTBANK_ANVIL": str(anvil_binary),
                "NO_COLOR": "1",
            }
        )
        output = tmp_path / f"{name}.out"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "backend.devstack"],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        stack = RunningStack(
            process,
            f"http://127.0.0.1:{api_port}",
            f"http://127.0.0.1:{anvil_port}",
            output,
            validator_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"devstack exited with {process.returncode}:\n{stack.text()}")
            try:
                health = httpx.get(f"{stack.api}/api/v1/health", timeout=2).json()
                if health["chain"]["reachable"] and "Press Ctrl-C" in stack.text():
                    return stack
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"devstack not up in {STARTUP_TIMEOUT_S} s:\n{stack.text()}")
            time.sleep(0.2)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def _stop(stack: RunningStack, sig: signal.Signals, var_dir: Path) -> None:
    stack.process.send_signal(sig)
    try:
        code = stack.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"devstack did not stop on {sig.name}:\n{stack.text()}")
    assert code == 0, stack.text()
    assert _processes_of(var_dir) == [], "a service outlived the devstack"
    assert _refused(stack.rpc)
    assert _refused(stack.api)


@pytest.mark.chain
@pytest.mark.slow
def test_devstack_deploys_stops_cleanly_and_reuses_the_deployment(
    tmp_path: Path, start_stack: Any
) -> None:
    var_dir = tmp_path / "var"
    deployer = dev_accounts(1)[0].address

    first = start_stack(var_dir, "first")
    version = httpx.get(f"{first.api}/api/v1/version", timeout=5).json()
    contracts = version["contracts"]
    assert version["chain_id"] == 31337
    assert {"ShotToken", "ValidatorRegistry", "RewardDistributor", "DatasetMarket"} <= set(
        contracts
    )
    w3 = first.w3()
    for name, address in contracts.items():
        assert w3.eth.get_code(address) != b"", f"no code at {name}"
    nonce_after_first = w3.eth.get_transaction_count(deployer)
    banner = first.text()
    assert "DEV ONLY" in banner
    assert DEV_KEY_0 in banner
    assert all(address in banner for address in contracts.values())
    deployments = (var_dir / "deployments.json").read_bytes()

    # The local validator is staked, and the backend's snapshot shows it within seconds.
    validator = dev_accounts(LOCAL_VALIDATOR + 1)[LOCAL_VALIDATOR].address
    registry = ValidatorRegistry(w3, contracts["ValidatorRegistry"])
    assert registry.stake_of(validator) >= registry.min_stake() > 0
    assert f"Validator {validator}" in banner
    config = httpx.get(f"{first.api}/api/v1/validator/config", timeout=5).json()
    assert config["validator_registry"] == registry.address
    assert (config["quorum"], config["confirmations"]) == (1, 1)
    assert config["min_stake_wei"] == str(registry.min_stake())
    engine = create_db_engine(Settings(var_dir=var_dir))
    try:
        deadline = time.monotonic() + 30
        while True:
            with Session(engine) as session:
                snapshot = stakes.snapshot_of(session, validator)
            if snapshot is not None and snapshot.is_active:
                break
            assert time.monotonic() < deadline, f"the backend never saw the stake:\n{first.text()}"
            time.sleep(0.2)
    finally:
        engine.dispose()
    validator_nonce = w3.eth.get_transaction_count(validator)

    _stop(first, signal.SIGINT, var_dir)
    assert (var_dir / "chain" / "anvil-state.json").is_file()

    second = start_stack(var_dir, "second")
    again = httpx.get(f"{second.api}/api/v1/version", timeout=5).json()
    assert again["contracts"] == contracts
    assert (var_dir / "deployments.json").read_bytes() == deployments
    # Not one transaction from the deployer: nothing was deployed or funded again.
    assert second.w3().eth.get_transaction_count(deployer) == nonce_after_first
    assert second.w3().eth.get_transaction_count(validator) == validator_nonce, "staked again"
    assert "reusing the contracts" in second.text()

    _stop(second, signal.SIGTERM, var_dir)


@pytest.mark.chain
@pytest.mark.slow
def test_the_local_validator_node_scores_an_uploaded_clip(tmp_path: Path, start_stack: Any) -> None:
    var_dir = tmp_path / "var"
    stack = start_stack(var_dir, "scoring")
    metrics = httpx.get(stack.validator_metrics, timeout=5)
    assert metrics.status_code == 200
    assert "shotbank_validator_leases_total" in metrics.text
    clip = write_clip(
        tmp_path / "red-circle.mp4",
        scene_frames(Scene("red", "circle", LightingSetup.NATURAL), seconds=2.5, size=(640, 480)),
        audio=tone(300.0, seconds=2.5),
    )
    document = {
        "schema_version": "1",
        "scene": {"description": "A red circle.", "setting": "interior"},
        "camera": {"movement": "static"},
        "lighting": {"setup": "natural"},
        "audio": {"genre": "ambience", "dialogue": False, "recording": "studio"},
        "rights": {
            "licence": "cc0-1.0",
            "model_release": "not_required",
            "location_release": "not_required",
        },
    }
    with ShotbankClient(stack.api) as client:
        client.sign_in(Account.create())
        clip_id = client.create_clip(client.upload(clip).upload_id, document).id
        decided = client.wait_for_clip(
            clip_id,
            timeout_s=120,
            interval_s=0.5,
            done=lambda c: c.status in ("accepted", "rejected", "failed"),
        )
    assert decided.status == "accepted", (decided.status, decided.reasons, stack.text())
    reports = httpx.get(f"{stack.api}/api/v1/clips/{clip_id}/reports", timeout=5).json()
    validator = dev_accounts(LOCAL_VALIDATOR + 1)[LOCAL_VALIDATOR].address
    assert [r["validator"] for r in reports["reports"]] == [validator]
    assert (var_dir / "log" / "validator.log").is_file()
    _stop(stack, signal.SIGTERM, var_dir)
    log = (var_dir / "log" / "validator.log").read_text()
    assert "submitted 1" in log


@pytest.mark.chain
@pytest.mark.slow
def test_services_die_with_a_killed_devstack(tmp_path: Path, start_stack: Any) -> None:
    var_dir = tmp_path / "var"
    stack = start_stack(var_dir, "killed")
    assert len(_processes_of(var_dir)) >= 2
    stack.process.kill()
    stack.process.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _processes_of(var_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_of(var_dir) == [], "orphaned services after SIGKILL of the devstack"


# --- deployment reuse and funding, against a fresh anvil -----------------------------------


@pytest.mark.chain
def test_deployment_is_reused_only_while_code_and_artifacts_match(
    settings: Settings, anvil_w3: Web3
) -> None:
    stack, _ = _quiet_stack(settings)
    settings.var_dir.joinpath("chain").mkdir(parents=True)
    first, reused = stack.deploy_or_reuse(anvil_w3)
    assert not reused
    assert stack.deploy_or_reuse(anvil_w3) == (first, True)

    record = json.loads(stack.artifacts_file.read_text())
    record["artifacts_sha256"] = "0" * 64
    stack.artifacts_file.write_text(json.dumps(record))
    redeployed, reused = stack.deploy_or_reuse(anvil_w3)
    assert not reused
    assert redeployed.contracts["ShotToken"] != first.contracts["ShotToken"]
    assert load_deployments(settings.deployments_path)[31337] == redeployed


@pytest.mark.chain
def test_deployment_is_redeployed_when_the_chain_lost_its_code(
    settings: Settings, anvil_w3: Web3, anvil_binary: Path
) -> None:
    stack, output = _quiet_stack(settings)
    settings.var_dir.joinpath("chain").mkdir(parents=True)
    stack.deploy_or_reuse(anvil_w3)
    with AnvilNode(anvil_binary) as fresh:
        _, reused = stack.deploy_or_reuse(Web3(HTTPProvider(fresh.url)))
    assert not reused
    assert "chain state was reset" in output.getvalue()


@pytest.mark.chain
def test_funding_tops_dev_accounts_up_once(settings: Settings, anvil_w3: Web3) -> None:
    stack, _ = _quiet_stack(settings, fund_shot=1_500)
    settings.var_dir.joinpath("chain").mkdir(parents=True)
    deployment, _ = stack.deploy_or_reuse(anvil_w3)
    stack.fund_dev_accounts(anvil_w3, deployment)
    token = ShotToken.from_deployment(anvil_w3, deployment)
    funded = [stack.accounts[role.index].address for role in DEV_ROLES if role.funded]
    assert {token.balance_of(address) for address in funded} == {1_500 * 10**18}
    assert token.balance_of(stack.accounts[1].address) == 0
    treasury = stack.accounts[0].address
    nonce = anvil_w3.eth.get_transaction_count(treasury)
    stack.fund_dev_accounts(anvil_w3, deployment)
    assert anvil_w3.eth.get_transaction_count(treasury) == nonce


@pytest.mark.chain
def test_the_local_validator_is_staked_once_with_the_minimum_stake(
    settings: Settings, anvil_w3: Web3
) -> None:
    stack, output = _quiet_stack(settings)
    settings.var_dir.joinpath("chain").mkdir(parents=True)
    deployment, _ = stack.deploy_or_reuse(anvil_w3)
    stack.fund_dev_accounts(anvil_w3, deployment)
    stack.stake_local_validator(anvil_w3, deployment)
    registry = ValidatorRegistry.from_deployment(anvil_w3, deployment)
    validator = stack.accounts[LOCAL_VALIDATOR].address
    funded = {stack.accounts[role.index].address for role in DEV_ROLES if role.funded}
    assert validator not in funded
    assert registry.stake_of(validator) == registry.min_stake() > 0
    assert registry.is_active_validator(validator)
    assert "staking the local validator" in output.getvalue()

    nonces = [anvil_w3.eth.get_transaction_count(a) for a in (validator, stack.accounts[0].address)]
    stack.stake_local_validator(anvil_w3, deployment)
    stack.fund_dev_accounts(anvil_w3, deployment)
    assert [
        anvil_w3.eth.get_transaction_count(a) for a in (validator, stack.accounts[0].address)
    ] == nonces


# --- rewards in the dev deployment ----------------------------------------------------------


@pytest.mark.chain
def test_the_reward_pool_is_funded_once_and_emission_is_the_distributors_to_draw(
    settings: Settings, anvil_w3: Web3
) -> None:
    stack, output = _quiet_stack(settings, reward_pool_shot=2_500)
    settings.var_dir.joinpath("chain").mkdir(parents=True)
    deployment, _ = stack.deploy_or_reuse(anvil_w3)
    distributor = RewardDistributor.from_deployment(anvil_w3, deployment)
    token = ShotToken.from_deployment(anvil_w3, deployment)
    assert distributor.challenge_window() == 60
    assert distributor.max_snapshot_age() == DEV_DEPLOY_PARAMS.max_snapshot_age_blocks
    stack.fund_reward_pool(anvil_w3, deployment)
    assert distributor.total_funded() == 2_500 * 10**18
    assert "funding the reward pool with 2,500 SHOT" in output.getvalue()

    treasury = stack.accounts[0].address
    nonce = anvil_w3.eth.get_transaction_count(treasury)
    stack.fund_reward_pool(anvil_w3, deployment)
    assert anvil_w3.eth.get_transaction_count(treasury) == nonce

    # The backend's operator draws scheduled emission into the pool at each epoch close.
    assert token.reward_distributor() == distributor.address
    anvil_w3.provider.make_request("evm_increaseTime", [30])  # type: ignore[arg-type]
    anvil_w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    send_call(anvil_w3, stack.accounts[0], distributor.draw_emission())
    assert distributor.total_funded() > 2_500 * 10**18


@pytest.mark.chain
def test_a_deployment_with_other_parameters_is_deployed_again(
    settings: Settings, anvil_w3: Web3
) -> None:
    stack, output = _quiet_stack(settings)
    settings.var_dir.joinpath("chain").mkdir(parents=True)
    first, _ = stack.deploy_or_reuse(anvil_w3)
    record = json.loads(stack.artifacts_file.read_text())
    record["deploy_params"]["challenge_window_s"] = 3600
    stack.artifacts_file.write_text(json.dumps(record))
    again, reused = stack.deploy_or_reuse(anvil_w3)
    assert not reused
    assert again.contracts["RewardDistributor"] != first.contracts["RewardDistributor"]
    assert "deployed with other parameters" in output.getvalue()


def test_the_backend_runs_short_epochs_as_dev_account_0_and_the_validator_never_sees_that_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, _ = _quiet_stack(settings)
    settings.var_dir.joinpath("chain").mkdir(parents=True)
    backend_env = stack._backend_service().env
    assert backend_env is not None
    assert backend_env["SHOTBANK_OPERATOR_KEY"] == DEV_KEY_0
    assert backend_env["SHOTBANK_EPOCH_LENGTH_S"] == "120"
    for name in (
        "SHOTBANK_OPERATOR_KEY",
        "SHOTBANK_EPOCH_LENGTH_S",
        "SHOTBANK_OUTBOX_CONFIRMATIONS",
    ):
        monkeypatch.setenv(name, backend_env[name])
    started = Settings()
    assert operator_account(started).address == dev_accounts(1)[0].address
    assert (started.epoch_length_s, started.outbox_confirmations) == (120, 1)

    validator_env = stack._validator_service().env
    assert validator_env is not None
    assert "SHOTBANK_OPERATOR_KEY" not in validator_env
