"""Small builders of epoch inputs shared by the rewards tests."""

from __future__ import annotations

import random
from typing import Any

from eth_utils.address import to_checksum_address

from shotbank.rewards import EpochInputs

DISTRIBUTOR = "0x" + "d1" * 20
MARKET = "0x" + "3a" * 20


def address(byte: int) -> str:
    """A readable checksum address: one byte repeated twenty times."""
    return str(to_checksum_address("0x" + f"{byte:02x}" * 20))


def clip(
    clip_no: int, contributor: str, quality_bps: int, *, accepted: bool = True
) -> dict[str, Any]:
    """A clip entry with a readable id (the number in hex, padded to 32 characters)."""
    return {
        "clip_id": f"{clip_no:032x}",
        "contributor": contributor,
        "accepted": accepted,
        "quality_bps": quality_bps,
    }


def validator(who: str, reports: int, agreed: int) -> dict[str, Any]:
    """A validator entry."""
    return {"address": who, "reports": reports, "agreed_reports": agreed}


def inputs(
    *,
    funded_total: int,
    clips: list[dict[str, Any]],
    validators: list[dict[str, Any]] | None = None,
    previous: dict[str, int] | None = None,
    epoch: int = 1,
    share_bps: int = 1000,
    cap_bps: int = 2500,
    sales: list[dict[str, Any]] | None = None,
    versions: dict[str, dict[str, int]] | None = None,
    rule: str | None = None,
) -> EpochInputs:
    """Validated inputs; ``previous_epoch`` is ``epoch - 1`` when a previous map is given.

    The rule is /1 unless ``rule`` says otherwise or sales are given (then /2).
    """
    version = rule or ("shotbank-rewards/2" if sales is not None else "shotbank-rewards/1")
    extra: dict[str, Any] = {}
    if sales is not None:
        extra = {"market": MARKET, "sales": sales, "versions": versions or {}}
    return EpochInputs.model_validate(
        {
            **extra,
            "chain_id": 31337,
            "distributor": DISTRIBUTOR,
            "epoch": epoch,
            "rule": {
                "version": version,
                "validator_share_bps": share_bps,
                "contributor_cap_bps": cap_bps,
            },
            "funding_block": 100,
            "funded_total": funded_total,
            "previous_epoch": epoch - 1 if previous else None,
            "previous_cumulative": previous or {},
            "clips": clips,
            "validators": validators or [],
        }
    )


def version_id(number: int) -> str:
    """A readable dataset version id: the number in hex, padded to 64 digits."""
    return "0x" + f"{number:064x}"


def sale(
    number: int, version: int, amount: int, *, block: int = 50, log_index: int | None = None
) -> dict[str, Any]:
    """A sale entry of version ``version_id(version)`` in a transaction numbered ``number``."""
    return {
        "tx_hash": "0x" + f"{number:064x}",
        "log_index": number if log_index is None else log_index,
        "block_number": block,
        "version_id": version_id(version),
        "amount": amount,
    }


def large_inputs(
    rng: random.Random,
    *,
    clips: int = 10_000,
    contributors: int = 2_000,
    validators: int = 50,
    previous_accounts: int = 20_000,
) -> EpochInputs:
    """A random epoch (by default of the size the benchmark measures), every clip accepted."""
    people = ["0x" + rng.randbytes(20).hex() for _ in range(contributors)]
    previous = {
        "0x" + rng.randbytes(20).hex(): rng.randrange(1, 10**22) for _ in range(previous_accounts)
    }
    # Previous contributors come back: a quarter of this epoch's contributors earned before.
    for person in people[: contributors // 4]:
        previous[person] = rng.randrange(1, 10**22)
    return EpochInputs.model_validate(
        {
            "chain_id": 31337,
            "distributor": DISTRIBUTOR,
            "epoch": 7,
            "rule": {
                "version": "shotbank-rewards/1",
                "validator_share_bps": 1000,
                "contributor_cap_bps": 2500,
            },
            "funding_block": 1234,
            "funded_total": sum(previous.values()) + 50_000 * 10**18,
            "previous_epoch": 6 if previous else None,
            "previous_cumulative": previous,
            "clips": [
                {
                    "clip_id": rng.randbytes(16).hex(),
                    "contributor": rng.choice(people),
                    "accepted": True,
                    "quality_bps": rng.randrange(1, 10_001),
                }
                for _ in range(clips)
            ],
            "validators": [
                {
                    "address": "0x" + rng.randbytes(20).hex(),
                    "reports": clips,
                    "agreed_reports": rng.randrange(clips + 1),
                }
                for _ in range(validators)
            ],
        }
    )
