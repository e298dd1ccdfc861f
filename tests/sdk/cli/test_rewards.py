"""``shotbank rewards show|claim`` against real contracts on anvil.

One chain per module: the four contracts deployed, three validators staked, the pool
funded, and a real rewards tree's root signed by the validators, submitted and past its
challenge window; each test starts from an anvil snapshot of that state. The backend's
``GET /rewards/{address}`` answers come from a plain HTTP server serving the JSON the
API contract describes, built from that same tree (the end-to-end run against the real
backend is in ``test_rewards_live.py``).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shotbank.chain.contracts import send_call
from shotbank.chain.deploy import deploy_all
from shotbank.chain.devnode import AnvilNode, dev_accounts
from shotbank.chain.eip712 import EpochRoot, bundle_signatures
from shotbank.chain.merkle import StandardMerkleTree, rewards_tree
from shotbank.chain.rpc import RetryPolicy, connect
from shotbank.cli import main
from shotbank.cli.credentials import KEY_ARGUMENT_REFUSAL
from shotbank.cli.rewards import format_shot
from tests.sdk.chain.conftest import TEST_PARAMS
from tests.sdk.chain.test_rewards import Setup, rpc

pytestmark = pytest.mark.chain

SHOT = 10**18


@dataclass
class Backend:
    """A plain HTTP server answering ``GET /api/v1/rewards/{address}`` from a dict."""

    url: str
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def serve(self, address: str, body: Any, status: int = 200) -> None:
        self.answers[f"/api/v1/rewards/{address}"] = (status, body)


@pytest.fixture
def backend() -> Iterator[Backend]:
    holder: dict[str, Backend] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = holder["backend"]
            server.requests.append(self.path)
            status, body = server.answers.get(
                self.path,
                (404, {"error": {"code": "not_found", "message": f"no {self.path}"}}),
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    holder["backend"] = Backend(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield holder["backend"]
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@dataclass
class World:
    """The module's chain: a claimable epoch-1 root over :attr:`amounts`."""

    node: AnvilNode
    w3: Web3
    setup: Setup
    tree: StandardMerkleTree
    amounts: dict[str, int]
    stranger: LocalAccount  # in the tree, holds no ETH and no SHOT

    @property
    def distributor(self) -> str:
        return self.setup.distributor.address

    def body(self, address: str, **changes: Any) -> dict[str, Any]:
        """The rewards answer for ``address`` with a claim over its whole cumulative amount."""
        amount = self.amounts[address]
        claim = {
            "epoch": 1,
            "root": self.tree.root,
            "cumulative_amount": str(amount),
            "proof": self.tree.get_proof([address, amount]),
            "distributor": self.distributor,
            "chain_id": 31337,
        }
        claim.update(changes.pop("claim", {}))
        body = {
            "address": address,
            "earned": str(amount),
            "claimed": "0",
            "claimable": str(amount),
            "pending": "0",
            "claim": claim,
            "epochs": [
                {
                    "epoch": 1,
                    "amount": str(amount),
                    "cumulative": str(amount),
                    "status": "claimable",
                }
            ],
        }
        body.update(changes)
        return body

    def balance(self, address: str) -> int:
        return self.setup.token.balance_of(address)


@pytest.fixture(scope="module")
def module_world(anvil_binary: Path) -> Iterator[World]:
    keys = dev_accounts(10)
    with AnvilNode(anvil_binary) as node:
        w3 = connect(node.url, expected_chain_id=31337, policy=RetryPolicy(attempts=3))
        deployment = deploy_all(
            w3, keys[0], treasury=keys[1].address, guardian=keys[2].address, params=TEST_PARAMS
        )
        setup = Setup(w3, deployment, keys)
        stranger: LocalAccount = Account.create()
        amounts: dict[str, int] = {
            setup.contributors[0].address: 120 * SHOT,
            setup.contributors[1].address: 7 * SHOT + 3,
            stranger.address: 55 * SHOT,
        }
        tree = rewards_tree(amounts)
        root = EpochRoot(epoch=1, root=tree.root, cumulative_total=sum(amounts.values()))
        bundle = bundle_signatures(
            root,
            [s.signature for s in setup.sign_all(root)],
            chain_id=31337,
            verifying_contract=setup.registry.address,
        )
        send_call(
            w3, setup.treasury, setup.distributor.submit_root(root, setup.snapshot_block, bundle)
        )
        setup.pass_challenge_window()
        assert setup.distributor.claimable_root() == tree.root
        yield World(node, w3, setup, tree, amounts, stranger)


