"""Who may download a dataset version's shards, and which file a shard name means.

* :func:`chain_version_id` -- a version's on-chain ``versionId``: ``0x`` + its
  ``version_hash`` (the manifest's SHA-256 as a ``bytes32``).
* :func:`shard_file` -- the file behind a shard name of a ready version. The name is
  looked up among the shards of the version's ``index.json``; the path is built from the
  index's entry, never from the request, so no request can name another file.
* :func:`require_access` -- operators (``SHOTBANK_OPERATORS``) always; anyone else needs
  an indexed ``LicencePurchased`` of that version (``backend.services.marketsync``), else
  :class:`~backend.errors.LicenceRequiredError` naming the exact purchase call.
* :func:`licences_of` -- an address's licences, newest first (``GET /licences``).
* Listing on chain (``docs/api/datasets.md``, "Listing on chain"): :class:`Lister` is a
  loop job that enqueues ``DatasetMarket.listVersion`` in the operator's outbox for every
  ``ready`` version with a price and no listing transaction yet, under the key
  ``list-version:{chain_id}:{versionId}``. The outbox is idempotent by key and persists
  the signed transaction before anything is broadcast, so a crash between enqueue and
  recording the transaction on the version adopts the stored one, and a crash between
  send and receipt re-sends the same bytes: one listing transaction per version. The job
  only enqueues; the submitter's step (``backend.services.submitter``) drives the
  operator outbox (one driver per sender). :func:`change_price` and
  :func:`change_listed` (``python -m backend.admin datasets price|unlist|relist``)
  enqueue ``setVersionPrice`` / ``setVersionListed`` the same way.
* :func:`listing_view` -- a ready version's ``listing`` as its views show it: the
  indexed on-chain price and state (``backend.services.marketsync``) and a ``status``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from eth_utils.address import to_checksum_address
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from web3.exceptions import Web3Exception

from backend.core.config import Settings
from backend.errors import (
    BackendError,
    ConflictError,
    DatasetNotFoundError,
    DatasetShardNotFoundError,
    DatasetVersionNotFoundError,
    DependencyUnavailableError,
    InvalidInputError,
    LicenceRequiredError,
)
from backend.models.datasets import (
    MAX_PRICE_WEI,
    Dataset,
    DatasetVersion,
    DatasetVersionStatus,
    ListingStatus,
    ListingView,
)
from backend.models.licences import (
    MAX_LICENCES,
    DatasetLicence,
    DatasetListing,
    LicenceList,
    LicenceView,
)
from backend.services.outboxstore import operator_outbox
from shotbank.chain.contracts import ContractCall, DatasetMarket
from shotbank.chain.deployments import load_deployments
from shotbank.chain.errors import (
    ChainError,
    NodeUnavailableError,
    OutboxError,
    TransactionRevertedError,
)
from shotbank.chain.outbox import Outbox, OutboxTx
from shotbank.chain.rpc import RetryPolicy, connect
from shotbank.datasets.format import INDEX_NAME, DatasetFormatError, read_index

__all__ = [
    "Lister",
    "ShardFile",
    "chain_version_id",
    "change_listed",
    "change_price",
    "connect_outbox",
    "enqueue_listing",
    "find_version",
    "has_licence",
    "licences_of",
    "listed_key",
    "listing_key",
    "listing_view",
    "market_address",
    "price_key",
    "ready_version",
    "require_access",
    "shard_file",
    "terms_uri",
]

logger = logging.getLogger(__name__)

#: Versions one :meth:`Lister.step` enqueues at most.
_LIST_BATCH: Final = 16
#: Reads are retried this often within one step; the job's own poll retries after that.
_RPC_ATTEMPTS: Final = 2
#: Longest reason kept on a version whose listing would revert.
_MAX_ERROR_CHARS: Final = 2000

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
    if not listing.listed:
        return (
            f"the version is off sale on DatasetMarket({market}) on chain {settings.chain_id} "
            f"(an operator unlisted it); once it is relisted, buy a licence with "
            f"DatasetMarket({market}).purchase({version_id}, {listing.price}); {follows}"
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


def licences_of(db: Session, *, address: str) -> LicenceList:
    """``address``'s indexed licences, newest first (at most :data:`MAX_LICENCES`), each
    with the backend's dataset and version number when the versionId is one of ours."""
    rows = db.exec(
        select(DatasetLicence)
        .where(col(DatasetLicence.buyer) == to_checksum_address(address))
        .order_by(col(DatasetLicence.block_number).desc(), col(DatasetLicence.log_index).desc())
        .limit(MAX_LICENCES)
    ).all()
    hashes = {row.version_id[2:] for row in rows}
    versions = {
        version.version_hash: version
        for version in db.exec(
            select(DatasetVersion).where(col(DatasetVersion.version_hash).in_(hashes))
        ).all()
    }
    items = []
    for row in rows:
        version = versions.get(row.version_id[2:])
        items.append(
            LicenceView(
                version_id=row.version_id,
                dataset_id=None if version is None else version.dataset_id,
                number=None if version is None else version.number,
                buyer=row.buyer,
                price=str(row.price),
                contributor_share=str(row.contributor_share),
                validator_share=str(row.validator_share),
                treasury_share=str(row.treasury_share),
                tx_hash=row.tx_hash,
                log_index=row.log_index,
                block_number=row.block_number,
            )
        )
    return LicenceList(licences=items)


