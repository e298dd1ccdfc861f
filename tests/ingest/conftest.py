"""Fixtures for the ingest tests: the Helia CID oracle, real media made with PyAV, and a
js-ipfs daemon standing in for Kubo."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
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


JSIPFS_CLI = Path("tools/ipfs/node_modules/ipfs/src/cli.js")


@pytest.fixture(scope="session")
def ipfs_api(
    node_binary: Path, project_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """RPC multiaddr of a js-ipfs 0.66.1 daemon (Kubo's /api/v0), offline, stopped after.

    No Kubo binary can be installed here; js-ipfs answers the same RPC calls. It runs
    with ``--offline``, an empty bootstrap list, no swarm addresses, MDNS off and routing
    ``none``, on 127.0.0.1 with kernel-chosen ports, in a throw-away repo.
    """
    cli = project_root / JSIPFS_CLI
    if not cli.is_file():
        pytest.fail(
            "js-ipfs missing: run `npm ci --prefix tools/ipfs` (see scripts/setup.sh)",
            pytrace=False,
        )
    repo = tmp_path_factory.mktemp("ipfs-repo")
    env = {**os.environ, "IPFS_PATH": str(repo)}

    def jsipfs(*args: str) -> None:
        subprocess.run(
            [str(node_binary), str(cli), *args],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    jsipfs("init", "--profile", "test")
    config_path = repo / "config"
    config = json.loads(config_path.read_text())
    config["Addresses"].update(Swarm=[], RPC="/ip4/127.0.0.1/tcp/0")
    config["Bootstrap"] = []
    config["Discovery"]["MDNS"]["Enabled"] = False
    config["Routing"] = {"Type": "none"}
    config["Pubsub"]["Enabled"] = False
    config_path.write_text(json.dumps(config))
    log = (repo / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(node_binary), str(cli), "daemon", "--offline"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while b"Daemon is ready" not in (repo / "daemon.log").read_bytes():
            if daemon.poll() is not None or time.monotonic() > deadline:
                output = (repo / "daemon.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"js-ipfs daemon did not start:\n{output}", pytrace=False)
            time.sleep(0.1)
        yield (repo / "api").read_text().strip()
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
