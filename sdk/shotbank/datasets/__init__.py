"""Dataset versions for trainers: the version format, shared with the backend.

- :mod:`~shotbank.datasets.format` -- manifest rows, the shard index, the version hash
  and the manifest as an Arrow table / pandas frame (``docs/api/datasets.md``)

- :mod:`~shotbank.datasets.client` -- the backend's datasets from
  :class:`~shotbank.client.ShotbankClient`: :class:`DatasetVersionHandle` with verified,
  resumable ``download(dir)`` and remote ``stream()`` (imported on first use)
- :mod:`~shotbank.datasets.stream` -- a version as a PyTorch ``IterableDataset``
  (``shotbank[torch]``; import it explicitly)

Importing this package needs only pydantic; the Arrow and pandas helpers need the
``shotbank[data]`` extra, and raise :class:`MissingExtraError` without it.
"""

from typing import TYPE_CHECKING, Any

from shotbank.datasets.format import (
    DEFAULT_SHARD_BYTES,
    FORMAT_VERSION,
    INDEX_NAME,
    MANIFEST_COLUMNS,
    MANIFEST_JSONL_NAME,
    MANIFEST_PARQUET_NAME,
    MAX_CLIP_BYTES,
    MAX_INDEX_BYTES,
    MAX_OBJECT_BYTES,
    MAX_ROW_BYTES,
    MAX_SAMPLES,
    MAX_SHARD_BYTES,
    MAX_SHARDS,
    MEDIA_EXTENSIONS,
    MIN_SHARD_BYTES,
    NESTED_COLUMNS,
    TAR_BLOCK,
    TAR_TRAILER,
    DatasetError,
    DatasetFormatError,
    ManifestRow,
    MemberRange,
    MissingExtraError,
    SampleEntry,
    SampleRecord,
    ShardEntry,
    ShardIndex,
    canonical_row_json,
    index_json,
    manifest_frame,
    manifest_jsonl,
    manifest_table,
    read_index,
    read_manifest_jsonl,
    read_manifest_parquet,
    shard_name,
    version_hash,
    write_manifest_parquet,
)

if TYPE_CHECKING:
    from shotbank.datasets.client import (
        DatasetHandle,
        DatasetInfo,
        DatasetVersionHandle,
        DatasetVersionSummary,
        DownloadError,
        DownloadReport,
        LicenceRequiredError,
        ShardVerificationError,
    )
    from shotbank.datasets.market import (
        AlreadyLicensedError,
        InsufficientBalanceError,
        LicenceWaitTimeoutError,
        NoRpcUrlError,
        NotForSaleError,
        PriceAboveMaxError,
        PurchaseError,
        PurchaseFailedError,
    )

#: Names of :mod:`shotbank.datasets.client`, imported on first use: the client pulls in
#: httpx, eth-account and rich, which readers of the format alone do not need.
_CLIENT_NAMES = frozenset(
    {
        "DatasetHandle",
        "DatasetInfo",
        "DatasetVersionHandle",
        "DatasetVersionSummary",
        "DownloadError",
        "DownloadReport",
        "LicenceRequiredError",
        "ShardVerificationError",
    }
)


#: Errors of :mod:`shotbank.datasets.market` (``client.buy``), imported on first use: the
#: market talks to the chain through web3.
_MARKET_NAMES = frozenset(
    {
        "AlreadyLicensedError",
        "InsufficientBalanceError",
        "LicenceWaitTimeoutError",
        "NoRpcUrlError",
        "NotForSaleError",
        "PriceAboveMaxError",
        "PurchaseError",
        "PurchaseFailedError",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from shotbank.datasets import client

        return getattr(client, name)
    if name in _MARKET_NAMES:
        from shotbank.datasets import market

        return getattr(market, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_SHARD_BYTES",
    "FORMAT_VERSION",
    "INDEX_NAME",
    "MANIFEST_COLUMNS",
    "MANIFEST_JSONL_NAME",
    "MANIFEST_PARQUET_NAME",
    "MAX_CLIP_BYTES",
    "MAX_INDEX_BYTES",
    "MAX_OBJECT_BYTES",
    "MAX_ROW_BYTES",
    "MAX_SAMPLES",
    "MAX_SHARDS",
    "MAX_SHARD_BYTES",
    "MEDIA_EXTENSIONS",
    "MIN_SHARD_BYTES",
    "NESTED_COLUMNS",
    "TAR_BLOCK",
    "TAR_TRAILER",
    "AlreadyLicensedError",
    "DatasetError",
    "DatasetFormatError",
    "DatasetHandle",
    "DatasetInfo",
    "DatasetVersionHandle",
    "DatasetVersionSummary",
    "DownloadError",
    "DownloadReport",
    "InsufficientBalanceError",
    "LicenceRequiredError",
    "LicenceWaitTimeoutError",
    "ManifestRow",
    "MemberRange",
    "MissingExtraError",
    "NoRpcUrlError",
    "NotForSaleError",
    "PriceAboveMaxError",
    "PurchaseError",
    "PurchaseFailedError",
    "SampleEntry",
    "SampleRecord",
    "ShardEntry",
    "ShardIndex",
    "ShardVerificationError",
    "canonical_row_json",
    "index_json",
    "manifest_frame",
    "manifest_jsonl",
    "manifest_table",
    "read_index",
    "read_manifest_jsonl",
    "read_manifest_parquet",
    "shard_name",
    "version_hash",
    "write_manifest_parquet",
]
