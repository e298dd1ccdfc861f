"""The deployments file: format of decision record 0001, atomic merging writes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from shotbank.chain.deployments import (
    Deployment,
    get_deployment,
    load_deployments,
    save_deployment,
)
from shotbank.chain.errors import DeploymentNotFoundError, DeploymentsFileError

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


def deployment(chain_id: int = 31337, start_block: int = 1) -> Deployment:
    return Deployment(
        chain_id=chain_id,
        start_block=start_block,
        contracts={"ShotToken": TOKEN.lower(), "ValidatorRegistry": REGISTRY},
    )


def test_saved_file_has_the_documented_camel_case_layout(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    save_deployment(path, deployment())
    assert json.loads(path.read_text()) == {
        "31337": {
            "chainId": 31337,
            "startBlock": 1,
            "contracts": {"ShotToken": TOKEN, "ValidatorRegistry": REGISTRY},
        }
    }
    assert load_deployments(path) == {31337: deployment()}


def test_addresses_are_stored_checksummed() -> None:
    assert deployment().address("ShotToken") == TOKEN


def test_save_merges_by_chain_id_and_replaces_the_same_chain(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    save_deployment(path, deployment(31337, 1))
    save_deployment(path, deployment(11155111, 5))
    save_deployment(path, deployment(31337, 9))
    loaded = load_deployments(path)
    assert sorted(loaded) == [31337, 11155111]
    assert loaded[31337].start_block == 9
    assert loaded[11155111].start_block == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _save_one(path: str, chain_id: int) -> None:
    save_deployment(Path(path), deployment(chain_id))


def test_concurrent_saves_of_different_chains_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.starmap(_save_one, [(str(path), 1000 + i) for i in range(12)])
    assert sorted(load_deployments(path)) == [1000 + i for i in range(12)]


def test_missing_file_is_empty_but_lookup_of_a_chain_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "none.json"
    assert load_deployments(path) == {}
    with pytest.raises(DeploymentNotFoundError, match="chain 31337"):
        get_deployment(path, 31337)
    with pytest.raises(DeploymentNotFoundError, match="DatasetMarket"):
        deployment().address("DatasetMarket")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"31337": {"chainId": 1, "startBlock": 0, "contracts": {}}}',
        '{"31337": {"chainId": 31337, "startBlock": -1, "contracts": {}}}',
        '{"31337": {"chainId": 31337, "startBlock": 0, "contracts": {"ShotToken": "0x12"}}}',
        '{"31337": {"chainId": 31337, "startBlock": 0, "contracts": {}, "extra": 1}}',
    ],
)
def test_invalid_files_raise_deployments_file_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(content)
    with pytest.raises(DeploymentsFileError):
        load_deployments(path)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_bytes(b" " * (1024 * 1024 + 1))
    with pytest.raises(DeploymentsFileError, match="larger"):
        load_deployments(path)
