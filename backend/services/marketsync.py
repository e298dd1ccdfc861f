"""DatasetMarket events, as the chain indexer saw them: who holds a licence for what.

The chain-sync job (``backend.services.chainsync.ChainSync``) follows the market with its
own indexer (checkpoint ``dataset-market:<chain id>:<address>``, the
``SHOTBANK_CHAIN_CONFIRMATIONS`` of the other indexers) into two tables
(``backend.models.licences``)::

    event                                               table
    VersionListed(versionId, manifestHash, price,
      termsUri, lister)                                 dataset_listing: one row
    LicencePurchased(buyer, versionId, price,
      contributorShare, validatorShare, treasuryShare)  dataset_licence: one row

A ``dataset_licence`` row is what ``backend.services.licences.require_access`` checks on
every shard download, so access follows a purchase once it is that many blocks deep,
and a reorg that drops the purchase drops the access: :class:`MarketEventHandler`
writes through the :class:`~backend.services.chainstore.SqlIndexerStore`'s session (rows
and checkpoint commit together), and its rollback deletes the rows above the common
ancestor.

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


_ARGS: Final[dict[str, type[_Args]]] = {
    "VersionListed": _VersionListed,
    "LicencePurchased": _LicencePurchased,
}
_TABLES: Final = (DatasetLicence, DatasetListing)


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
            if event.event in _ARGS:
                session.add(self._row(event))
        session.flush()

    @staticmethod
    def _row(event: IndexedEvent) -> DatasetLicence | DatasetListing:
        args = _ARGS[event.event].model_validate(event.args)
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
        """Forget the events after ``to_block`` (their licences grant nothing any more)."""
        session = self.store.session
        for table in _TABLES:
            session.execute(delete(table).where(col(table.block_number) > to_block))
        session.flush()
        session.expire_all()


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
