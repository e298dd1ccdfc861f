"""The ingest package's exception tree, with stable reason codes.

Every class carries a machine-readable ``code`` that callers (the backend's error
handler, the contributor's dashboard) may rely on; a published code never changes
meaning. ``message`` is a sentence for a human and never holds secrets or file paths
from the server::

    IngestError                                 ingest.error
    ├── InvalidCidError (ValueError)            cid.invalid
    ├── MediaRejectedError                      media.rejected
    │   ├── EmptyFileError                      media.empty
    │   ├── UnsupportedContainerError           media.unsupported_container
    │   │   ├── PlaylistError                   media.playlist
    │   │   ├── ImageFileError                  media.image
    │   │   ├── TextFileError                   media.text
    │   │   └── UnsupportedBrandError           media.unsupported_brand
    │   ├── TruncatedMediaError                 media.truncated
    │   ├── CorruptMediaError                   media.corrupt
    │   ├── NoVideoStreamError                  media.no_video_stream
    │   ├── UnsupportedCodecError               media.unsupported_codec
    │   ├── UnsupportedStreamError              media.unsupported_stream
    │   ├── TooManyStreamsError                 media.too_many_streams
    │   ├── DurationOutOfBoundsError            media.duration_out_of_bounds
    │   ├── ResolutionOutOfBoundsError          media.resolution_out_of_bounds
    │   └── FrameRateOutOfBoundsError           media.frame_rate_out_of_bounds
    ├── ProbeFailedError                        media.probe_failed
    │   ├── ProbeTimeoutError                   media.probe_timeout
    │   └── ProbeResourceLimitError             media.probe_resource_limit
    └── BlobStoreError                          blob.error
        ├── BlobNotFoundError (LookupError)     blob.not_found
        ├── BlobIntegrityError                  blob.integrity_mismatch
        └── BlobStoreUnavailableError           blob.unavailable

``MediaRejectedError`` is a verdict on the bytes: the same file is rejected again on
every try, so the caller reports it to the contributor (HTTP 422). ``ProbeFailedError``
means no verdict was reached: the probe ran out of time, CPU or memory, or its worker
died. A file that exhausts the CPU or memory limit is very likely hostile, but a
wall-clock timeout can also come from an overloaded host; the caller decides whether
to retry once or to reject with the code.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BlobIntegrityError",
    "BlobNotFoundError",
    "BlobStoreError",
    "BlobStoreUnavailableError",
    "CorruptMediaError",
    "DurationOutOfBoundsError",
    "EmptyFileError",
    "FrameRateOutOfBoundsError",
    "ImageFileError",
    "IngestError",
    "InvalidCidError",
    "MediaRejectedError",
    "NoVideoStreamError",
    "PlaylistError",
    "ProbeFailedError",
    "ProbeResourceLimitError",
    "ProbeTimeoutError",
    "ResolutionOutOfBoundsError",
    "TextFileError",
    "TooManyStreamsError",
    "TruncatedMediaError",
    "UnsupportedBrandError",
    "UnsupportedCodecError",
    "UnsupportedContainerError",
    "UnsupportedStreamError",
    "error_for_code",
]


class IngestError(Exception):
    """Base of every error the ingest package raises on purpose."""

    code: ClassVar[str] = "ingest.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidCidError(IngestError, ValueError):
    """A string is not a CID this project accepts (CIDv1, sha2-256, raw or dag-pb)."""

    code = "cid.invalid"


# --- verdicts on the media bytes ---------------------------------------------------


class MediaRejectedError(IngestError):
    """The file is not an acceptable clip; trying again gives the same answer."""

    code = "media.rejected"


class EmptyFileError(MediaRejectedError):
    """The file has no bytes."""

    code = "media.empty"


class UnsupportedContainerError(MediaRejectedError):
    """The file does not start like an allow-listed container (MP4/MOV, Matroska/WebM)."""

    code = "media.unsupported_container"


class PlaylistError(UnsupportedContainerError):
    """The file is a playlist or manifest (HLS, DASH, ffconcat) that points elsewhere."""

    code = "media.playlist"


class ImageFileError(UnsupportedContainerError):
    """The file is a still image, not a video."""

    code = "media.image"


class TextFileError(UnsupportedContainerError):
    """The file is text, not a media container."""

    code = "media.text"


class UnsupportedBrandError(UnsupportedContainerError):
    """An ISO-BMFF (``ftyp``) or EBML file whose brand or DocType is not allow-listed."""

    code = "media.unsupported_brand"


class TruncatedMediaError(MediaRejectedError):
    """The container's structure runs past the end of the file: the upload is incomplete."""

    code = "media.truncated"


class CorruptMediaError(MediaRejectedError):
    """The demuxer or decoder cannot read the file."""

    code = "media.corrupt"


class NoVideoStreamError(MediaRejectedError):
    """The file holds no video stream."""

    code = "media.no_video_stream"


class UnsupportedCodecError(MediaRejectedError):
    """A video or audio stream uses a codec that is not allow-listed."""

    code = "media.unsupported_codec"


class UnsupportedStreamError(MediaRejectedError):
    """A stream of a kind that is not allow-listed (subtitles, attachments, extra video)."""

    code = "media.unsupported_stream"


class TooManyStreamsError(MediaRejectedError):
    """The file holds more streams than allowed."""

    code = "media.too_many_streams"


class DurationOutOfBoundsError(MediaRejectedError):
    """The clip is too short, too long, or its duration is unknown."""

    code = "media.duration_out_of_bounds"


class ResolutionOutOfBoundsError(MediaRejectedError):
    """The video's dimensions are too small, too large, or missing."""

    code = "media.resolution_out_of_bounds"


class FrameRateOutOfBoundsError(MediaRejectedError):
    """The video's frame rate is unknown or outside the allowed range."""

    code = "media.frame_rate_out_of_bounds"


# --- the probe could not reach a verdict -------------------------------------------


class ProbeFailedError(IngestError):
    """The probe worker did not produce an answer (crash, unexpected output)."""

    code = "media.probe_failed"


class ProbeTimeoutError(ProbeFailedError):
    """The probe worker ran past its wall-clock limit and was killed."""

    code = "media.probe_timeout"


class ProbeResourceLimitError(ProbeFailedError):
    """The probe worker hit its CPU-time or memory limit."""

    code = "media.probe_resource_limit"


# --- blob stores -------------------------------------------------------------------


class BlobStoreError(IngestError):
    """A blob store operation failed."""

    code = "blob.error"


class BlobNotFoundError(BlobStoreError, LookupError):
    """No blob with this CID is in the store."""

    code = "blob.not_found"


class BlobIntegrityError(BlobStoreError):
    """Bytes do not match the CID, SHA-256 or size they were announced or stored with."""

    code = "blob.integrity_mismatch"


class BlobStoreUnavailableError(BlobStoreError):
    """The store's backing service (e.g. the Kubo RPC API) cannot be reached."""

    code = "blob.unavailable"


def _all_subclasses(cls: type[IngestError]) -> list[type[IngestError]]:
    found: list[type[IngestError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_for_code(code: str) -> type[IngestError]:
    """The exception class that owns a reason ``code`` (``IngestError`` if unknown).

    The probe worker reports failures as codes across the process boundary; the parent
    turns them back into exceptions with this.
    """
    for cls in _all_subclasses(IngestError):
        if cls.code == code:
            return cls
    return IngestError