@pytest.fixture
def world(module_world: World) -> Iterator[World]:
    """The module's chain, reverted to its claimable state after the test."""
    snapshot = rpc(module_world.w3, "evm_snapshot")
    yield module_world
    assert rpc(module_world.w3, "evm_revert", snapshot) is True


def rewards(*args: str, key: LocalAccount | None = None) -> Result:
    env = {"SHOTBANK_PRIVATE_KEY": "0x" + bytes(key.key).hex()} if key is not None else {}
    return CliRunner().invoke(main, ["rewards", *args], env=env, catch_exceptions=False)


def claim(world: World, backend: Backend, *args: str, key: LocalAccount) -> Result:
    return rewards("claim", "--api", backend.url, "--rpc-url", world.node.url, *args, key=key)


# --- claim -------------------------------------------------------------------------------


def test_claim_pays_the_cumulative_amount_and_prints_the_event_amount_and_new_balance(
    world: World, backend: Backend
) -> None:
    contributor = world.setup.contributors[0]
    backend.serve(contributor.address, world.body(contributor.address))
    before = world.balance(contributor.address)
    result = claim(world, backend, key=contributor)
    assert result.exit_code == 0, result.output
    paid = world.amounts[contributor.address]
    assert world.balance(contributor.address) == before + paid
    assert world.setup.distributor.claimed(contributor.address) == paid
    assert f"claimed for {contributor.address}" in result.output
    assert f"paid       {format_shot(paid)}" in result.output
    assert f"balance    {format_shot(before + paid)}" in result.output
    tx_hash = result.output.split("tx ", 1)[1].split()[0]
    receipt = world.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert receipt["from"] == contributor.address


def test_claim_with_json_prints_amounts_as_decimal_strings(world: World, backend: Backend) -> None:
    contributor = world.setup.contributors[1]
    backend.serve(contributor.address, world.body(contributor.address))
    before = world.balance(contributor.address)
    result = claim(world, backend, "--json", key=contributor)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["amount"] == str(7 * SHOT + 3)
    assert printed["balance"] == str(before + 7 * SHOT + 3)
    assert printed["account"] == printed["sender"] == contributor.address
    assert printed["epoch"] == 1


def test_a_second_claim_with_the_same_proof_pays_nothing_and_exits_zero(
    world: World, backend: Backend
) -> None:
    contributor = world.setup.contributors[0]
    backend.serve(contributor.address, world.body(contributor.address))
    assert claim(world, backend, key=contributor).exit_code == 0
    balance = world.balance(contributor.address)
    nonce = world.w3.eth.get_transaction_count(contributor.address)
    # The backend has not indexed the payment yet and still offers the claim.
    again = claim(world, backend, key=contributor)
    assert again.exit_code == 0, again.output
    assert "nothing to claim" in again.output
    assert "already paid on chain" in again.output
    assert world.balance(contributor.address) == balance
    assert world.w3.eth.get_transaction_count(contributor.address) == nonce


def test_nothing_claimable_says_so_and_exits_zero(world: World, backend: Backend) -> None:
    contributor = world.setup.contributors[2]
    backend.serve(
        contributor.address,
        {
            "address": contributor.address,
            "earned": str(3 * SHOT),
            "claimed": "0",
            "claimable": "0",
            "pending": str(3 * SHOT),
            "claim": None,
            "epochs": [],
        },
    )
    result = claim(world, backend, key=contributor)
    assert result.exit_code == 0, result.output
    assert f"nothing to claim for {contributor.address}" in result.output
    assert "3 SHOT pending" in result.output