# --- listing on chain -----------------------------------------------------------------


def listing_key(chain_id: int, version_id: str) -> str:
    """The outbox key of a version's ``listVersion``."""
    return f"list-version:{chain_id}:{version_id}"


def price_key(chain_id: int, version_id: str, change: int) -> str:
    """The outbox key of the ``change``-th (from 1) ``setVersionPrice`` of a version."""
    return f"version-price:{chain_id}:{version_id}:{change}"


def listed_key(chain_id: int, version_id: str, change: int) -> str:
    """The outbox key of the ``change``-th (from 1) ``setVersionListed`` of a version."""
    return f"version-listed:{chain_id}:{version_id}:{change}"


def terms_uri(settings: Settings, dataset_id: str) -> str:
    """Where a listing's licence terms are served (``GET /datasets/{id}/terms``)."""
    return f"{str(settings.public_url).rstrip('/')}/api/v1/datasets/{dataset_id}/terms"


def market_address(settings: Settings) -> str | None:
    """The deployment's DatasetMarket on the settings' chain, if one is deployed."""
    try:
        deployment = load_deployments(settings.deployments_path).get(settings.chain_id)
    except ChainError:
        return None
    return None if deployment is None else deployment.contracts.get(DatasetMarket.NAME)


def listing_view(
    db: Session, settings: Settings, version: DatasetVersion, *, market: str | None
) -> ListingView | None:
    """The ``listing`` of ``version``'s views; ``None`` unless it is ready.

    ``market`` is :func:`market_address` (looked up once per request by the caller).
    """
    if version.status != DatasetVersionStatus.READY or version.version_hash is None:
        return None
    version_id = chain_version_id(version.version_hash)
    row = db.get(DatasetListing, version_id)
    if row is not None:
        return ListingView(
            version_id=version_id,
            market=market,
            chain_id=settings.chain_id,
            price=str(row.price),
            listed=row.listed,
            terms_uri=row.terms_uri,
            status=ListingStatus.LISTED if row.listed else ListingStatus.UNLISTED,
        )
    return ListingView(
        version_id=version_id,
        market=market,
        chain_id=settings.chain_id,
        status=ListingStatus.UNPRICED if version.price is None else ListingStatus.PENDING,
    )


