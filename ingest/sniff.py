"""Magic-byte sniffing: decide from a file's first bytes whether it may reach a demuxer.

Only two container families are allowed, each recognised at offset 0:

* ISO base media (MP4, QuickTime MOV): an ``ftyp`` box first, whose *major brand* is on
  :data:`MP4_BRANDS`; the file is then demuxed by FFmpeg's ``mov`` demuxer, and only it;
* Matroska / WebM: the EBML magic ``1A 45 DF A3`` and an EBML header whose ``DocType``
  is ``matroska`` or ``webm``; demuxed by FFmpeg's ``matroska`` demuxer, and only it.

Everything else is rejected before any demuxer sees it. The rejection reason names what
the file looks like, for a clear message: empty, an HLS/DASH playlist or an ffconcat
script (these would make a demuxer open other files or URLs), an image, text, another
video container, or unknown bytes. Those reasons are for people; the decision itself is
the allow-list, so a file that starts like a playlist, or with junk before a real
``ftyp``, never counts as a video. The probe forces the sniffed demuxer, so what a
polyglot holds *after* a valid header cannot switch FFmpeg to another format.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from ingest.errors import (
    EmptyFileError,
    ImageFileError,
    MediaRejectedError,
    PlaylistError,
    TextFileError,
    TruncatedMediaError,
    UnsupportedBrandError,
    UnsupportedContainerError,
)

__all__ = [
    "MATROSKA_DOCTYPES",
    "MP4_BRANDS",
    "SNIFF_BYTES",
    "ContainerFormat",
    "SniffResult",
    "sniff_bytes",
    "sniff_file",
]

#: How many leading bytes sniffing looks at (a whole ``ftyp`` box must fit in them).
SNIFF_BYTES: Final = 4096

#: ISO-BMFF major brands accepted: generic ISO/MP4 brands, codec brands that cameras and
#: encoders write as major brand, Apple M4V and QuickTime, Sony XAVC/NV. Image brands
#: (``heic``, ``avif``, ``mif1``), audio-only (``M4A ``) and DASH segment brands are not.
MP4_BRANDS: Final = frozenset(
    {
        "isom",
        "iso2",
        "iso3",
        "iso4",
        "iso5",
        "iso6",
        "mp41",
        "mp42",
        "avc1",
        "av01",
        "M4V ",
        "M4VH",
        "M4VP",
        "qt  ",
        "XAVC",
        "MSNV",
    }
)

#: EBML DocTypes accepted.
MATROSKA_DOCTYPES: Final = frozenset({"matroska", "webm"})

_IMAGE_BRANDS: Final = frozenset({"heic", "heix", "heim", "heis", "mif1", "msf1", "avif", "avis"})
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID: Final = 0x4282
_MIN_FTYP: Final = 16

# Other containers, named in the rejection message: (magic at offset, offset, name).
_OTHER_CONTAINERS: Final = (
    (b"RIFF", 0, "RIFF (AVI/WAV)"),
    (b"FLV\x01", 0, "FLV"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", 0, "ASF/WMV"),
    (b"OggS", 0, "Ogg"),
    (b"\x00\x00\x01\xba", 0, "MPEG program stream"),
    (b"ID3", 0, "MP3"),
    (b"fLaC", 0, "FLAC"),
)
_QUICKTIME_WITHOUT_FTYP: Final = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_IMAGES: Final = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
_UTF8_BOM: Final = b"\xef\xbb\xbf"


class ContainerFormat(StrEnum):
    """An allow-listed container family, with the only FFmpeg demuxer it may be read by."""

    MP4 = "mp4"
    MATROSKA = "matroska"

    @property
    def demuxer(self) -> str:
        """The FFmpeg demuxer that is forced for this family (``format_whitelist`` too)."""
        return "mov" if self is ContainerFormat.MP4 else "matroska"


class SniffResult(BaseModel):
    """What the first bytes say: the container family and its brand or DocType."""

    model_config = ConfigDict(frozen=True)

    container: ContainerFormat
    brand: str = Field(max_length=16, description="ftyp major brand or EBML DocType")
    compatible_brands: tuple[str, ...] = Field(default=(), max_length=256)


def _ascii4(raw: bytes) -> str:
    return raw.decode("latin-1")


def _sniff_ftyp(head: bytes, total_size: int | None) -> SniffResult:
    box_size = int.from_bytes(head[0:4], "big")
    if box_size == 1 or box_size < _MIN_FTYP or box_size % 4:
        raise UnsupportedContainerError("The file's ftyp box is malformed.")
    if box_size > SNIFF_BYTES:
        raise UnsupportedContainerError("The file's ftyp box is implausibly large.")
    if box_size > len(head):
        if total_size is not None and total_size < box_size:
            raise TruncatedMediaError("The file ends inside its ftyp box.")
        raise UnsupportedContainerError("The file's ftyp box is incomplete.")
    major = _ascii4(head[8:12])
    compatible = tuple(_ascii4(head[i : i + 4]) for i in range(16, box_size, 4))
    if major in _IMAGE_BRANDS:
        raise ImageFileError(f"The file is a HEIF/AVIF still image (brand {major!r}).")
    if major not in MP4_BRANDS:
        raise UnsupportedBrandError(
            f"ISO media files with major brand {major!r} are not accepted; "
            "re-mux the clip to MP4 or MOV."
        )
    return SniffResult(container=ContainerFormat.MP4, brand=major, compatible_brands=compatible)


def _read_vint(buf: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-length integer at ``pos``: (value, next position, all-ones)."""
    if pos >= len(buf):
        raise UnsupportedContainerError("The EBML header is incomplete.")
    first = buf[pos]
    length = 8 - first.bit_length() + 1
    if first == 0 or pos + length > len(buf):
        raise UnsupportedContainerError("The EBML header is malformed.")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in buf[pos + 1 : pos + length]:
        value = (value << 8) | byte
    all_ones = not keep_marker and value == (1 << (7 * length)) - 1
    return value, pos + length, all_ones


