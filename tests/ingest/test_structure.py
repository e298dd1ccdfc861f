"""ingest._structure: the header walk survives any damage with a media.* verdict."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest._structure import inspect_structure
from ingest.errors import CorruptMediaError, TruncatedMediaError
from ingest.sniff import ContainerFormat

_MUTATIONS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8)
_SETTINGS = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutate(data: bytes, region: tuple[int, int], edits: list[tuple[float, int]]) -> bytes:
    out = bytearray(data)
    start, end = region
    for where, value in edits:
        out[start + int(where * (end - start))] = value
    return bytes(out)


def _walk(data: bytes, container: ContainerFormat) -> None:
    with contextlib.suppress(TruncatedMediaError, CorruptMediaError):
        inspect_structure(io.BytesIO(data), len(data), container)


def test_intact_files_pass_and_report_their_declared_sizes(h264_mp4: Path, vp9_webm: Path) -> None:
    mp4 = h264_mp4.read_bytes()
    report = inspect_structure(io.BytesIO(mp4), len(mp4), ContainerFormat.MP4)
    assert {(d.width, d.height) for d in report.declared} == {(640, 480)}
    assert {d.source for d in report.declared} == {"MP4 tkhd", "MP4 stsd"}
    webm = vp9_webm.read_bytes()
    report = inspect_structure(io.BytesIO(webm), len(webm), ContainerFormat.MATROSKA)
    assert [(d.width, d.height) for d in report.declared] == [(854, 480)]
    assert report.size_checked


@_SETTINGS
@given(edits=_MUTATIONS)
def test_damaged_mp4_moov_gives_a_verdict_not_a_crash(
    h264_mp4: Path, edits: list[tuple[float, int]]
) -> None:
    data = h264_mp4.read_bytes()
    moov = data.index(b"moov") - 4
    _walk(_mutate(data, (moov, len(data)), edits), ContainerFormat.MP4)


@_SETTINGS
@given(edits=_MUTATIONS, cut=st.integers(0, 4096))
def test_damaged_matroska_header_gives_a_verdict_not_a_crash(
    vp9_webm: Path, edits: list[tuple[float, int]], cut: int
) -> None:
    data = vp9_webm.read_bytes()
    damaged = _mutate(data, (4, 1024), edits)
    _walk(damaged[: len(damaged) - cut], ContainerFormat.MATROSKA)
