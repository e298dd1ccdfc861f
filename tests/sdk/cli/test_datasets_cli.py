"""``shotbank datasets list|buy|licences|download`` against a live backend on a real anvil
with the real contracts: a trainer's whole path from finding a version to its verified
files, with the wallet key only in the environment; and the usage errors (exit 2) that
need no server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shotbank.chain.devnode import AnvilNode
from shotbank.cli import main
from shotbank.cli.datasets import parse_shot
from tests.backend.conftest import caller_for, closed_port, live, make_settings, upload_settings
from tests.backend.dataset_fixtures import Packed, clips
from tests.backend.live import Caller, LiveServer
from tests.sdk.datasets.market_world import (
    PRICE,
    SHOT,
    Market,
    chain,
    dataset_id,
    deployment,
    freeze,
    mining,
    operator,
    server,
    wait_for_listing,
)

__all__ = [
    "caller_for",
    "chain",
    "clips",
    "closed_port",
    "deployment",
    "live",
    "make_settings",
    "operator",
    "server",
    "upload_settings",
]


def _run(args: list[str], key: LocalAccount | None = None, **env: str) -> Result:
    environment = dict(env)
    if key is not None:
        environment["SHOTBANK_PRIVATE_KEY"] = "0x" + bytes(key.key).hex()
    return CliRunner().invoke(main, args, env=environment, catch_exceptions=False)


def test_a_trainer_lists_buys_sees_the_licence_and_downloads_with_the_cli(
    server: LiveServer,
    caller_for: Callable[..., Caller],
    operator: LocalAccount,
    clips: list[bytes],
    chain: Market,
    anvil: AnvilNode,
    anvil_w3: Web3,
    tmp_path: Path,
) -> None:
    packed: Packed = freeze(server, caller_for, operator, clips, price=PRICE)
    wait_for_listing(server, anvil_w3, packed, "listed", price=PRICE)
    trainer: LocalAccount = Account.create()
    chain.fund(trainer, PRICE + SHOT)
    api = ["--api", server.url]

    listed = _run(["datasets", "list", *api, "--json"])
    assert listed.exit_code == 0, listed.output
    [dataset] = json.loads(listed.output)["datasets"]
    assert (dataset["id"], dataset["slug"]) == (dataset_id(packed), "beach")
    [version] = dataset["versions"]
    assert (version["number"], version["status"]) == (1, "ready")
    assert version["listing"]["status"] == "listed"
    assert version["listing"]["price"] == str(PRICE)
    text = _run(["datasets", "list", *api])
    assert "v1" in text.output
    assert "3 SHOT (listed)" in text.output

    # Before buying: the download is refused with the purchase to make (exit 1).
    refused = _run(["datasets", "download", "beach", "1", str(tmp_path / "early"), *api], trainer)
    assert refused.exit_code == 1
    assert "402 licence_required" in refused.output
    assert f"purchase({packed.version_id}" in refused.output

    with mining(anvil_w3):
        bought = _run(
            ["datasets", "buy", "beach", "1", *api, "--rpc-url", anvil.url, "--json"], trainer
        )
    assert bought.exit_code == 0, bought.output
    licence = json.loads(bought.output)
    assert (licence["version_id"], licence["buyer"], licence["price"]) == (
        packed.version_id,
        trainer.address,
        str(PRICE),
    )
    assert chain.token.balance_of(trainer.address) == SHOT

    again = _run(
        ["datasets", "buy", dataset_id(packed), "1", *api], trainer, SHOTBANK_RPC_URL=anvil.url
    )
    assert again.exit_code == 1
    assert "already holds a licence" in again.output

    mine = _run(["datasets", "licences", *api, "--json"], trainer)
    assert mine.exit_code == 0, mine.output
    assert json.loads(mine.output)["licences"] == [licence]
    public = _run(["datasets", "licences", trainer.address, *api])
    assert public.exit_code == 0, public.output
    assert f"dataset {dataset_id(packed)} v1" in public.output
    assert "3 SHOT" in public.output

    target = tmp_path / "beach-v1"
    fetched = _run(["datasets", "download", "beach", "1", str(target), *api, "--json"], trainer)
    assert fetched.exit_code == 0, fetched.output
    report = json.loads(fetched.output)
    names = sorted(entry["name"] for entry in packed.index["shards"])
    assert report["shards"] == len(names)
    assert report["skipped"] == []
    for name in names:
        assert (target / name).read_bytes() == (packed.folder / name).read_bytes()
    rerun = _run(["datasets", "download", "beach", "1", str(target), *api, "--verify-cid"], trainer)
    assert rerun.exit_code == 0, rerun.output
    assert f"0 bytes fetched, {len(names)} already in place" in rerun.output


def test_buy_without_a_key_or_with_a_bad_max_price_is_a_usage_error() -> None:
    api = ["--api", "http://127.0.0.1:9"]
    no_key = _run(["datasets", "buy", "a" * 32, "1", *api])
    assert no_key.exit_code == 2
    assert "no wallet key" in no_key.output
    key: LocalAccount = Account.create()
    bad = _run(["datasets", "buy", "a" * 32, "1", *api, "--max-price", "1.5x"], key)
    assert bad.exit_code == 2
    assert "--max-price" in bad.output
    address = _run(["datasets", "licences", "0x12", *api])
    assert address.exit_code == 2
    assert "not a 20-byte hex address" in address.output


@pytest.mark.parametrize(
    ("text", "wei"),
    [("3", 3 * SHOT), ("12.5", 12 * SHOT + SHOT // 2), ("0.000000000000000001", 1), ("7wei", 7)],
)
def test_max_price_is_read_as_shot_or_wei(text: str, wei: int) -> None:
    assert parse_shot(text) == wei


@pytest.mark.parametrize("text", ["0", "-1", "1e-19", "x", "1.5wei"])
def test_max_price_refuses_what_is_not_a_positive_amount(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_shot(text)
