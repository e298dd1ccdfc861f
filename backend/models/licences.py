"""Dataset licences bought on chain, as the chain indexer saw them.

Tables (derived from the DatasetMarket's events by ``backend.services.marketsync``, and
dropped and re-derived whenever the chain says otherwise):

- :class:`DatasetLicence` (``dataset_licence``): every ``LicencePurchased`` event; a row
  grants its ``buyer`` the shards of the version whose on-chain id is ``version_id``;
- :class:`DatasetListing` (``dataset_listing``): every ``VersionListed`` event, with the
  current ``price`` and ``listed`` as the later changes left them (the price a 402
  answer quotes);
- :class:`DatasetListingChange` (``dataset_listing_change``): every ``VersionListed``,
  ``VersionPriceChanged`` and ``VersionListingChanged`` event, kept so that a reorg
  which drops a change can restore the listing from the changes that remain.

And one table of the signed requests (``backend.services.signedreq``):

- :class:`RequestNonce` (``request_nonce``): the ``(address, nonce)`` pairs seen in the
  last minutes, so a signed request is accepted once.

The on-chain ``versionId`` of a backend version is ``0x`` + its ``version_hash`` (the
manifest's SHA-256 as a ``bytes32``; ``docs/api/datasets.md``, "Licences"), so rows
are kept by that id and need no backend version to exist when they are indexed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel
from pydantic import Field as PublicField
from sqlalchemy import BigInteger, Index, Text
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField
from backend.models.stakes import ADDRESS_CHARS, HASH_CHARS

__all__ = [
    "MARKET_EVENTS",
    "MAX_LICENCES",
    "MAX_TERMS_URI_CHARS",
    "DatasetLicence",
    "DatasetListing",
    "DatasetListingChange",
    "LicenceList",
    "LicenceView",
    "RequestNonce",
]

#: Names of the DatasetMarket events the indexer follows.
MARKET_EVENTS: Final = (
    "VersionListed",
    "VersionPriceChanged",
    "VersionListingChanged",
    "LicencePurchased",
)
#: Most licences one ``GET /licences`` answer lists.
MAX_LICENCES: Final = 1000
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
    contract lists each ``versionId`` once), with the later changes applied."""

    __tablename__ = "dataset_listing"

    version_id: str = Field(primary_key=True, max_length=HASH_CHARS)
    """The on-chain ``versionId``: ``0x`` + 64 lower-case hex digits."""
    manifest_hash: str = Field(max_length=HASH_CHARS)
    price: int = WeiField()
    """The current price (the last ``VersionPriceChanged``, else the listing's)."""
    listed: bool = True
    """Whether it is on sale (the last ``VersionListingChanged``, else true)."""
    terms_uri: str = Field(sa_type=Text, max_length=MAX_TERMS_URI_CHARS)
    lister: str = Field(max_length=ADDRESS_CHARS)
    block_number: int = Field(sa_type=BigInteger, ge=0, index=True)
    log_index: int = Field(sa_type=BigInteger, ge=0)
    block_hash: str = Field(max_length=HASH_CHARS)
    tx_hash: str = Field(max_length=HASH_CHARS)


class DatasetListingChange(SQLModel, table=True):
    """One event that set a listing's price or sale state: ``VersionListed`` (both),
    ``VersionPriceChanged`` (``price``) or ``VersionListingChanged`` (``listed``)."""

    __tablename__ = "dataset_listing_change"
    __table_args__ = (Index("ix_dataset_listing_change_version_id", "version_id"),)

    tx_hash: str = Field(primary_key=True, max_length=HASH_CHARS)
    log_index: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    version_id: str = Field(max_length=HASH_CHARS)
    event: str = Field(max_length=32)
    price: int | None = WeiField(default=None, nullable=True)
    listed: bool | None = None
    block_number: int = Field(sa_type=BigInteger, ge=0, index=True)
    block_hash: str = Field(max_length=HASH_CHARS)


class RequestNonce(SQLModel, table=True):
    """A signed request's nonce, kept until ``expires_at`` so it is accepted only once."""

    __tablename__ = "request_nonce"

    address: str = Field(primary_key=True, max_length=ADDRESS_CHARS)
    """EIP-55 address that signed."""
    nonce: str = Field(primary_key=True, max_length=HASH_CHARS)
    """``0x`` + 64 lower-case hex digits."""
    expires_at: datetime = Field(index=True)


# --- public schemas ---------------------------------------------------------------------


class LicenceView(BaseModel):
    """One licence: an indexed ``LicencePurchased`` (amounts in wei, decimal strings)."""

    version_id: str = PublicField(pattern=r"^0x[0-9a-f]{64}$")
    dataset_id: str | None = PublicField(default=None, max_length=32)
    """The backend's dataset of the version; ``null`` when the id is no version here."""
    number: int | None = None
    buyer: str = PublicField(max_length=42)
    price: str = PublicField(max_length=78)
    contributor_share: str = PublicField(max_length=78)
    validator_share: str = PublicField(max_length=78)
    treasury_share: str = PublicField(max_length=78)
    tx_hash: str = PublicField(max_length=HASH_CHARS)
    log_index: int
    block_number: int
    purchased_at: datetime | None = None
    """When the purchase's block was made; ``null`` (the indexer keeps no block times)."""


class LicenceList(BaseModel):
    """``GET /licences``: an address's licences, newest first."""

    licences: list[LicenceView] = PublicField(max_length=MAX_LICENCES)
