"""Fixtures for the scoring tests: real queued clips, real stakes, real signed reports.

* Clips go the contributor's way through the services: a tus upload
  (``uploads.create_upload`` + ``uploads.append``), ``clips.submit_clip``, then the
  ingest pipeline (``ingest.claim_next`` + ``process_clip``, the real probe) to
  ``queued``. Each clip is the same short encoded MP4 made unique by a trailing MP4
  ``free`` box.
* Stakes come from a real anvil chain: the contracts are deployed with ``deploy_all``,
  validators buy in with ``ShotToken.approve`` + ``ValidatorRegistry.stake``, and the
  backend's own chain sync (``backend.services.chainsync.ChainSync``) indexes the
  snapshot into the test's database.
* Reports are ``scoring.report.ClipScores`` signed with ``scoring.signing`` and the
  SDK's EIP-712 signer, as a validator node signs them.

Each test gets its own database: a SQLite file, or a fresh PostgreSQL database (the
leasing tests count every queued clip in the database, so they must not share it).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import URL, Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.models.clips import Clip, ClipStatus
from backend.models.scoring import LeaseView
from backend.services import clips, ingest, stakes, uploads
from backend.services.chainsync import ChainSync
from backend.services.uploads import DigestCache
from ingest.blobstore import LocalBlobStore
from scoring.report import (
    ClipScores,
    Component,
    ComponentScore,
    Flag,
    FlagResult,
    ModelIdentity,
    Outcome,
    Reason,
)
from scoring.signing import score_report_message
from shotbank.chain.contracts import ShotToken, ValidatorRegistry, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import DEV_CHAIN_ID, AnvilNode, dev_accounts
from shotbank.chain.eip712 import sign_score_report
from shotbank.chain.rpc import RetryPolicy, connect
from tests import pgcluster
from tests.backend.conftest import SettingsFactory
from tests.ingest.mediagen import ClipSpec, make_clip

SHOT = 10**18
#: The registry's minimum stake in these tests.
MIN_STAKE = 1_000 * SHOT
#: Stakes of the staked validators (dev accounts 1..5), all different so weights matter.
STAKES = (1_000 * SHOT, 2_000 * SHOT, 3_000 * SHOT, 1_500 * SHOT, 1_200 * SHOT)

#: A valid annotation for the test clip (2.5 s, with sound).
ANNOTATION: dict[str, Any] = {
    "schema_version": "1",
    "scene": {"description": "A grey gradient slides across the frame.", "setting": "interior"},
    "camera": {"movement": "pan", "direction": "left"},
    "lighting": {"setup": "high_key"},
    "audio": {"genre": "ambience", "dialogue": False, "recording": "studio"},
    "rights": {
        "licence": "cc0-1.0",
        "model_release": "not_required",
        "location_release": "not_required",
    },
}

MODEL = ModelIdentity(
    model="shotbank-tiny",
    tag="synthetic-v1",
    weights_sha256=hashlib.sha256(b"shotbank-tiny weights").hexdigest(),
    preprocessing="1-0123456789ab",
)


# --- the chain ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StakedChain:
    """A dev chain with the contracts deployed and validators staked."""

    url: str
    deployments_file: Path
    deployment: Deployment
    validators: tuple[LocalAccount, ...]
    """Staked, with :data:`STAKES`."""
    unstaked: LocalAccount
    """Holds SHOT but never staked."""

    @property
    def registry(self) -> str:
        """The ValidatorRegistry: the reports' verifying contract."""
        return self.deployment.address(ValidatorRegistry.NAME)