def connect_outbox(engine: Engine, settings: Settings) -> Outbox:
    """The operator's outbox on the settings' node over ``engine`` (raises when the node
    is down or the operator key is missing)."""
    w3 = connect(
        str(settings.chain_rpc_url),
        expected_chain_id=settings.chain_id,
        policy=RetryPolicy(
            attempts=_RPC_ATTEMPTS, backoff_s=0.2, timeout_s=settings.chain_rpc_timeout_s
        ),
    )
    return operator_outbox(w3, engine, settings)


def _require_market(settings: Settings) -> str:
    market = market_address(settings)
    if market is None:
        raise DependencyUnavailableError(
            f"No DatasetMarket is deployed on chain {settings.chain_id} "
            f"({settings.deployments_path}); versions cannot be listed yet."
        )
    return market


def enqueue_listing(
    engine: Engine, settings: Settings, outbox: Outbox, *, version_id: str
) -> OutboxTx | None:
    """Enqueue ``listVersion`` for the ready, priced backend version ``version_id`` (the
    row id) and record the transaction on it; the transaction, or None when the call
    would revert (the reason is recorded on the version and it is not tried again)."""
    market = DatasetMarket(outbox.w3, _require_market(settings))
    with Session(engine) as db:
        version = db.get(DatasetVersion, version_id)
        if version is None or version.version_hash is None or version.price is None:
            raise DatasetVersionNotFoundError(f"No ready, priced version {version_id}.")
        on_chain = chain_version_id(version.version_hash)
        call = market.list_version(
            on_chain, on_chain, version.price, terms_uri(settings, version.dataset_id)
        )
    try:
        tx = outbox.enqueue(call.intent(listing_key(settings.chain_id, on_chain)))
    except (TransactionRevertedError, OutboxError) as exc:
        # Already listed by another lister, a zero price, a key used for other content:
        # trying again gives the same answer.
        logger.warning("version %s cannot be listed: %s", on_chain, exc)
        with Session(engine) as db:
            db.execute(
                update(DatasetVersion)
                .where(col(DatasetVersion.id) == version_id)
                .values(listing_error=str(exc)[:_MAX_ERROR_CHARS])
            )
            db.commit()
        return None
    with Session(engine) as db:
        db.execute(
            update(DatasetVersion)
            .where(col(DatasetVersion.id) == version_id)
            .values(listing_tx_id=tx.id)
        )
        db.commit()
    logger.info("version %s: listVersion enqueued (outbox %d)", on_chain, tx.id)
    return tx


class Lister:
    """The loop job that lists ready, priced versions on the DatasetMarket (see the
    module docstring); never takes the app down."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        """Work on the database behind ``engine`` per ``settings`` (nothing connects yet)."""
        self.engine = engine
        self.settings = settings
        self._outbox: Outbox | None = None
        self._problem: str | None = None

    def outbox(self) -> Outbox:
        """The operator's outbox (connects on first use)."""
        if self._outbox is None:
            self._outbox = connect_outbox(self.engine, self.settings)
        return self._outbox

    def pending(self) -> list[str]:
        """Ids of the ready, priced versions with no listing transaction yet, oldest first."""
        with Session(self.engine) as db:
            return list(
                db.exec(
                    select(col(DatasetVersion.id))
                    .where(
                        col(DatasetVersion.status) == DatasetVersionStatus.READY,
                        col(DatasetVersion.price).is_not(None),
                        col(DatasetVersion.listing_tx_id).is_(None),
                        col(DatasetVersion.listing_error).is_(None),
                    )
                    .order_by(col(DatasetVersion.ready_at), col(DatasetVersion.id))
                    .limit(_LIST_BATCH)
                ).all()
            )

    def step(self) -> bool:
        """Enqueue the listings of up to 16 versions; True when it enqueued any."""
        todo = self.pending()
        if not todo:
            return False
        if self.settings.operator_key is None:
            self._report("operator_key", "SHOTBANK_OPERATOR_KEY is not set")
            return False
        try:
            outbox = self.outbox()
            done = [enqueue_listing(self.engine, self.settings, outbox, version_id=v) for v in todo]
        except NodeUnavailableError as exc:
            self._report("node", f"the chain node is unreachable ({exc})")
            return False
        except BackendError as exc:
            self._report(exc.code, exc.message)
            return False
        except (ChainError, Web3Exception, OSError) as exc:
            # requests' connection errors and timeouts are OSErrors.
            self._report(type(exc).__name__, str(exc))
            return False
        if self._problem is not None:
            logger.info("dataset listing works again")
            self._problem = None
        return any(tx is not None for tx in done)

    def _report(self, kind: str, message: str) -> None:
        # A down node would otherwise log the same warning every poll interval.
        level = logging.DEBUG if kind == self._problem else logging.WARNING
        logger.log(level, "dataset listing: %s; retrying every %.1f s", message,
                   self.settings.chain_poll_s)  # fmt: skip
        self._problem = kind
        if kind == "node":
            self._outbox = None


