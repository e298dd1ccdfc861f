"""Media ingest for Shotbank: what happens to a clip between upload and scoring.

* :mod:`ingest.cid` — content addressing: the CIDv1 of ``ipfs add --cid-version 1
  --raw-leaves``, streamed in the same pass as SHA-256 (:class:`StreamingDigest`);
* :mod:`ingest.sniff` — magic-byte allow-list of containers (MP4/MOV, Matroska/WebM);
* :mod:`ingest.probe` — PyAV probing in a resource-limited worker process: streams,
  codecs and bounds, loudness (EBU R128), a poster thumbnail;
* :mod:`ingest.blobstore` — the :class:`BlobStore` interface, a local content-addressed
  store and a Kubo (IPFS) store;
* :mod:`ingest.errors` — the exception tree with stable reason codes.

The usual order for an upload: feed a :class:`StreamingDigest` while receiving, then
:func:`sniff_file`, :func:`probe_file` and :meth:`BlobStore.put_file` with the digest
(``move=True`` hands the upload file itself to the store: verified, then renamed).
"""

from ingest.blobstore import BlobInfo, BlobRange, BlobStore, KuboBlobStore, LocalBlobStore
from ingest.cid import (
    CidHasher,
    ContentDigest,
    StreamingDigest,
    cid_of_bytes,
    digest_file,
    normalize_cid,
)
from ingest.errors import IngestError, MediaRejectedError, ProbeFailedError
from ingest.probe import (
    AudioStreamInfo,
    Loudness,
    ProbeLimits,
    ProbeResult,
    Thumbnail,
    ThumbnailSpec,
    VideoStreamInfo,
    probe_file,
)
from ingest.sniff import ContainerFormat, SniffResult, sniff_bytes, sniff_file

__all__ = [
    "AudioStreamInfo",
    "BlobInfo",
    "BlobRange",
    "BlobStore",
    "CidHasher",
    "ContainerFormat",
    "ContentDigest",
    "IngestError",
    "KuboBlobStore",
    "LocalBlobStore",
    "Loudness",
    "MediaRejectedError",
    "ProbeFailedError",
    "ProbeLimits",
    "ProbeResult",
    "SniffResult",
    "StreamingDigest",
    "Thumbnail",
    "ThumbnailSpec",
    "VideoStreamInfo",
    "cid_of_bytes",
    "digest_file",
    "normalize_cid",
    "probe_file",
    "sniff_bytes",
    "sniff_file",
]