@pytest.fixture(scope="session")
def staked_chain(
    anvil_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StakedChain]:
    """One anvil for the session: contracts deployed, five validators staked."""
    keys = dev_accounts(8)
    deployer, validators, unstaked = keys[0], keys[1:6], keys[6]
    with AnvilNode(anvil_binary) as node:
        w3 = connect(
            node.url,
            expected_chain_id=DEV_CHAIN_ID,
            policy=RetryPolicy(attempts=3, backoff_s=0.05, timeout_s=10),
        )
        deployment = deploy_all(
            w3,
            deployer,
            treasury=deployer.address,
            guardian=deployer.address,
            params=DeployParams(min_stake=MIN_STAKE),
        )
        token = ShotToken.from_deployment(w3, deployment)
        registry = ValidatorRegistry.from_deployment(w3, deployment)
        for account, amount in zip(validators, STAKES, strict=True):
            send_call(w3, deployer, token.transfer(account.address, amount))
            send_call(w3, account, token.approve(registry.address, amount))
            send_call(w3, account, registry.stake(amount))
        send_call(w3, deployer, token.transfer(unstaked.address, MIN_STAKE))
        path = tmp_path_factory.mktemp("chain") / "deployments.json"
        save_deployment(path, deployment)
        yield StakedChain(
            url=node.url,
            deployments_file=path,
            deployment=deployment,
            validators=tuple(validators),
            unstaked=unstaked,
        )


def sync_stakes(engine: Engine, settings: Settings) -> None:
    """Run the backend's chain sync until the stake snapshot has caught up."""
    sync = ChainSync(engine, settings)
    for _ in range(50):
        if not sync.step():
            break
    with Session(engine) as db:
        assert stakes.snapshot_block(db) is not None, "the stake snapshot was not built"


# --- databases -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite under the test's var dir) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    admin: URL = request.getfixturevalue("postgres_admin_url")
    with pgcluster.throwaway_database(admin, prefix="shotbank_scoring") as url:
        yield url


@pytest.fixture
def scoring_settings(
    upload_settings: SettingsFactory, database_url: str | None, staked_chain: StakedChain
) -> SettingsFactory:
    """Settings on the test's database and the staked chain, without ingest workers."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "ingest_workers": 0,
            "chain_rpc_url": staked_chain.url,
            "chain_confirmations": 0,
            "deployments_file": staked_chain.deployments_file,
            "consensus_quorum": 3,
            "ingest_min_short_side": 240,
            "db_pool_size": 12,
            "db_connect_timeout_s": 30,
        }
        if database_url is not None:
            values["database_url"] = database_url
        values.update(overrides)
        return upload_settings(**values)

    return factory


# --- real clips --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 2.5 s 320x240 H.264/AAC MP4, encoded once (small: probing it is quick)."""
    path = tmp_path_factory.mktemp("scoring-media") / "clip.mp4"
    return make_clip(path, ClipSpec(width=320, height=240, seconds=2.5)).read_bytes()


def unique_media(base: bytes) -> bytes:
    """``base`` with a random trailing MP4 ``free`` box: new bytes, same picture."""
    salt = secrets.token_bytes(16)
    return base + struct.pack(">I4s", 8 + len(salt), b"free") + salt


async def _one_body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class World:
    """The backend's database, blob store and settings, and a way to make clips."""

    settings: Settings
    engine: Engine
    base_clip: bytes
    chain: StakedChain
    blobs: LocalBlobStore = field(init=False)
    digests: DigestCache = field(default_factory=DigestCache)

    def __post_init__(self) -> None:
        self.blobs = LocalBlobStore(self.settings.blob_path, fsync=False)

    synced: bool = False

    def validators(self) -> tuple[LocalAccount, ...]:
        """The chain's staked validators (stakes :data:`STAKES`), once the stake snapshot
        of this database was synced from the chain (on the first call)."""
        if not self.synced:
            sync_stakes(self.engine, self.settings)
            self.synced = True
        return self.chain.validators

    @property
    def registry(self) -> str:
        """The reports' verifying contract."""
        return self.chain.registry

    def contribute(self, owner: str, annotation: dict[str, Any] | None = None) -> str:
        """A new clip of ``owner`` taken through upload, submission and ingest; its id
        (``queued``)."""
        data = unique_media(self.base_clip)
        with Session(self.engine) as db:
            upload_id = uploads.create_upload(
                db, settings=self.settings, owner=owner, length=len(data), metadata_header=None
            ).id
        anyio.run(self._append, owner, upload_id, data)
        with Session(self.engine) as db:
            clip_id = clips.submit_clip(
                db,
                owner=owner,
                upload_id=upload_id,
                annotation_document=annotation or ANNOTATION,
            ).clip.id
        claimed = ingest.claim_next(self.engine)
        assert claimed == clip_id
        status = ingest.process_clip(
            self.engine, settings=self.settings, blobs=self.blobs, clip_id=clip_id
        )
        assert status == ClipStatus.QUEUED
        return clip_id

    async def _append(self, owner: str, upload_id: str, data: bytes) -> None:
        await uploads.append(
            self.engine,
            settings=self.settings,
            digests=self.digests,
            owner=owner,
            upload_id=upload_id,
            offset=0,
            content_length=len(data),
            checksum=None,
            body=_one_body(data),
        )

    def clip(self, clip_id: str) -> Clip:
        """The clip's row as stored now."""
        with Session(self.engine) as db:
            clip = db.get(Clip, clip_id)
            assert clip is not None
            db.expunge(clip)
            return clip