def find_version(db: Session, *, dataset: str, number: int) -> DatasetVersion:
    """Version ``number`` of the dataset with id or slug ``dataset``."""
    found = (
        db.get(Dataset, dataset)
        or db.exec(select(Dataset).where(col(Dataset.slug) == dataset)).first()
    )
    if found is None:
        raise DatasetNotFoundError(f"No dataset {dataset!r} (by id or slug).")
    version = db.exec(
        select(DatasetVersion).where(
            col(DatasetVersion.dataset_id) == found.id, col(DatasetVersion.number) == number
        )
    ).first()
    if version is None:
        raise DatasetVersionNotFoundError(f"Dataset {dataset} has no version {number}.")
    return version


def change_price(
    engine: Engine, settings: Settings, outbox: Outbox, *, dataset: str, number: int, price: int
) -> OutboxTx | None:
    """Give a version a new price: ``setVersionPrice`` under the key of its next change
    once its listing is enqueued; before that (unpriced, or still packing) only the
    version's price, which the listing then uses. The transaction, if one was enqueued.

    Each call is a change of its own: the counter is advanced (committed) before the
    enqueue, so a crash costs at most a skipped number, never a second transaction
    under one key.
    """
    if not 1 <= price <= MAX_PRICE_WEI:
        raise InvalidInputError(f"A price is 1 .. 10**36 wei, not {price}.")
    with Session(engine) as db:
        version = find_version(db, dataset=dataset, number=number)
        version.price = price
        change = version.price_changes + 1
        if version.listing_tx_id is not None:
            version.price_changes = change
        db.add(version)
        db.commit()
        if version.listing_tx_id is None or version.version_hash is None:
            return None
        on_chain = chain_version_id(version.version_hash)
    market = DatasetMarket(outbox.w3, _require_market(settings))
    return _enqueue(
        outbox,
        market.set_version_price(on_chain, price),
        price_key(settings.chain_id, on_chain, change),
    )


def change_listed(
    engine: Engine, settings: Settings, outbox: Outbox, *, dataset: str, number: int, listed: bool
) -> OutboxTx:
    """Take a listed version off sale (``listed=False``) or put it back:
    ``setVersionListed`` under the key of its next change (numbered as in
    :func:`change_price`)."""
    with Session(engine) as db:
        version = find_version(db, dataset=dataset, number=number)
        if version.listing_tx_id is None or version.version_hash is None:
            raise ConflictError(
                f"Version {number} of {dataset} has no listing yet: give it a price first."
            )
        change = version.listing_changes + 1
        version.listing_changes = change
        db.add(version)
        db.commit()
        on_chain = chain_version_id(version.version_hash)
    market = DatasetMarket(outbox.w3, _require_market(settings))
    return _enqueue(
        outbox,
        market.set_version_listed(on_chain, listed),
        listed_key(settings.chain_id, on_chain, change),
    )


def _enqueue(outbox: Outbox, call: ContractCall, key: str) -> OutboxTx:
    try:
        return outbox.enqueue(call.intent(key))
    except TransactionRevertedError as exc:
        raise ConflictError(f"The market refuses the change: {exc}") from exc
