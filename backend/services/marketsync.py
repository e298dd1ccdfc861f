"""DatasetMarket events, as the chain indexer saw them: who holds a licence for what.

The chain-sync job (``backend.services.chainsync.ChainSync``) follows the market with its
own indexer (checkpoint ``dataset-market:<chain id>:<address>``, the
``SHOTBANK_CHAIN_CONFIRMATIONS`` of the other indexers) into two tables
(``backend.models.licences``)::

    event                                               table
    VersionListed(versionId, manifestHash, price,
      termsUri, lister)                                 dataset_listing: one row (listed)
                                                        + dataset_listing_change: one row
    VersionPriceChanged(versionId, price)               dataset_listing_change: one row,
                                                        dataset_listing.price updated
    VersionListingChanged(versionId, listed)            dataset_listing_change: one row,
                                                        dataset_listing.listed updated
    LicencePurchased(buyer, versionId, price,
      contributorShare, validatorShare, treasuryShare)  dataset_licence: one row

A ``dataset_licence`` row is what ``backend.services.licences.require_access`` checks on
every shard download, so access follows a purchase once it is that many blocks deep,
and a reorg that drops the purchase drops the access: :class:`MarketEventHandler`
writes through the :class:`~backend.services.chainstore.SqlIndexerStore`'s session (rows
and checkpoint commit together), and its rollback deletes the rows above the common
ancestor. A listing's current ``price`` and ``listed`` are derived state: after a
rollback they are recomputed, for every listing that lost a change, from the change rows
that remain (the ``VersionListed`` row first), so a dropped price change restores the
previous price.

The market's ``versionId`` of a backend version is ``0x`` + its ``version_hash``
(``docs/api/datasets.md``, "Licences"); rows are kept by that id, whether or not the
backend knows the version.
"""

from __future__ import annotations

from typing import Annotated, Final

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete
from sqlmodel import Session, col, select

from backend.models.licences import (
    MARKET_EVENTS,
    MAX_TERMS_URI_CHARS,
    DatasetLicence,
    DatasetListing,
    DatasetListingChange,
)
from backend.models.stakes import ChainCheckpoint
from backend.services.chainstore import SqlIndexerStore
from shotbank.chain.abi import load_abi
from shotbank.chain.contracts import DatasetMarket
from shotbank.chain.deployments import ChecksumAddressStr
from shotbank.chain.indexer import EventBatch, IndexedEvent, LogSource

__all__ = [
    "INDEXER_PREFIX",
    "MarketEventHandler",
    "clear_events",
    "indexed_block",
    "indexer_name",
    "market_log_source",
    "use_source",
]

#: Prefix of the market indexer's checkpoint names.
INDEXER_PREFIX: Final = "dataset-market:"

_Wei = Annotated[int, Field(ge=0, le=2**256 - 1)]
_Bytes32 = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]


