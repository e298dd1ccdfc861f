"""Container structure checks that do not trust FFmpeg: truncation and declared sizes.

Two questions are answered by walking box / element headers (never sample data), with
hard bounds on how much is read and how many headers are visited:

* Is the file complete? Every top-level ISO-BMFF box, and the Matroska ``Segment`` when
  its size is known, must end within the file. A recording or upload cut short fails
  here with :class:`~ingest.errors.TruncatedMediaError` even where FFmpeg would quietly
  play the part that is there.
* What video size does the container *declare*? ``tkhd`` and the visual sample entry in
  ``stsd`` for MP4/MOV; ``PixelWidth``/``PixelHeight`` (and display sizes in pixels) for
  Matroska. FFmpeg replaces these with what the decoder reports while it probes, so a
  header claiming 100000x100000 would otherwise go unseen; the probe rejects any declared
  size beyond its bounds before decoding anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from ingest.errors import CorruptMediaError, TruncatedMediaError
from ingest.sniff import ContainerFormat

__all__ = ["DeclaredSize", "StructureReport", "inspect_structure"]

#: At most this many box / element headers are visited per file.
MAX_HEADERS: Final = 20_000
#: Small boxes / elements read whole (``tkhd``, ``hdlr``, ``stsd``, ``Tracks``).
MAX_SMALL_READ: Final = 1 << 20

_MP4_CONTAINERS: Final = frozenset({b"trak", b"mdia", b"minf", b"stbl"})
_EBML_HEADER: Final = 0x1A45DFA3
_SEGMENT: Final = 0x18538067
_TRACKS: Final = 0x1654AE6B
_CLUSTER: Final = 0x1F43B675
_TRACK_ENTRY: Final = 0xAE
_TRACK_TYPE: Final = 0x83
_VIDEO: Final = 0xE0
_PIXEL_WIDTH: Final = 0xB0
_PIXEL_HEIGHT: Final = 0xBA
_DISPLAY_WIDTH: Final = 0x54B0
_DISPLAY_HEIGHT: Final = 0x54BA
_DISPLAY_UNIT: Final = 0x54B2
_TRACK_TYPE_VIDEO: Final = 1
_VISUAL_ENTRY_MIN: Final = 28
_TKHD_MIN: Final = 84


@dataclass(frozen=True, slots=True)
class DeclaredSize:
    """A video size written in the container, and where it was written."""

    width: int
    height: int
    source: str


@dataclass(slots=True)
class StructureReport:
    """What the header walk found."""

    declared: list[DeclaredSize] = field(default_factory=list)
    #: MP4/MOV: sample entry types (``tmcd``, ``mebx``...) of tracks that are neither
    #: video nor audio; FFmpeg shows these as data streams without naming their kind.
    other_entry_types: set[str] = field(default_factory=set)
    #: False where completeness cannot be checked (Matroska with an unknown segment size).
    size_checked: bool = True


class _Reader:
    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size
        self.headers = 0

    def read(self, pos: int, count: int) -> bytes:
        if count > MAX_SMALL_READ:
            raise CorruptMediaError("A container header is implausibly large.")
        self.handle.seek(pos)
        data = self.handle.read(count)
        if len(data) < count:
            raise TruncatedMediaError("The file ends inside a container header.")
        return data

    def visit(self) -> None:
        self.headers += 1
        if self.headers > MAX_HEADERS:
            raise CorruptMediaError("The container has implausibly many boxes or elements.")


# --- ISO base media (MP4 / MOV) --------------------------------------------------------


def _boxes(reader: _Reader, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes in ``[start, end)``."""
    pos = start
    while pos < end:
        reader.visit()
        if end - pos < 8:
            if end == reader.size:
                raise TruncatedMediaError("The file ends inside a box header.")
            raise CorruptMediaError("A box header overruns its parent box.")
        header = reader.read(pos, 8)
        size = int.from_bytes(header[:4], "big")
        kind = header[4:8]
        payload = pos + 8
        if size == 1:
            size = int.from_bytes(reader.read(pos + 8, 8), "big")
            payload = pos + 16
        elif size == 0:
            size = end - pos
        if size < payload - pos:
            raise CorruptMediaError(f"The {kind!r} box has an invalid size.")
        box_end = pos + size
        if box_end > end:
            if end == reader.size:
                raise TruncatedMediaError(
                    f"The file ends inside its {kind.decode('latin-1')!r} box: "
                    f"{box_end - end} bytes are missing."
                )
            raise CorruptMediaError(f"The {kind!r} box overruns its parent box.")
        yield kind, payload, box_end
        pos = box_end


