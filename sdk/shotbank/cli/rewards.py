"""``shotbank rewards``: what a wallet earned, and claiming it from the RewardDistributor.

- ``shotbank rewards show [ADDRESS]`` -- earned, claimed, claimable and pending SHOT and the
  epochs the address earned in (``GET /api/v1/rewards/{address}``; the address of the
  configured key when none is given).
- ``shotbank rewards claim`` -- fetches the claim (cumulative amount and Merkle proof)
  from the backend, checks it against the chain (chain id, the distributor's wiring, the
  root claims verify against now, the proof, what was already paid), then sends
  ``RewardDistributor.claim(account, cumulativeAmount, proof)`` signed by the configured
  key and prints the transaction, the amount paid (from the ``Claimed`` event) and the
  new token balance.

The key comes from ``--key-file``, ``SHOTBANK_KEY_FILE`` or ``SHOTBANK_PRIVATE_KEY``,
never from the command line (:mod:`~shotbank.cli.credentials`); the backend from
``--api``/``SHOTBANK_API_URL``; the chain from ``--rpc-url``/``SHOTBANK_RPC_URL``.

Exit status
-----------
==  ========================================================================
0   done, including "nothing to claim"
1   a failure: backend or RPC unreachable, the RPC on another chain, a distributor
    that does not check out, a claim that would revert (the reason is decoded)
2   a usage error (bad option, no key, a key on the command line)
==  ========================================================================
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import click
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.logs import DISCARD
from web3.types import TxReceipt

from shotbank.chain.contracts import RewardDistributor, ShotToken, ValidatorRegistry, send_call
from shotbank.chain.errors import (
    ChainError,
    ChainIdMismatchError,
    NodeUnavailableError,
    TransactionRevertedError,
    TransactionTimeoutError,
)
from shotbank.chain.merkle import REWARD_LEAF_ENCODING, process_proof, standard_leaf_hash
from shotbank.chain.rpc import RetryPolicy, connect
from shotbank.cli.credentials import API_OPTION as _API_OPTION
from shotbank.cli.credentials import JSON_OPTION as _JSON_OPTION
from shotbank.cli.credentials import KEY_OPTION as _KEY_OPTION
from shotbank.cli.credentials import command_account, command_settings
from shotbank.client import ApiError, ClientError, ClientSettings, ShotbankClient
from shotbank.client.models import RewardClaim, Rewards
from shotbank.rewards.models import Amount

__all__ = [
    "DEFAULT_RPC_URL",
    "EXIT_FAILED",
    "SHOT_DECIMALS",
    "ClaimReceipt",
    "format_shot",
    "rewards",
]

EXIT_FAILED: Final = 1
#: The dev chain of ``make up``, as for the validator node.
DEFAULT_RPC_URL: Final = "http://127.0.0.1:8545"
#: SHOT has 18 decimals, like ether.
SHOT_DECIMALS: Final = 18
_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")


def format_shot(wei: int) -> str:
    """``wei`` base units as SHOT, exactly: ``1,234.5 SHOT``, ``0.000000000000000001 SHOT``."""
    whole, fraction = divmod(wei, 10**SHOT_DECIMALS)
    digits = f".{fraction:0{SHOT_DECIMALS}d}".rstrip("0") if fraction else ""
    return f"{whole:,}{digits} SHOT"


class ClaimReceipt(BaseModel):
    """A paid claim, as ``shotbank rewards claim --json`` prints it (amounts as decimal
    strings)."""

    model_config = ConfigDict(frozen=True)

    account: str
    sender: str
    epoch: int
    tx_hash: str
    block_number: int
    gas_used: int
    amount: Amount
    balance: Amount


def _address(ctx: click.Context, value: str, what: str) -> str:
    if not _ADDRESS.match(value):
        raise click.UsageError(f"{what} {value!r} is not a 20-byte hex address (0x + 40 hex)", ctx)
    return str(to_checksum_address(value))


def _fail(message: str) -> click.ClickException:
    # ClickException exits with 1 (EXIT_FAILED), as the other commands' failures do.
    return click.ClickException(message)


def _fetch_rewards(settings: ClientSettings, address: str) -> Rewards:
    try:
        with ShotbankClient.from_settings(settings) as client:
            return client.rewards(address)
    except ApiError as exc:
        raise _fail(
            f"the backend at {settings.api_url} answered {exc.status} {exc.code}: {exc.message}"
        ) from None
    except ClientError as exc:
        raise _fail(f"cannot get the rewards of {address} from {settings.api_url}: {exc}") from None


@click.group("rewards")
def rewards() -> None:
    """See and claim the SHOT your clips and validator reports earned."""


@rewards.command("show")
@click.argument("address", required=False)
@_API_OPTION
@_KEY_OPTION
@_JSON_OPTION
@click.pass_context
def show(
    ctx: click.Context,
    address: str | None,
    api_url: str | None,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Show what ADDRESS (default: the configured key's) earned, claimed and can claim.

    Amounts are SHOT (18 decimals), written exactly. Exit status: 0 shown, 1 the backend
    could not be asked, 2 usage error.
    """
    settings = command_settings(ctx, api_url=api_url)
    if address is not None:
        address = _address(ctx, address, "ADDRESS")
    else:
        address = command_account(ctx, key_file, settings).address
    answer = _fetch_rewards(settings, address)
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
        return
    _print_rewards(answer)


