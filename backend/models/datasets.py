"""Datasets: a named filter over accepted clips, and its frozen, immutable versions.

A :class:`Dataset` is defined by an operator (``docs/api/datasets.md``); freezing it
snapshots the clips that match its filter at that moment into
:class:`DatasetVersionSample` rows (the version's membership, which never changes) and
packs them into WebDataset shards under ``SHOTBANK_VAR_DIR/datasets/<version_hash>/``.
The membership rows keep each sample's contributor for lineage and, later, revenue
attribution.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PublicField
from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField
from shotbank.datasets.format import MAX_SHARD_BYTES, MIN_SHARD_BYTES

#: Longest stored filter JSON (a filter's lists are bounded far below this).
MAX_FILTER_JSON_CHARS: Final = 256 * 1024
#: Most datasets or versions on one listing page.
MAX_DATASET_PAGE: Final = 100
#: Slugs: lower-case words joined by hyphens (they appear in URLs and file names).
SLUG_PATTERN: Final = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
#: Highest price a version may be given (wei, ``docs/api/datasets.md``).
MAX_PRICE_WEI: Final = 10**36
#: A price on the wire: wei as a decimal string (JSON numbers lose precision past 2**53).
PRICE_PATTERN: Final = r"^[1-9][0-9]{0,36}$"


def new_dataset_id() -> str:
    """A fresh dataset or version id: 32 random hex characters."""
    return secrets.token_hex(16)


class DatasetVersionStatus(StrEnum):
    """Where a frozen version is: its shards being written, written, or given up."""

    PACKING = "packing"
    READY = "ready"
    FAILED = "failed"


class Dataset(SQLModel, table=True):
    """A dataset's definition: its filter over accepted clips and its licence terms."""

    __tablename__ = "dataset"

    id: str = Field(default_factory=new_dataset_id, primary_key=True, max_length=32)
    slug: str = Field(max_length=64, unique=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text, max_length=10_000)
    filter_json: str = Field(sa_type=Text, max_length=MAX_FILTER_JSON_CHARS)
    """The :class:`~backend.services.dataset_filter.DatasetFilter` as JSON."""
    licence_terms: str = Field(default="", sa_type=Text, max_length=10_000)
    """What a buyer of a version may do with it (served as the listing's terms URI)."""
    price: int | None = WeiField(default=None, nullable=True)
    """Default price of new versions (wei); ``None``: versions are not put on sale."""
    created_by: str = Field(max_length=42)
    created_at: datetime


class DatasetVersion(SQLModel, table=True):
    """One frozen version of a dataset: its membership is fixed when it is created."""

    __tablename__ = "dataset_version"
    __table_args__ = (UniqueConstraint("dataset_id", "number", name="uq_dataset_version_number"),)

    id: str = Field(default_factory=new_dataset_id, primary_key=True, max_length=32)
    dataset_id: str = Field(foreign_key="dataset.id", max_length=32, index=True)
    number: int = Field(ge=1)
    status: DatasetVersionStatus = Field(
        default=DatasetVersionStatus.PACKING, sa_type=String(16), index=True
    )
    version_hash: str | None = Field(default=None, max_length=64, unique=True)
    """SHA-256 of the manifest (``docs/api/datasets.md``); set once ``ready``."""
    samples: int = Field(ge=0)
    total_bytes: int | None = Field(default=None, sa_type=BigInteger, ge=0)
    """Bytes of all shards; set once ``ready``."""
    shard_bytes: int = Field(sa_type=BigInteger, ge=MIN_SHARD_BYTES, le=MAX_SHARD_BYTES)
    """The shard target the version is packed with (part of its hash)."""
    shard_count: int | None = Field(default=None, ge=1)
    storage_path: str | None = Field(default=None, max_length=1024)
    """Where the version's files are, relative to ``SHOTBANK_VAR_DIR``."""
    error: str | None = Field(default=None, sa_type=Text, max_length=10_000)
    """Why packing failed (``failed`` only)."""
    price: int | None = WeiField(default=None, nullable=True)
    """The price the version is listed with once ready (wei); ``None``: not for sale."""
    listing_tx_id: int | None = Field(default=None, sa_type=BigInteger)
    """The operator outbox's ``listVersion`` transaction, once enqueued."""
    listing_error: str | None = Field(default=None, sa_type=Text, max_length=10_000)
    """Why ``listVersion`` could not be enqueued (it would revert); not retried."""
    price_changes: int = Field(default=0, ge=0)
    """``setVersionPrice`` transactions enqueued so far (numbers their outbox keys)."""
    listing_changes: int = Field(default=0, ge=0)
    """``setVersionListed`` transactions enqueued so far (numbers their outbox keys)."""
    created_by: str = Field(max_length=42)
    created_at: datetime
    ready_at: datetime | None = None