def _mp4_track(reader: _Reader, start: int, end: int, report: StructureReport) -> None:
    tkhd: tuple[int, int] | None = None
    handler: bytes | None = None
    entries: list[tuple[bytes, int, int]] = []

    def walk(lo: int, hi: int, parent: bytes) -> None:
        nonlocal tkhd, handler
        for kind, payload, box_end in _boxes(reader, lo, hi):
            if kind == b"tkhd" and box_end - payload >= _TKHD_MIN:
                data = reader.read(payload, box_end - payload)
                tkhd = (
                    int.from_bytes(data[-8:-4], "big") >> 16,
                    int.from_bytes(data[-4:], "big") >> 16,
                )
            elif kind == b"hdlr" and parent == b"mdia" and box_end - payload >= 12:
                # Only mdia's handler names the track kind; QuickTime's minf/hdlr is a
                # data handler ('alis', 'url ').
                handler = reader.read(payload + 8, 4)
            elif kind == b"stsd" and box_end - payload >= 8:
                for entry, entry_payload, entry_end in _boxes(reader, payload + 8, box_end):
                    width = height = 0
                    if entry_end - entry_payload >= _VISUAL_ENTRY_MIN:
                        data = reader.read(entry_payload + 24, 4)
                        width, height = int.from_bytes(data[:2]), int.from_bytes(data[2:])
                    entries.append((entry, width, height))
            elif kind in _MP4_CONTAINERS:
                walk(payload, box_end, kind)

    walk(start, end, b"trak")
    if handler == b"soun":
        return
    if handler != b"vide":
        report.other_entry_types.update(entry.decode("latin-1") for entry, _w, _h in entries)
        return
    if tkhd is not None:
        report.declared.append(DeclaredSize(*tkhd, source="MP4 tkhd"))
    for _entry, width, height in entries:
        report.declared.append(DeclaredSize(width, height, source="MP4 stsd"))


def _inspect_mp4(reader: _Reader) -> StructureReport:
    report = StructureReport()
    moov: tuple[int, int] | None = None
    has_media_data = False
    for kind, payload, box_end in _boxes(reader, 0, reader.size):
        if kind == b"moov":
            if moov is not None:
                raise CorruptMediaError("The file has more than one moov box.")
            moov = (payload, box_end)
        elif kind == b"mdat":
            has_media_data = True
    if moov is None:
        if has_media_data:
            raise TruncatedMediaError(
                "The file has media data but no moov index: the recording or upload "
                "was not finished."
            )
        raise CorruptMediaError("The file has no moov box.")
    for kind, payload, box_end in _boxes(reader, *moov):
        if kind == b"trak":
            _mp4_track(reader, payload, box_end, report)
    return report


# --- Matroska / WebM -------------------------------------------------------------------


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    if pos >= len(data):
        raise CorruptMediaError("An EBML element header is cut short.")
    first = data[pos]
    length = 9 - first.bit_length()
    if first == 0 or pos + length > len(data):
        raise CorruptMediaError("An EBML element header is malformed.")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, pos + length, not keep_marker and value == (1 << (7 * length)) - 1