class _Args(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _VersionListed(_Args):
    version_id: _Bytes32 = Field(alias="versionId")
    manifest_hash: _Bytes32 = Field(alias="manifestHash")
    price: _Wei
    terms_uri: str = Field(alias="termsUri", max_length=MAX_TERMS_URI_CHARS)
    lister: ChecksumAddressStr


class _LicencePurchased(_Args):
    buyer: ChecksumAddressStr
    version_id: _Bytes32 = Field(alias="versionId")
    price: _Wei
    contributor_share: _Wei = Field(alias="contributorShare")
    validator_share: _Wei = Field(alias="validatorShare")
    treasury_share: _Wei = Field(alias="treasuryShare")


class _VersionPriceChanged(_Args):
    version_id: _Bytes32 = Field(alias="versionId")
    price: _Wei


class _VersionListingChanged(_Args):
    version_id: _Bytes32 = Field(alias="versionId")
    listed: bool


_ARGS: Final[dict[str, type[_Args]]] = {
    "VersionListed": _VersionListed,
    "VersionPriceChanged": _VersionPriceChanged,
    "VersionListingChanged": _VersionListingChanged,
    "LicencePurchased": _LicencePurchased,
}
_TABLES: Final = (DatasetLicence, DatasetListing, DatasetListingChange)


def indexer_name(chain_id: int, market: str) -> str:
    """The checkpoint name of the market indexer for ``market`` on ``chain_id``."""
    return f"{INDEXER_PREFIX}{chain_id}:{to_checksum_address(market)}"


def market_log_source(market: str) -> LogSource:
    """What the market indexer follows: the events of :data:`MARKET_EVENTS`."""
    return LogSource(
        address=to_checksum_address(market),
        abi=tuple(load_abi(DatasetMarket.NAME)),
        events=MARKET_EVENTS,
    )


class MarketEventHandler:
    """The market indexer's ``EventHandler``; writes through ``store.session``."""

    def __init__(self, store: SqlIndexerStore) -> None:
        """Derive the licence tables inside ``store``'s transactions."""
        self.store = store

    def apply(self, batch: EventBatch) -> None:
        """Apply the market events of ``batch`` in chain order."""
        session = self.store.session
        for event in batch.events:
            if event.event not in _ARGS:
                continue
            args = _ARGS[event.event].model_validate(event.args)
            if isinstance(args, _VersionPriceChanged | _VersionListingChanged):
                self._change(event, args)
            else:
                session.add(self._row(event, args))
                if isinstance(args, _VersionListed):
                    session.add(_change_row(event, args.version_id, price=args.price, listed=True))
            # A later event of the batch may change the listing just added.
            session.flush()

    def _change(
        self, event: IndexedEvent, args: _VersionPriceChanged | _VersionListingChanged
    ) -> None:
        session = self.store.session
        price = args.price if isinstance(args, _VersionPriceChanged) else None
        listed = args.listed if isinstance(args, _VersionListingChanged) else None
        session.add(_change_row(event, args.version_id, price=price, listed=listed))
        listing = session.get(DatasetListing, args.version_id)
        if listing is None:
            # The contract changes only listed versions; a listing older than the
            # indexer's start block is unknown here, and its changes alone say too little.
            return
        if price is not None:
            listing.price = price
        if listed is not None:
            listing.listed = listed
        session.add(listing)

    @staticmethod
    def _row(event: IndexedEvent, args: _Args) -> DatasetLicence | DatasetListing:
        if isinstance(args, _LicencePurchased):
            return DatasetLicence(
                tx_hash=event.transaction_hash,
                log_index=event.log_index,
                version_id=args.version_id,
                buyer=args.buyer,
                price=args.price,
                contributor_share=args.contributor_share,
                validator_share=args.validator_share,
                treasury_share=args.treasury_share,
                block_number=event.block_number,
                block_hash=event.block_hash,
            )
        assert isinstance(args, _VersionListed)
        return DatasetListing(
            version_id=args.version_id,
            manifest_hash=args.manifest_hash,
            price=args.price,
            terms_uri=args.terms_uri,
            lister=args.lister,
            block_number=event.block_number,
            log_index=event.log_index,
            block_hash=event.block_hash,
            tx_hash=event.transaction_hash,
        )

    def rollback(self, to_block: int) -> None:
        """Forget the events after ``to_block`` (their licences grant nothing any more)
        and recompute the listings whose changes were among them."""
        session = self.store.session
        touched = set(
            session.scalars(
                select(col(DatasetListingChange.version_id))
                .where(col(DatasetListingChange.block_number) > to_block)
                .distinct()
            ).all()
        )
        for table in _TABLES:
            session.execute(delete(table).where(col(table.block_number) > to_block))
        session.flush()
        session.expire_all()
        for version_id in sorted(touched):
            _recompute(session, version_id)
        session.flush()


def clear_events(store: SqlIndexerStore, name: str) -> None:
    """Drop every licence and listing row and indexer ``name``'s checkpoint (inside a
    transaction)."""
    session = store.session
    for table in _TABLES:
        session.execute(delete(table))
    store.forget_indexer(name)


def use_source(store: SqlIndexerStore, *, chain_id: int, market: str) -> str:
    """The market indexer's name for ``market`` on ``chain_id``, with the tables made
    consistent with it.

    The rows are vouched for by the checkpoint of the indexer that wrote them. When that
    checkpoint is missing (first run, another chain, a redeployed market), whatever rows
    exist came from elsewhere: they are dropped with every market checkpoint, and the
    indexer starts over from the deployment's start block.
    """
    name = indexer_name(chain_id, market)
    with store.transaction():
        session = store.session
        if session.get(ChainCheckpoint, name) is None:
            stale = session.scalars(
                select(col(ChainCheckpoint.name)).where(
                    col(ChainCheckpoint.name).startswith(INDEXER_PREFIX)
                )
            ).all()
            for old in {*stale, name}:
                clear_events(store, old)
    return name


def indexed_block(session: Session, *, chain_id: int, market: str) -> int | None:
    """The market indexer's checkpoint block (every purchase at or below it is in the
    tables); ``None`` before the first indexing."""
    checkpoint = session.get(ChainCheckpoint, indexer_name(chain_id, market))
    return None if checkpoint is None else checkpoint.block_number


def _change_row(
    event: IndexedEvent, version_id: str, *, price: int | None, listed: bool | None
) -> DatasetListingChange:
    return DatasetListingChange(
        tx_hash=event.transaction_hash,
        log_index=event.log_index,
        version_id=version_id,
        event=event.event,
        price=price,
        listed=listed,
        block_number=event.block_number,
        block_hash=event.block_hash,
    )


def _recompute(session: Session, version_id: str) -> None:
    """Set a listing's ``price`` and ``listed`` from its remaining changes, in chain order."""
    listing = session.get(DatasetListing, version_id)
    if listing is None:
        return
    changes = session.scalars(
        select(DatasetListingChange)
        .where(col(DatasetListingChange.version_id) == version_id)
        .order_by(col(DatasetListingChange.block_number), col(DatasetListingChange.log_index))
    ).all()
    for change in changes:
        if change.price is not None:
            listing.price = change.price
        if change.listed is not None:
            listing.listed = change.listed
    session.add(listing)