def test_a_beneficiary_claim_pays_the_account_in_the_leaf_never_the_sender(
    world: World, backend: Backend
) -> None:
    sender = world.setup.contributors[0]
    stranger = world.stranger.address
    backend.serve(stranger, world.body(stranger))
    sender_before = world.balance(sender.address)
    result = claim(world, backend, "--beneficiary", stranger.lower(), key=sender)
    assert result.exit_code == 0, result.output
    assert world.balance(stranger) == 55 * SHOT
    assert world.balance(sender.address) == sender_before
    assert f"claimed for {stranger} (sent by {sender.address})" in result.output
    assert backend.requests == [f"/api/v1/rewards/{stranger}"]


def test_a_claim_for_another_chain_is_refused_before_anything_is_sent(
    world: World, backend: Backend
) -> None:
    contributor = world.setup.contributors[0]
    backend.serve(contributor.address, world.body(contributor.address, claim={"chain_id": 8453}))
    nonce = world.w3.eth.get_transaction_count(contributor.address)
    result = claim(world, backend, key=contributor)
    assert result.exit_code == 1
    assert "serves chain 31337, expected 8453" in result.output
    assert "point --rpc-url at that chain" in result.output
    assert world.w3.eth.get_transaction_count(contributor.address) == nonce


def test_a_claim_on_an_unexpected_distributor_is_refused(world: World, backend: Backend) -> None:
    contributor = world.setup.contributors[0]
    backend.serve(contributor.address, world.body(contributor.address))
    other = "0x" + "12" * 20
    result = claim(world, backend, "--distributor", other, key=contributor)
    assert result.exit_code == 1
    assert f"not the expected {Web3.to_checksum_address(other)}" in result.output


def test_a_distributor_address_without_the_contract_is_refused(
    world: World, backend: Backend
) -> None:
    contributor = world.setup.contributors[0]
    body = world.body(contributor.address, claim={"distributor": world.setup.token.address})
    backend.serve(contributor.address, body)
    result = claim(world, backend, key=contributor)
    assert result.exit_code == 1
    assert "is not a RewardDistributor" in result.output


def test_a_proof_that_does_not_prove_the_amount_is_refused_before_sending(
    world: World, backend: Backend
) -> None:
    contributor = world.setup.contributors[0]
    inflated = str(world.amounts[contributor.address] * 2)
    backend.serve(
        contributor.address, world.body(contributor.address, claim={"cumulative_amount": inflated})
    )
    nonce = world.w3.eth.get_transaction_count(contributor.address)
    result = claim(world, backend, key=contributor)
    assert result.exit_code == 1
    assert "proof does not prove" in result.output
    assert world.w3.eth.get_transaction_count(contributor.address) == nonce


def test_a_revert_is_reported_with_its_decoded_reason(world: World, backend: Backend) -> None:
    guardian = dev_accounts(3)[2]
    send_call(world.w3, guardian, world.setup.distributor.pause())
    contributor = world.setup.contributors[0]
    backend.serve(contributor.address, world.body(contributor.address))
    result = claim(world, backend, key=contributor)
    assert result.exit_code == 1
    assert "the claim was not paid" in result.output
    assert "RewardDistributorPaused()" in result.output


def test_an_rpc_that_is_down_is_a_clear_failure(
    world: World, backend: Backend, free_tcp_port: int
) -> None:
    contributor = world.setup.contributors[0]
    backend.serve(contributor.address, world.body(contributor.address))
    result = rewards(
        "claim",
        "--api",
        backend.url,
        "--rpc-url",
        f"http://127.0.0.1:{free_tcp_port}",
        key=contributor,
    )
    assert result.exit_code == 1
    assert f"cannot reach the chain RPC at http://127.0.0.1:{free_tcp_port}" in result.output


