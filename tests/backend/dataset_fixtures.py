"""Fixtures of the dataset-access tests (backend routes, SDK downloads, CLI, market): a
live server on a tmp var dir with a fake deployment, and a version of real clips frozen
and packed by the real routes and packer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session

from backend.core.db import create_db_engine
from backend.models.licences import DatasetLicence
from ingest.blobstore import LocalBlobStore
from tests.backend.conftest import SettingsFactory
from tests.backend.datasets_world import DatasetWorld
from tests.backend.live import Caller, LiveServer, ServerFactory
from tests.ingest.mediagen import ClipSpec, make_clip

__all__ = ["CONTRIBUTOR", "MARKET", "Packed", "clips", "operator", "packed", "server"]

CONTRIBUTOR = "0x" + "a1" * 20
MARKET = "0x" + "5e" * 20


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Three small real MP4s with distinct bytes."""
    folder = tmp_path_factory.mktemp("dataset-download-media")
    return [
        make_clip(
            folder / f"{n}.mp4",
            ClipSpec(width=160, height=120, seconds=2.0, tone_hz=1200.0 + 100 * n),
        ).read_bytes()
        for n in range(3)
    ]


@pytest.fixture
def operator() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
def server(
    live: ServerFactory, upload_settings: SettingsFactory, operator: LocalAccount
) -> LiveServer:
    return live(
        upload_settings(
            operators=[operator.address],
            ingest_workers=0,
            ingest_min_short_side=120,
            dataset_poll_s=0.05,
            chain_confirmations=3,
        )
    )


@dataclass
class Packed:
    """A ready version: where its API lives and its files on disk."""

    base: str
    version_hash: str
    index: dict[str, Any]
    folder: Path
    world: DatasetWorld

    @property
    def version_id(self) -> str:
        return "0x" + self.version_hash

    def shard(self, number: int = 0) -> tuple[str, bytes, str]:
        """Name, bytes and SHA-256 of a shard."""
        entry = self.index["shards"][number]
        return entry["name"], (self.folder / entry["name"]).read_bytes(), entry["sha256"]

    def license(self, buyer: str, *, block: int = 7) -> None:
        """A licence row as the market indexer writes it for a purchase by ``buyer``."""
        with Session(self.world.engine) as db:
            db.add(
                DatasetLicence(
                    tx_hash="0x" + secrets.token_hex(32),
                    log_index=1,
                    version_id=self.version_id,
                    buyer=buyer,
                    price=10**18,
                    contributor_share=7 * 10**17,
                    validator_share=2 * 10**17,
                    treasury_share=10**17,
                    block_number=block,
                    block_hash="0x" + secrets.token_hex(32),
                )
            )
            db.commit()


@pytest.fixture
def packed(
    server: LiveServer,
    caller_for: Callable[..., Caller],
    operator: LocalAccount,
    clips: list[bytes],
) -> Iterator[Packed]:
    """A version of three clips in 32 KiB shard targets (several shards), ready."""
    settings = server.settings
    engine = create_db_engine(settings)
    world = DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))
    for data in clips:
        world.accepted(data, owner=CONTRIBUTOR)
    http = caller_for(server, operator).http
    dataset_id = http.post(
        "/api/v1/datasets", json={"slug": "all", "title": "all", "filter": {}}
    ).json()["id"]
    frozen = http.post(f"/api/v1/datasets/{dataset_id}/versions", json={"shard_bytes": 32 * 1024})
    assert frozen.status_code == 202, frozen.text
    base = f"/api/v1/datasets/{dataset_id}/versions/1"
    deadline = time.monotonic() + 20
    while (summary := http.get(base).json())["status"] == "packing":
        assert time.monotonic() < deadline, "the packer did not finish the version"
        time.sleep(0.05)
    assert summary["status"] == "ready", summary
    index = http.get(f"{base}/index.json").json()
    assert len(index["shards"]) >= 2
    yield Packed(
        base=base,
        version_hash=summary["version_hash"],
        index=index,
        folder=settings.datasets_path / summary["version_hash"],
        world=world,
    )
    engine.dispose()