def _element_header(reader: _Reader, pos: int) -> tuple[int, int, int | None]:
    """(element id, payload start, payload size or None when unknown) at ``pos``."""
    reader.visit()
    head = reader.read(pos, min(12, reader.size - pos))
    try:
        element, cursor, _ = _vint(head, 0, keep_marker=True)
        size, cursor, unknown = _vint(head, cursor, keep_marker=False)
    except CorruptMediaError:
        if len(head) < 12:
            raise TruncatedMediaError("The file ends inside an EBML element header.") from None
        raise
    return element, pos + cursor, None if unknown else size


def _children(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(id, payload) of the elements inside an in-memory master element."""
    pos = 0
    while pos < len(data):
        element, pos, _ = _vint(data, pos, keep_marker=True)
        size, pos, unknown = _vint(data, pos, keep_marker=False)
        if unknown or pos + size > len(data):
            raise CorruptMediaError("An EBML element overruns its parent.")
        yield element, data[pos : pos + size]
        pos += size


def _uint(payload: bytes) -> int:
    if len(payload) > 8:
        raise CorruptMediaError("An EBML integer is longer than 8 bytes.")
    return int.from_bytes(payload, "big")


def _matroska_tracks(data: bytes, report: StructureReport) -> None:
    for element, entry in _children(data):
        if element != _TRACK_ENTRY:
            continue
        fields = dict(_children(entry))
        if _uint(fields.get(_TRACK_TYPE, b"")) != _TRACK_TYPE_VIDEO or _VIDEO not in fields:
            continue
        video = dict(_children(fields[_VIDEO]))
        width = _uint(video.get(_PIXEL_WIDTH, b""))
        height = _uint(video.get(_PIXEL_HEIGHT, b""))
        report.declared.append(DeclaredSize(width, height, source="Matroska PixelWidth/Height"))
        if _uint(video.get(_DISPLAY_UNIT, b"")) == 0 and _DISPLAY_WIDTH in video:
            report.declared.append(
                DeclaredSize(
                    _uint(video[_DISPLAY_WIDTH]),
                    _uint(video.get(_DISPLAY_HEIGHT, b"")),
                    source="Matroska DisplayWidth/Height",
                )
            )


def _inspect_matroska(reader: _Reader) -> StructureReport:
    report = StructureReport()
    element, payload, size = _element_header(reader, 0)
    if element != _EBML_HEADER or size is None:
        raise CorruptMediaError("The EBML header is malformed.")
    pos = payload + size
    element, payload, size = _element_header(reader, pos)
    if element != _SEGMENT:
        raise CorruptMediaError("The file has no Matroska Segment after its EBML header.")
    if size is None:
        end = reader.size
        report.size_checked = False
    else:
        end = payload + size
        if end > reader.size:
            raise TruncatedMediaError(
                f"The file ends inside its Matroska Segment: {end - reader.size} bytes are missing."
            )
    pos = payload
    tracks_seen = False
    while pos < end and not (tracks_seen and element == _CLUSTER):
        element, payload, size = _element_header(reader, pos)
        if size is None:  # a live-written Cluster: nothing after it can be located
            break
        if payload + size > reader.size:
            raise TruncatedMediaError("The file ends inside a Matroska element.")
        if payload + size > end:
            raise CorruptMediaError("A Matroska element overruns its Segment.")
        if element == _TRACKS:
            _matroska_tracks(reader.read(payload, size), report)
            tracks_seen = True
        pos = payload + size
    if not tracks_seen:
        raise CorruptMediaError("The Matroska file has no Tracks element before its data.")
    return report


def inspect_structure(handle: BinaryIO, size: int, container: ContainerFormat) -> StructureReport:
    """Walk the container's headers in ``handle`` (``size`` bytes); see the module doc.

    Raises :class:`~ingest.errors.TruncatedMediaError` when the structure runs past the
    end of the file and :class:`~ingest.errors.CorruptMediaError` when it is malformed.
    """
    reader = _Reader(handle, size)
    if container is ContainerFormat.MP4:
        return _inspect_mp4(reader)
    return _inspect_matroska(reader)
