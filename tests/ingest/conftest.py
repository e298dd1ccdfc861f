"""Fixtures for the ingest tests: the Helia CID oracle and real media made with PyAV."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.mediagen import ClipSpec, make_clip

HELIA_SCRIPT = Path(__file__).with_name("helia_cid.mjs")


@pytest.fixture(scope="session")
def helia_cids(node_binary: Path, project_root: Path) -> Callable[..., list[str]]:
    """Run Helia's UnixFS importer (Kubo settings) on files; one CID per file, in order."""
    if not (project_root / "node_modules/@helia/unixfs").is_dir():
        pytest.fail("@helia/unixfs missing (node_modules): run scripts/setup.sh", pytrace=False)

    def run(*paths: Path) -> list[str]:
        done = subprocess.run(
            [str(node_binary), str(HELIA_SCRIPT), *map(str, paths)],
            cwd=project_root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        cids = done.stdout.split()
        assert len(cids) == len(paths), done.stdout
        return cids

    return run


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder for generated clips."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def make_media(media_dir: Path) -> Callable[..., Path]:
    """``make_media(name, **ClipSpec fields)``: encode a clip once per session, by name."""
    made: dict[str, Path] = {}

    def make(name: str, **fields: Any) -> Path:
        if name not in made:
            made[name] = make_clip(media_dir / name, ClipSpec(**fields))
        return made[name]

    return make


@pytest.fixture(scope="session")
def h264_mp4(make_media: Callable[..., Path]) -> Path:
    """3 s, 640x480, 24 fps H.264 with a -20 dBFS 1 kHz stereo AAC tone, moov at the end."""
    return make_media("h264_aac.mp4")


@pytest.fixture(scope="session")
def vp9_webm(make_media: Callable[..., Path]) -> Path:
    """3 s, 854x480 VP9 with a -20 dBFS 1 kHz stereo Opus tone."""
    return make_media(
        "vp9_opus.webm",
        format="webm",
        video_codec="libvpx-vp9",
        video_options={"deadline": "realtime", "cpu-used": "8"},
        width=854,
        audio_codec="libopus",
    )
