"""A wallet's rewards: earned, claimed, claimable, and the claim it can send now.

``GET /api/v1/rewards/{address}`` (``docs/api/rewards.md``), from the database alone:

- **earned**: the address's cumulative amount in the newest closed epoch that has a
  root (whatever became of that root on chain: the next root includes it anyway);
- **claimed**: the sum of its confirmed ``Claimed`` events (the reward indexer's rows);
- the **claimable root** is the newest epoch the submitter marked ``claimable`` (its
  challenge window passed by chain time); **claimable** = its cumulative amount there
  minus ``claimed`` (never negative), **pending** = ``earned`` minus that amount;
- **claim**: what ``RewardDistributor.claim`` takes (cumulative amount and the proof
  stored at close), or ``None`` when nothing is claimable;
- **epochs**: the newest 50 epochs in which the address earned something, with the part
  of each amount that came from dataset sales of its samples (rule ``shotbank-rewards/2``).
"""

from __future__ import annotations

import json
import re
from typing import Final

from eth_utils.address import to_checksum_address
from sqlalchemy import select
from sqlmodel import Session, col

from backend.errors import InvalidAddressError
from backend.models.epochs import (
    MAX_REWARD_EPOCHS,
    WITH_ROOT,
    ClaimView,
    Epoch,
    EpochAllocation,
    EpochStatus,
    RewardEpochItem,
    RewardsView,
)
from backend.services import rewardsync

__all__ = ["parse_address", "rewards_of"]

_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")


def parse_address(value: str) -> str:
    """``value`` as an EIP-55 checksum address; any letter case is accepted (the mixed
    case is not checked as a checksum: wallets and URLs change it freely).

    Raises :class:`~backend.errors.InvalidAddressError` for anything but ``0x`` and 40
    hex digits.
    """
    if not _ADDRESS.fullmatch(value):
        raise InvalidAddressError(
            f"{value[:64]!r} is not an address: write 0x followed by 40 hex digits."
        )
    return to_checksum_address(value.lower())


def _allocation(db: Session, epoch: int, address: str) -> EpochAllocation | None:
    return db.get(EpochAllocation, (epoch, address))


def _newest(db: Session, statuses: tuple[EpochStatus, ...]) -> Epoch | None:
    return (
        db.execute(
            select(Epoch)
            .where(col(Epoch.status).in_(statuses))
            .order_by(col(Epoch.number).desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def rewards_of(db: Session, *, address: str) -> RewardsView:
    """The rewards view of ``address`` (any case; see the module docstring)."""
    account = parse_address(address)
    latest = _newest(db, WITH_ROOT)
    earned_row = _allocation(db, latest.number, account) if latest is not None else None
    earned = earned_row.cumulative if earned_row is not None else 0
    claimed = rewardsync.claimed_total(db, account)

    claim_epoch = _newest(db, (EpochStatus.CLAIMABLE,))
    claim_row = _allocation(db, claim_epoch.number, account) if claim_epoch is not None else None
    in_claimable = claim_row.cumulative if claim_row is not None else 0
    claimable = max(0, in_claimable - claimed)
    claim = None
    if claimable > 0 and claim_epoch is not None and claim_row is not None:
        assert claim_epoch.root is not None
        assert claim_epoch.distributor is not None
        assert claim_epoch.chain_id is not None
        claim = ClaimView(
            epoch=claim_epoch.number,
            root=claim_epoch.root,
            cumulative_amount=str(claim_row.cumulative),
            proof=json.loads(claim_row.proof_json),
            distributor=claim_epoch.distributor,
            chain_id=claim_epoch.chain_id,
        )

    rows = db.execute(
        select(EpochAllocation, col(Epoch.status))
        .join(Epoch, col(Epoch.number) == col(EpochAllocation.epoch))
        .where(col(EpochAllocation.address) == account, col(EpochAllocation.amount) > 0)
        .order_by(col(EpochAllocation.epoch).desc())
        .limit(MAX_REWARD_EPOCHS)
    ).all()
    return RewardsView(
        address=account,
        earned=str(earned),
        claimed=str(claimed),
        claimable=str(claimable),
        pending=str(max(0, earned - in_claimable)),
        claim=claim,
        epochs=[
            RewardEpochItem(
                epoch=row.epoch,
                amount=str(row.amount),
                sales_amount=str(row.sales_amount or 0),
                cumulative=str(row.cumulative),
                status=EpochStatus(status),
            )
            for row, status in rows
        ],
    )
