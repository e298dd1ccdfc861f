"""Dataset licences bought on chain, as the chain indexer saw them.

Tables (derived from the DatasetMarket's events by ``backend.services.marketsync``, and
dropped and re-derived whenever the chain says otherwise):

- :class:`DatasetLicence` (``dataset_licence``): every ``LicencePurchased`` event; a row
  grants its ``buyer`` the shards of the version whose on-chain id is ``version_id``;
- :class:`DatasetListing` (``dataset_listing``): every ``VersionListed`` event (the price
  a 402 answer quotes).

The on-chain ``versionId`` of a backend version is ``0x`` + its ``version_hash`` (the
manifest's SHA-256 as a ``bytes32``; ``docs/api/datasets.md``, "Licences"), so rows
are kept by that id and need no backend version to exist when they are indexed.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, Index, Text
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField
from backend.models.stakes import ADDRESS_CHARS, HASH_CHARS

__all__ = ["MARKET_EVENTS", "MAX_TERMS_URI_CHARS", "DatasetLicence", "DatasetListing"]

#: Names of the DatasetMarket events the indexer follows.
MARKET_EVENTS: Final = ("VersionListed", "LicencePurchased")
#: ``DatasetMarket.MAX_TERMS_URI_LENGTH`` (bytes; a character is at least one).
MAX_TERMS_URI_CHARS: Final = 512


class DatasetLicence(SQLModel, table=True):
    """A ``LicencePurchased(buyer, versionId, price, contributorShare, validatorShare,
    treasuryShare)`` event: ``buyer`` may download that version."""

    __tablename__ = "dataset_licence"
    __table_args__ = (Index("ix_dataset_licence_version_id_buyer", "version_id", "buyer"),)

    tx_hash: str = Field(primary_key=True, max_length=HASH_CHARS)
    log_index: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    version_id: str = Field(max_length=HASH_CHARS)
    """The on-chain ``versionId``: ``0x`` + 64 lower-case hex digits."""
    buyer: str = Field(max_length=ADDRESS_CHARS)
    """EIP-55 address of the buyer."""
    price: int = WeiField()
    contributor_share: int = WeiField()
    validator_share: int = WeiField()
    treasury_share: int = WeiField()
    block_number: int = Field(sa_type=BigInteger, ge=0, index=True)
    block_hash: str = Field(max_length=HASH_CHARS)


class DatasetListing(SQLModel, table=True):
    """A ``VersionListed(versionId, manifestHash, price, termsUri, lister)`` event (the
    contract lists each ``versionId`` once)."""

    __tablename__ = "dataset_listing"

    version_id: str = Field(primary_key=True, max_length=HASH_CHARS)
    """The on-chain ``versionId``: ``0x`` + 64 lower-case hex digits."""
    manifest_hash: str = Field(max_length=HASH_CHARS)
    price: int = WeiField()
    """The listing price (a later ``setVersionPrice`` is not followed)."""
    terms_uri: str = Field(sa_type=Text, max_length=MAX_TERMS_URI_CHARS)
    lister: str = Field(max_length=ADDRESS_CHARS)
    block_number: int = Field(sa_type=BigInteger, ge=0, index=True)
    log_index: int = Field(sa_type=BigInteger, ge=0)
    block_hash: str = Field(max_length=HASH_CHARS)
    tx_hash: str = Field(max_length=HASH_CHARS)