@pytest.fixture
def world_for(
    scoring_settings: SettingsFactory, base_clip: bytes, staked_chain: StakedChain
) -> Iterator[Callable[..., World]]:
    """``world_for(**settings)``: a migrated database (the stake snapshot is synced when
    a test first asks for :meth:`World.validators`)."""
    engines: list[Engine] = []

    def factory(**overrides: Any) -> World:
        settings = scoring_settings(**overrides)
        engine = create_db_engine(settings)
        engines.append(engine)
        upgrade_to_head(engine)
        return World(settings=settings, engine=engine, base_clip=base_clip, chain=staked_chain)

    yield factory
    for engine in engines:
        engine.dispose()


@pytest.fixture
def world(world_for: Callable[..., World]) -> World:
    """The default world: quorum 3."""
    return world_for()


def contributor() -> str:
    """A fresh contributor address (never a validator)."""
    address: str = Account.create().address
    return address


# --- verdicts and signatures ------------------------------------------------------------------


def reason(code: str, message: str | None = None) -> Reason:
    """A reason with a readable message."""
    return Reason(code=code, message=message or code.replace(".", " ").replace("_", " "))


def verdict(
    quality: float = 0.8,
    *,
    threshold: float = 0.5,
    scene: float | None = 0.8,
    lighting: float | None = 0.8,
    camera: float | None = 0.8,
    audio: float | None = 0.8,
    flags: tuple[Flag, ...] = (),
    camera_reasons: tuple[Reason, ...] = (),
    embedding: bytes | None = None,
    model: ModelIdentity = MODEL,
) -> ClipScores:
    """A scored verdict with these numbers (``passed`` as the rule demands)."""
    values = {
        Component.SCENE: scene,
        Component.LIGHTING: lighting,
        Component.CAMERA: camera,
        Component.AUDIO: audio,
    }
    scores = {
        component: ComponentScore(
            value=value,
            reasons=camera_reasons if component is Component.CAMERA else (),
        )
        for component, value in values.items()
    }
    return ClipScores(
        scores=scores,
        flags=tuple(
            FlagResult(flag=flag, reason=reason(f"junk.{flag.value}", f"the clip is {flag}"))
            for flag in flags
        ),
        quality=quality,
        pass_threshold=threshold,
        passed=quality >= threshold and not flags,
        model=model,
        embedding=base64.b64encode(embedding).decode() if embedding is not None else None,
    )


def failed_verdict(code: str = "scoring.media.undecodable") -> ClipScores:
    """A failed verdict (the clip could not be decoded)."""
    return ClipScores(
        outcome=Outcome.FAILED,
        reasons=(reason(code, "The clip could not be decoded."),),
        pass_threshold=0.5,
        passed=False,
        model=MODEL,
    )


def sign(
    account: LocalAccount,
    lease: LeaseView,
    scores: ClipScores,
    *,
    registry: str,
    deadline: int | None = None,
    chain_id: int = DEV_CHAIN_ID,
) -> dict[str, Any]:
    """The body of ``POST /validator/reports`` for ``lease``, signed by ``account``."""
    deadline = lease.deadline if deadline is None else deadline
    message = score_report_message(
        lease_id=lease.lease_id,
        clip_id=lease.clip_id,
        content_cid=lease.content_cid,
        annotation_hash=lease.annotation_hash,
        scores=scores,
        deadline=deadline,
    )
    signature = sign_score_report(account, message, chain_id=chain_id, verifying_contract=registry)
    return {
        "lease_id": lease.lease_id,
        "scores": scores.model_dump(mode="json"),
        "deadline": deadline,
        "signature": "0x" + signature.hex(),
    }
