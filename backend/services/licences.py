"""Who may download a dataset version's shards, and which file a shard name means.

* :func:`chain_version_id` -- a version's on-chain ``versionId``: ``0x`` + its
  ``version_hash`` (the manifest's SHA-256 as a ``bytes32``).
* :func:`shard_file` -- the file behind a shard name of a ready version. The name is
  looked up among the shards of the version's ``index.json``; the path is built from the
  index's entry, never from the request, so no request can name another file.
* :func:`require_access` -- operators (``SHOTBANK_OPERATORS``) always; anyone else needs
  an indexed ``LicencePurchased`` of that version (``backend.services.marketsync``), else
  :class:`~backend.errors.LicenceRequiredError` naming the exact purchase call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from eth_utils.address import to_checksum_address
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import (
    DatasetShardNotFoundError,
    DatasetVersionNotFoundError,
    DependencyUnavailableError,
    LicenceRequiredError,
)
from backend.models.datasets import Dataset, DatasetVersion, DatasetVersionStatus
from backend.models.licences import DatasetLicence, DatasetListing
from shotbank.chain.contracts import DatasetMarket
from shotbank.chain.deployments import load_deployments
from shotbank.chain.errors import ChainError
from shotbank.datasets.format import INDEX_NAME, DatasetFormatError, read_index

__all__ = [
    "ShardFile",
    "chain_version_id",
    "has_licence",
    "ready_version",
    "require_access",
    "shard_file",
]

#: Versions whose shard tables are kept in memory (a version never changes once ready).
_CACHED_VERSIONS: Final = 32
#: SHOT has 18 decimals, like ether.
_SHOT_DECIMALS: Final = 18


@dataclass(frozen=True, slots=True)
class ShardFile:
    """One shard of a ready version: where it is and what its index says of it."""

    path: Path
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class _Shard:
    name: str
    size: int
    sha256: str


class _ShardTables:
    """Shard name -> facts per version directory, parsed once (an index can be large)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._tables: OrderedDict[Path, dict[str, _Shard]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: Path) -> dict[str, _Shard]:
        with self._lock:
            table = self._tables.get(folder)
            if table is not None:
                self._tables.move_to_end(folder)
                return table
        try:
            index = read_index(folder / INDEX_NAME)
        except (OSError, DatasetFormatError) as exc:
            raise DependencyUnavailableError(
                "The version's shard index cannot be read; try again later."
            ) from exc
        table = {shard.name: _Shard(shard.name, shard.size, shard.sha256) for shard in index.shards}
        with self._lock:
            self._tables[folder] = table
            while len(self._tables) > self._capacity:
                self._tables.popitem(last=False)
        return table


_TABLES: Final = _ShardTables(_CACHED_VERSIONS)


def chain_version_id(version_hash: str) -> str:
    """The on-chain ``versionId`` of a version with ``version_hash`` (64 hex digits)."""
    return "0x" + version_hash.lower()


def ready_version(db: Session, *, dataset_id: str, number: int) -> DatasetVersion:
    """Version ``number`` of the dataset, which must be ``ready`` (404 otherwise)."""
    if db.get(Dataset, dataset_id) is None:
        raise DatasetVersionNotFoundError(f"Dataset {dataset_id} has no version {number}.")
    version = db.exec(
        select(DatasetVersion).where(
            col(DatasetVersion.dataset_id) == dataset_id, col(DatasetVersion.number) == number
        )
    ).first()
    if version is None:
        raise DatasetVersionNotFoundError(f"Dataset {dataset_id} has no version {number}.")
    if (
        version.status != DatasetVersionStatus.READY
        or version.storage_path is None
        or version.version_hash is None
    ):
        raise DatasetVersionNotFoundError(
            f"Version {number} of dataset {dataset_id} is {version.status.value}, not ready: "
            "its shards are not available."
        )
    return version


def shard_file(settings: Settings, version: DatasetVersion, *, name: str) -> ShardFile:
    """The shard ``name`` of the ready ``version`` (404 unless its index lists it)."""
    assert version.storage_path is not None
    folder = settings.var_dir / version.storage_path
    shard = _TABLES.get(folder).get(name)
    if shard is None:
        raise DatasetShardNotFoundError(
            f"{name[:80]!r} is not a shard of version {version.number}: shard names are "
            "those of the version's index.json (shard-000000.tar, ...)."
        )
    # The path joins the index's own name (validated as shard-NNNNNN.tar), not the request's.
    return ShardFile(path=folder / shard.name, size=shard.size, sha256=shard.sha256)


def has_licence(db: Session, *, version_hash: str, address: str) -> bool:
    """Whether an indexed ``LicencePurchased`` gives ``address`` the version."""
    found = db.exec(
        select(col(DatasetLicence.tx_hash))
        .where(
            col(DatasetLicence.version_id) == chain_version_id(version_hash),
            col(DatasetLicence.buyer) == to_checksum_address(address),
        )
        .limit(1)
    ).first()
    return found is not None


def _shot(wei: int) -> str:
    amount = Decimal(wei).scaleb(-_SHOT_DECIMALS)
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _purchase_hint(db: Session, settings: Settings, version_id: str) -> str:
    try:
        deployment = load_deployments(settings.deployments_path).get(settings.chain_id)
    except ChainError:
        deployment = None
    market = None if deployment is None else deployment.contracts.get(DatasetMarket.NAME)
    if market is None:
        return (
            f"no DatasetMarket is deployed on chain {settings.chain_id} yet; once one is, "
            f"buy a licence with DatasetMarket.purchase({version_id}, maxPrice)"
        )
    listing = db.get(DatasetListing, version_id)
    confirmations = settings.chain_confirmations
    follows = f"access follows {confirmations} confirmations after the purchase"
    if listing is None:
        return (
            f"the version is not listed on DatasetMarket({market}) on chain "
            f"{settings.chain_id} yet; once it is, buy a licence with "
            f"DatasetMarket({market}).purchase({version_id}, maxPrice); {follows}"
        )
    return (
        f"buy a licence with DatasetMarket({market}).purchase({version_id}, {listing.price}) "
        f"on chain {settings.chain_id} (price {_shot(listing.price)} SHOT, "
        f"{listing.price} wei, after approving the market to spend it, or in one transaction "
        f"with purchaseWithPermit); {follows}"
    )


def require_access(
    db: Session, settings: Settings, version: DatasetVersion, *, address: str
) -> None:
    """Let ``address`` download ``version`` or raise :class:`LicenceRequiredError`."""
    assert version.version_hash is not None
    if address.lower() in {operator.lower() for operator in settings.operators}:
        return
    if has_licence(db, version_hash=version.version_hash, address=address):
        return
    version_id = chain_version_id(version.version_hash)
    raise LicenceRequiredError(
        f"{to_checksum_address(address)} holds no licence for version {version.number} "
        f"(versionId {version_id}): " + _purchase_hint(db, settings, version_id) + "."
    )