def _print_rewards(answer: Rewards) -> None:
    click.echo(f"rewards of {answer.address}")
    for label, value in (
        ("earned", answer.earned),
        ("claimed", answer.claimed),
        ("claimable", answer.claimable),
        ("pending", answer.pending),
    ):
        click.echo(f"  {label:<10} {format_shot(value)}")
    claim = answer.claim
    if claim is not None and answer.claimable > 0:
        click.echo(
            f"  claim      epoch {claim.epoch} on chain {claim.chain_id}, RewardDistributor "
            f"{claim.distributor}: run `shotbank rewards claim`"
        )
    elif answer.pending > 0:
        click.echo("  claim      nothing yet: pending amounts become claimable with a later root")
    if not answer.epochs:
        click.echo("no epoch has paid this address yet")
        return
    click.echo("recent epochs")
    click.echo(f"  {'epoch':>7}  {'status':<11} {'amount':>30}  {'cumulative':>30}")
    for row in answer.epochs:
        click.echo(
            f"  {row.epoch:>7}  {row.status:<11} {format_shot(row.amount):>30}  "
            f"{format_shot(row.cumulative):>30}"
        )


@rewards.command("claim")
@_API_OPTION
@_KEY_OPTION
@click.option(
    "--rpc-url",
    "--rpc",
    "rpc_url",
    metavar="URL",
    envvar="SHOTBANK_RPC_URL",
    show_envvar=True,
    default=DEFAULT_RPC_URL,
    show_default=True,
    help="Chain RPC the claim transaction is sent through.",
)
@click.option(
    "--beneficiary",
    metavar="ADDRESS",
    help="Claim ADDRESS's rewards instead of the key's own. The contract pays the account "
    "in the proof's leaf, never the sender: the tokens go to ADDRESS, you pay the gas.",
)
@click.option(
    "--distributor",
    "expected_distributor",
    metavar="ADDRESS",
    envvar="SHOTBANK_REWARD_DISTRIBUTOR",
    show_envvar=True,
    help="Refuse unless the backend's claim is for this RewardDistributor.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1, max=3600),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the transaction's receipt.",
)
@_JSON_OPTION
@click.pass_context
def claim(
    ctx: click.Context,
    api_url: str | None,
    key_file: Path | None,
    rpc_url: str,
    beneficiary: str | None,
    expected_distributor: str | None,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Claim the SHOT the configured key's address (or --beneficiary) can claim now.

    Sends RewardDistributor.claim(account, cumulativeAmount, proof) with the proof the
    backend serves; pays exactly what is claimable and not yet paid. "Nothing to claim"
    is not an error. Exit status: 0 claimed or nothing to claim, 1 failure (backend or
    RPC unreachable, wrong chain, distributor mismatch, the claim would revert), 2 usage
    error.
    """
    parts = urlsplit(rpc_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(f"--rpc-url {rpc_url!r} is not an http:// or https:// URL", ctx)
    settings = command_settings(ctx, api_url=api_url)
    if beneficiary is not None:
        beneficiary = _address(ctx, beneficiary, "--beneficiary")
    if expected_distributor is not None:
        expected_distributor = _address(ctx, expected_distributor, "--distributor")
    account = command_account(ctx, key_file, settings)
    receiver = beneficiary or account.address
    answer = _fetch_rewards(settings, receiver)
    if answer.claim is None or answer.claimable == 0:
        _nothing_to_claim(answer, as_json=as_json)
        return
    w3 = _connect(rpc_url, answer.claim)
    try:
        distributor = _checked_distributor(w3, answer.claim, expected_distributor)
        already = distributor.claimed(receiver)
        if already >= answer.claim.cumulative_amount:
            _nothing_to_claim(answer, as_json=as_json, paid_on_chain=already)
            return
        receipt = _send_claim(w3, account, distributor, receiver, answer.claim, timeout_s)
        paid = _claimed_amount(distributor, receipt, receiver)
        balance = ShotToken(w3, distributor.token()).balance_of(receiver)
    except (ChainError, Web3Exception) as exc:
        raise _fail(f"the chain at {rpc_url} failed: {exc}") from None
    result = ClaimReceipt(
        account=receiver,
        sender=account.address,
        epoch=answer.claim.epoch,
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        block_number=int(receipt["blockNumber"]),
        gas_used=int(receipt["gasUsed"]),
        amount=paid,
        balance=balance,
    )
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    who = receiver if receiver == account.address else f"{receiver} (sent by {account.address})"
    click.echo(f"claimed for {who}")
    click.echo(f"  paid       {format_shot(paid)}")
    click.echo(f"  balance    {format_shot(balance)}")
    click.echo(
        f"  tx         {result.tx_hash} (block {result.block_number}, gas {result.gas_used:,})"
    )


def _nothing_to_claim(answer: Rewards, *, as_json: bool, paid_on_chain: int | None = None) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "account": answer.address,
                    "nothing_to_claim": True,
                    "earned": str(answer.earned),
                    "claimed": str(paid_on_chain if paid_on_chain is not None else answer.claimed),
                    "pending": str(answer.pending),
                },
                indent=2,
            )
        )
        return
    if paid_on_chain is not None:
        click.echo(
            f"nothing to claim for {answer.address}: {format_shot(paid_on_chain)} already paid "
            "on chain covers the backend's claim (it has not seen the payment yet)"
        )
        return
    line = (
        f"nothing to claim for {answer.address}: earned {format_shot(answer.earned)}, "
        f"claimed {format_shot(answer.claimed)}"
    )
    if answer.pending > 0:
        line += (
            f"; {format_shot(answer.pending)} pending, claimable once a root holding it has "
            "passed its challenge window"
        )
    click.echo(line)


def _connect(rpc_url: str, claim: RewardClaim) -> Web3:
    try:
        return connect(
            rpc_url,
            expected_chain_id=claim.chain_id,
            policy=RetryPolicy(attempts=3, timeout_s=30.0),
        )
    except ChainIdMismatchError as exc:
        raise _fail(
            f"{exc}: the claim is for chain {claim.chain_id} (RewardDistributor "
            f"{claim.distributor}); point --rpc-url at that chain"
        ) from None
    except NodeUnavailableError as exc:
        raise _fail(f"cannot reach the chain RPC at {rpc_url}: {exc}") from None


def _checked_distributor(w3: Web3, claim: RewardClaim, expected: str | None) -> RewardDistributor:
    """The distributor the claim names, once it checks out against the chain."""
    address = claim.distributor
    if expected is not None and address != expected:
        raise _fail(
            f"the backend's claim is for RewardDistributor {address}, not the expected {expected}"
        )
    if not bytes(w3.eth.get_code(Web3.to_checksum_address(address))):
        raise _fail(
            f"there is no contract at RewardDistributor {address} on chain {claim.chain_id}"
        )
    distributor = RewardDistributor(w3, address)
    try:
        registry = ValidatorRegistry(w3, distributor.registry())
        wired = registry.reward_distributor()
    except Web3Exception as exc:
        raise _fail(
            f"{address} on chain {claim.chain_id} is not a RewardDistributor: {exc}"
        ) from None
    if Web3.to_checksum_address(wired) != address:
        raise _fail(
            f"RewardDistributor {address} is not the one its ValidatorRegistry "
            f"{registry.address} names ({wired}): refusing to claim from it"
        )
    # A paused distributor is not checked here: the claim's estimate reverts with
    # RewardDistributorPaused(), decoded, which says the same.
    return distributor


def _send_claim(
    w3: Web3,
    account: LocalAccount,
    distributor: RewardDistributor,
    receiver: str,
    claim: RewardClaim,
    timeout_s: float,
) -> TxReceipt:
    leaf = standard_leaf_hash(REWARD_LEAF_ENCODING, (receiver, claim.cumulative_amount))
    if "0x" + process_proof(leaf, claim.proof).hex() != claim.root:
        raise _fail(
            f"the backend's proof does not prove {receiver} -> {claim.cumulative_amount} under "
            f"root {claim.root}; not sending"
        )
    on_chain = distributor.claimable_root().lower()
    if on_chain != claim.root:
        epoch = distributor.claimable_epoch()
        raise _fail(
            f"the backend's claim is for epoch {claim.epoch} (root {claim.root}) but the "
            f"distributor verifies claims against epoch {epoch} (root {on_chain}) now; the "
            "backend has not caught up yet: try again shortly"
        )
    call = distributor.claim(receiver, claim.cumulative_amount, claim.proof)
    try:
        return send_call(w3, account, call, timeout_s=timeout_s)
    except TransactionRevertedError as exc:
        raise _fail(f"the claim was not paid: {exc}") from None
    except TransactionTimeoutError as exc:
        raise _fail(
            f"the claim was sent but no receipt came within {timeout_s:g} s ({exc}); run "
            "`shotbank rewards show` later to see whether it was paid"
        ) from None


def _claimed_amount(distributor: RewardDistributor, receipt: TxReceipt, receiver: str) -> int:
    """The ``Claimed`` amount the receipt's own distributor logged for ``receiver``."""
    events = distributor.contract.events.Claimed().process_receipt(receipt, errors=DISCARD)
    return sum(
        int(event["args"]["amount"])
        for event in events
        if event["address"] == distributor.address and event["args"]["account"] == receiver
    )