class DatasetVersionSample(SQLModel, table=True):
    """A clip in a version, and who contributed it (lineage, revenue attribution)."""

    __tablename__ = "dataset_version_sample"

    version_id: str = Field(foreign_key="dataset_version.id", primary_key=True, max_length=32)
    clip_id: str = Field(foreign_key="clip.id", primary_key=True, max_length=32)
    contributor: str = Field(max_length=42, index=True)


# --- public schemas ---------------------------------------------------------------------


class DatasetCreate(BaseModel):
    """Body of ``POST /datasets``."""

    model_config = ConfigDict(extra="forbid")

    slug: str = PublicField(min_length=1, max_length=64, pattern=SLUG_PATTERN)
    title: str = PublicField(min_length=1, max_length=200)
    description: str = PublicField(default="", max_length=10_000)
    filter: dict[str, Any] = PublicField(
        default_factory=dict,
        max_length=32,
        description="A DatasetFilter (every field optional; unknown fields are refused).",
    )
    licence_terms: str = PublicField(default="", max_length=10_000)
    price: str | None = PublicField(default=None, pattern=PRICE_PATTERN)
    """Default price of its versions in wei (decimal string, ``1 .. 10**36``)."""

    @field_validator("price")
    @classmethod
    def _price_in_range(cls, value: str | None) -> str | None:
        return _check_price(value)


class VersionCreate(BaseModel):
    """Optional body of ``POST /datasets/{id}/versions``."""

    model_config = ConfigDict(extra="forbid")

    shard_bytes: int | None = PublicField(default=None, ge=MIN_SHARD_BYTES, le=MAX_SHARD_BYTES)
    """Shard target of this version; ``SHOTBANK_DATASET_SHARD_BYTES`` when absent."""
    price: str | None = PublicField(default=None, pattern=PRICE_PATTERN)
    """Price in wei (decimal string, ``1 .. 10**36``); the dataset's price when absent."""

    @field_validator("price")
    @classmethod
    def _price_in_range(cls, value: str | None) -> str | None:
        return _check_price(value)


def _check_price(value: str | None) -> str | None:
    if value is not None and int(value) > MAX_PRICE_WEI:
        raise ValueError(f"a price is at most 10**36 wei, got {value}")
    return value


class ListingStatus(StrEnum):
    """Where a ready version stands on the DatasetMarket."""

    UNPRICED = "unpriced"
    PENDING = "pending"
    LISTED = "listed"
    UNLISTED = "unlisted"


class ListingView(BaseModel):
    """A ready version's listing: the indexed on-chain values (``null`` until indexed)."""

    version_id: str = PublicField(pattern=r"^0x[0-9a-f]{64}$")
    market: str | None = PublicField(default=None, max_length=42)
    """The deployment's DatasetMarket (``null`` when none is deployed)."""
    chain_id: int
    price: str | None = PublicField(default=None, max_length=78)
    """Wei as a decimal string."""
    listed: bool | None = None
    terms_uri: str | None = PublicField(default=None, max_length=512)
    status: ListingStatus


class DatasetVersionView(BaseModel):
    """A version's summary."""

    dataset_id: str = PublicField(max_length=32)
    number: int
    status: DatasetVersionStatus
    version_hash: str | None = PublicField(default=None, max_length=64)
    samples: int
    contributors: int
    """Distinct contributors of the version's samples."""
    total_bytes: int | None = None
    shard_bytes: int
    shards: int | None = None
    error: str | None = PublicField(default=None, max_length=10_000)
    created_at: datetime
    ready_at: datetime | None = None
    listing: ListingView | None = None
    """``null`` for versions not ``ready``."""


class DatasetView(BaseModel):
    """A dataset's definition and its versions, oldest first."""

    id: str = PublicField(max_length=32)
    slug: str = PublicField(max_length=64)
    title: str = PublicField(max_length=200)
    description: str = PublicField(max_length=10_000)
    filter: dict[str, Any]
    licence_terms: str = PublicField(max_length=10_000)
    price: str | None = PublicField(default=None, max_length=78)
    """Default price of new versions in wei (decimal string), ``null``: not for sale."""
    created_by: str = PublicField(max_length=42)
    created_at: datetime
    versions: list[DatasetVersionView] = PublicField(default_factory=list)


class DatasetPage(BaseModel):
    """One page of ``GET /datasets``, oldest first; pass ``next_after`` as ``after``."""

    items: list[DatasetView] = PublicField(max_length=MAX_DATASET_PAGE)
    next_after: str | None = PublicField(default=None, max_length=32)
