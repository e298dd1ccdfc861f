"""ingest.sniff: the allow-list of containers, and the reasons given for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from ingest.sniff import SNIFF_BYTES, ContainerFormat, SniffResult, sniff_bytes, sniff_file


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body


def _ebml_element(element_id: bytes, payload: bytes) -> bytes:
    assert len(payload) < 127
    return element_id + bytes([0x80 | len(payload)]) + payload


def _ebml_header(doctype: bytes) -> bytes:
    body = _ebml_element(b"\x42\x86", b"\x01") + _ebml_element(b"\x42\x82", doctype)
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body


def test_real_mp4_and_webm_are_recognised(h264_mp4: Path, vp9_webm: Path) -> None:
    mp4 = sniff_file(h264_mp4)
    assert mp4.container is ContainerFormat.MP4
    assert mp4.brand == "isom"
    assert "avc1" in mp4.compatible_brands
    webm = sniff_file(vp9_webm)
    assert (webm.container, webm.brand) == (ContainerFormat.MATROSKA, "webm")


def test_each_family_forces_its_own_demuxer() -> None:
    assert ContainerFormat.MP4.demuxer == "mov"
    assert ContainerFormat.MATROSKA.demuxer == "matroska"


@pytest.mark.parametrize("brand", [b"isom", b"mp42", b"qt  ", b"M4V ", b"XAVC", b"av01"])
def test_allow_listed_ftyp_brands_pass(brand: bytes) -> None:
    result = sniff_bytes(_ftyp(brand, b"isom") + bytes(64))
    assert result.container is ContainerFormat.MP4
    assert result.brand == brand.decode()


def test_matroska_doctype_passes() -> None:
    result = sniff_bytes(_ebml_header(b"matroska") + bytes(32))
    assert (result.container, result.brand) == (ContainerFormat.MATROSKA, "matroska")


@pytest.mark.parametrize(
    ("head", "error", "code"),
    [
        (_ftyp(b"M4A ", b"isom"), UnsupportedBrandError, "media.unsupported_brand"),
        (_ftyp(b"dash", b"iso6"), UnsupportedBrandError, "media.unsupported_brand"),
        (_ftyp(b"crx ", b"isom"), UnsupportedBrandError, "media.unsupported_brand"),
        (_ftyp(b"heic", b"mif1"), ImageFileError, "media.image"),
        (_ftyp(b"avif", b"mif1", b"miaf"), ImageFileError, "media.image"),
        (_ebml_header(b"mka-junk"), UnsupportedBrandError, "media.unsupported_brand"),
    ],
)
def test_other_brands_are_rejected_with_their_reason(
    head: bytes, error: type[MediaRejectedError], code: str
) -> None:
    with pytest.raises(error) as caught:
        sniff_bytes(head + bytes(64))
    assert caught.value.code == code


@pytest.mark.parametrize(
    "playlist",
    [
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10.0,\nhttp://example.invalid/seg0.ts\n",
        b"\xef\xbb\xbf  \r\n#EXTM3U\nfile:///etc/passwd\n",
        b"#EXTINF:10,\nseg.ts\n",
        b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>',
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
    ],
    ids=["hls", "hls_after_bom_and_blank_lines", "m3u_without_header", "dash_mpd", "ffconcat"],
)
def test_playlists_and_scripts_never_pass(playlist: bytes) -> None:
    with pytest.raises(PlaylistError) as caught:
        sniff_bytes(playlist)
    assert caught.value.code == "media.playlist"


def test_playlist_with_a_real_ftyp_later_is_still_a_playlist(h264_mp4: Path) -> None:
    polyglot = b"#EXTM3U\n" + h264_mp4.read_bytes()
    with pytest.raises(PlaylistError):
        sniff_bytes(polyglot)


def test_ftyp_first_is_an_mp4_whatever_follows() -> None:
    # What comes after a valid header cannot switch the demuxer: it is forced to mov.
    result = sniff_bytes(_ftyp(b"isom") + b"#EXTM3U\nhttp://example.invalid/a.ts\n")
    assert result.container is ContainerFormat.MP4


def test_junk_before_a_real_header_is_rejected(h264_mp4: Path) -> None:
    with pytest.raises(UnsupportedContainerError):
        sniff_bytes(b"\x00" * 7 + h264_mp4.read_bytes())


@pytest.mark.parametrize(
    "image",
    [
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"GIF89a\x01\x00\x01\x00",
        b"RIFF\x24\x00\x00\x00WEBPVP8 ",
        b"II*\x00\x08\x00\x00\x00",
    ],
    ids=["jpeg", "png", "gif", "webp", "tiff"],
)
def test_images_are_rejected_as_images(image: bytes) -> None:
    with pytest.raises(ImageFileError) as caught:
        sniff_bytes(image + bytes(100))
    assert caught.value.code == "media.image"


@pytest.mark.parametrize(
    "text",
    [b"hello, this is not a video\n" * 10, "caf\u00e9 \u2014 r\u00e9sum\u00e9\n".encode() * 50],
    ids=["ascii", "utf8"],
)
def test_text_is_rejected_as_text(text: bytes) -> None:
    with pytest.raises(TextFileError) as caught:
        sniff_bytes(text)
    assert caught.value.code == "media.text"


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"RIFF\x24\x00\x00\x00AVI LIST", "RIFF"),
        (b"FLV\x01\x05\x00\x00\x00\x09", "FLV"),
        (b"OggS\x00\x02", "Ogg"),
        ((b"\x47" + bytes(187)) * 3, "transport"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x10mdat", "ftyp"),
    ],
    ids=["avi", "flv", "ogg", "mpeg_ts", "quicktime_without_ftyp"],
)
def test_other_video_containers_are_named(head: bytes, named: str) -> None:
    with pytest.raises(UnsupportedContainerError) as caught:
        sniff_bytes(head)
    assert type(caught.value) is UnsupportedContainerError
    assert named in caught.value.message


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(EmptyFileError) as caught:
        sniff_file(empty)
    assert caught.value.code == "media.empty"


def test_file_cut_inside_its_ftyp_is_truncated(h264_mp4: Path) -> None:
    head = h264_mp4.read_bytes()[:20]
    with pytest.raises(TruncatedMediaError):
        sniff_bytes(head, total_size=len(head))


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x09ftypisom",  # size not a multiple of 4
        b"\x00\x00\x00\x01ftypisom" + bytes(16),  # 64-bit size on an ftyp
        (SNIFF_BYTES + 4).to_bytes(4, "big") + b"ftypisom" + bytes(SNIFF_BYTES),
        b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff",  # unknown-size EBML header
        b"\x1a\x45\xdf\xa3\x84\x42\x86\x81\x01",  # no DocType
    ],
)
def test_malformed_headers_are_rejected(head: bytes) -> None:
    with pytest.raises(UnsupportedContainerError):
        sniff_bytes(head)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_either_allowed_or_rejected_with_a_code(data: bytes) -> None:
    outcome: object
    try:
        outcome = sniff_bytes(data)
    except MediaRejectedError as error:
        outcome = error
    if isinstance(outcome, MediaRejectedError):
        assert outcome.code.startswith("media.")
    else:
        assert isinstance(outcome, SniffResult)