def _sniff_ebml(head: bytes) -> SniffResult:
    size, pos, unknown = _read_vint(head, 4, keep_marker=False)
    end = pos + size
    if unknown or end > len(head):
        raise UnsupportedContainerError("The EBML header is malformed or implausibly large.")
    doctype: str | None = None
    while pos < end:
        element, pos, _ = _read_vint(head, pos, keep_marker=True)
        length, pos, unknown = _read_vint(head, pos, keep_marker=False)
        if unknown or pos + length > end:
            raise UnsupportedContainerError("The EBML header is malformed.")
        if element == _EBML_DOCTYPE_ID:
            doctype = head[pos : pos + length].rstrip(b"\x00").decode("ascii", "replace")
        pos += length
    if doctype is None:
        raise UnsupportedContainerError("The EBML header has no DocType.")
    if doctype not in MATROSKA_DOCTYPES:
        raise UnsupportedBrandError(f"EBML files of DocType {doctype[:32]!r} are not accepted.")
    return SniffResult(container=ContainerFormat.MATROSKA, brand=doctype)


def _looks_like_text(data: bytes) -> bool:
    if not data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed window is still text.
        if exc.start < len(data) - 3:
            return False
        text = data[: exc.start].decode("utf-8")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n\f")
    return printable >= 0.95 * max(1, len(text))


def _reject_other(head: bytes) -> MediaRejectedError:
    """The most helpful rejection for bytes that are not an allowed container."""
    for magic, offset, name in _OTHER_CONTAINERS:
        if head[offset : offset + len(magic)] == magic:
            if name.startswith("RIFF") and head[8:12] == b"WEBP":
                return ImageFileError("The file is a WebP image.")
            return UnsupportedContainerError(f"{name} files are not accepted.")
    if len(head) >= 8 and head[4:8] in _QUICKTIME_WITHOUT_FTYP:
        return UnsupportedContainerError(
            "QuickTime files without an ftyp box are not accepted; re-mux the clip."
        )
    if len(head) >= 188 * 2 and head[0] == 0x47 and head[188] == 0x47:
        return UnsupportedContainerError("MPEG transport streams are not accepted.")
    for magic, name in _IMAGES:
        if head.startswith(magic):
            return ImageFileError(f"The file is a {name} image.")
    text = head.removeprefix(_UTF8_BOM).lstrip()
    lowered = text[:1024].lower()
    if text.startswith(b"#EXTM3U") or text.startswith(b"#EXTINF"):
        return PlaylistError("The file is an HLS (m3u8) playlist, not a video.")
    if b"<mpd" in lowered or b"<smil" in lowered:
        return PlaylistError("The file is a DASH/SMIL manifest, not a video.")
    if lowered.startswith(b"ffconcat"):
        return PlaylistError("The file is an ffconcat script, not a video.")
    if lowered.startswith(b"<?xml") or lowered.startswith(b"<svg"):
        return TextFileError("The file is an XML/SVG document, not a video.")
    if _looks_like_text(head):
        return TextFileError("The file is text, not a video.")
    return UnsupportedContainerError(
        "The file is not an MP4, MOV, Matroska or WebM video (unrecognised first bytes)."
    )


def sniff_bytes(head: bytes, *, total_size: int | None = None) -> SniffResult:
    """Classify a file from its first bytes (at most :data:`SNIFF_BYTES` are looked at).

    ``total_size`` is the whole file's size when known; it tells an empty file and a
    file cut inside its header apart from malformed ones. Raises a
    :class:`~ingest.errors.MediaRejectedError` subclass for anything not allow-listed.
    """
    head = bytes(head[:SNIFF_BYTES])
    if not head:
        raise EmptyFileError("The file is empty.")
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return _sniff_ftyp(head, total_size)
    if head.startswith(_EBML_MAGIC):
        return _sniff_ebml(head)
    raise _reject_other(head)


def sniff_file(path: str | os.PathLike[str]) -> SniffResult:
    """Classify the file at ``path`` by its first bytes; see :func:`sniff_bytes`."""
    with Path(path).open("rb") as handle:
        total = os.fstat(handle.fileno()).st_size
        head = handle.read(SNIFF_BYTES)
    return sniff_bytes(head, total_size=total)