def test_a_backend_that_is_down_is_a_clear_failure(world: World, free_tcp_port: int) -> None:
    result = rewards(
        "claim",
        "--api",
        f"http://127.0.0.1:{free_tcp_port}",
        "--rpc-url",
        world.node.url,
        key=world.setup.contributors[0],
    )
    assert result.exit_code == 1
    assert "cannot get the rewards of" in result.output


# --- show --------------------------------------------------------------------------------


def test_show_prints_every_amount_in_shot_and_the_epochs(backend: Backend) -> None:
    address = Account.create().address
    backend.serve(
        address,
        {
            "address": address,
            "earned": str(12 * SHOT + 5 * 10**17),
            "claimed": str(2 * SHOT),
            "claimable": str(10 * SHOT),
            "pending": "1",
            "claim": {
                "epoch": 3,
                "root": "0x" + "ab" * 32,
                "cumulative_amount": str(12 * SHOT),
                "proof": ["0x" + "cd" * 32],
                "distributor": "0x" + "ef" * 20,
                "chain_id": 31337,
            },
            "epochs": [
                {"epoch": 4, "amount": "1", "cumulative": str(12 * SHOT + 1), "status": "closed"},
                {
                    "epoch": 3,
                    "amount": str(12 * SHOT),
                    "cumulative": str(12 * SHOT),
                    "status": "claimable",
                },
            ],
        },
    )
    result = rewards("show", address.lower(), "--api", backend.url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"rewards of {address}"
    assert "  earned     12.5 SHOT" in lines
    assert "  claimed    2 SHOT" in lines
    assert "  claimable  10 SHOT" in lines
    assert "  pending    0.000000000000000001 SHOT" in lines
    assert any("epoch 3 on chain 31337" in line for line in lines)
    assert any(line.split()[:2] == ["4", "closed"] for line in lines)
    as_json = rewards("show", address, "--api", backend.url, "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["earned"] == str(12 * SHOT + 5 * 10**17)


def test_show_without_an_address_shows_the_configured_key(backend: Backend) -> None:
    account: LocalAccount = Account.create()
    backend.serve(
        account.address,
        {
            "address": account.address,
            "earned": "0",
            "claimed": "0",
            "claimable": "0",
            "pending": "0",
            "claim": None,
            "epochs": [],
        },
    )
    result = rewards("show", "--api", backend.url, key=account)
    assert result.exit_code == 0, result.output
    assert f"rewards of {account.address}" in result.output
    assert "no epoch has paid this address yet" in result.output


def test_show_without_an_address_or_a_key_is_a_usage_error() -> None:
    result = rewards("show")
    assert result.exit_code == 2
    assert "no wallet key" in result.output


def test_show_refuses_something_that_is_not_an_address() -> None:
    result = rewards("show", "0x1234")
    assert result.exit_code == 2
    assert "not a 20-byte hex address" in result.output


def test_a_key_on_the_command_line_is_refused_before_anything_else() -> None:
    key = "0x" + bytes(Account.create().key).hex()
    for args in (["claim", "--beneficiary", key], ["show", key[2:]]):
        result = rewards(*args)
        assert result.exit_code == 2
        assert KEY_ARGUMENT_REFUSAL in result.output
        assert key[2:] not in result.output


@pytest.mark.parametrize(
    ("wei", "shown"),
    [
        (0, "0 SHOT"),
        (1, "0.000000000000000001 SHOT"),
        (10**18, "1 SHOT"),
        (1_234_567 * 10**18 + 5 * 10**17, "1,234,567.5 SHOT"),
        (2**256 - 1, None),
    ],
)
def test_format_shot_is_exact(wei: int, shown: str | None) -> None:
    text = format_shot(wei)
    if shown is not None:
        assert text == shown
    whole, _, fraction = text.removesuffix(" SHOT").partition(".")
    assert int(whole.replace(",", "")) * 10**18 + int(fraction.ljust(18, "0") or 0) == wei
