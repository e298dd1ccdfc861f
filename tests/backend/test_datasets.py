"""Datasets: filters over accepted clips, frozen versions packed from the blob store.

Real clips through the real ingest and consensus (``tests.backend.datasets_world``), the
real packer, the real ``webdataset`` package reading the shards.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import webdataset as wds
from eth_account import Account
from sqlmodel import Session, col, select

from backend import admin
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.errors import DatasetEmptyMatchError, DatasetVersionExistsError, NotAnOperatorError
from backend.models.datasets import (
    Dataset,
    DatasetCreate,
    DatasetVersion,
    DatasetVersionSample,
    DatasetVersionStatus,
)
from backend.services import datasets
from backend.services.dataset_filter import DatasetFilter, matching_clips
from backend.services.packing import pack_version
from ingest.blobstore import LocalBlobStore
from shotbank.datasets.format import read_index, read_manifest_jsonl, version_hash
from tests.backend.conftest import SettingsFactory
from tests.backend.datasets_world import NOW, DatasetWorld, annotation, verdict
from tests.ingest.mediagen import ClipSpec, make_clip

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
CAROL = "0x" + "c3" * 20
OPERATOR = ALICE


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    """``clip_bytes(n, **ClipSpec fields)``: a small real MP4, distinct per ``n``
    (its tone), encoded once per module."""
    folder = tmp_path_factory.mktemp("dataset-media")
    made: dict[tuple[Any, ...], bytes] = {}

    def make(number: int, **fields: Any) -> bytes:
        key = (number, *sorted(fields.items()))
        if key not in made:
            spec = ClipSpec(
                width=fields.pop("width", 160),
                height=fields.pop("height", 120),
                seconds=fields.pop("seconds", 2.0),
                tone_hz=200.0 + 50 * number,
                **fields,
            )
            made[key] = make_clip(folder / f"clip-{len(made)}.mp4", spec).read_bytes()
        return made[key]

    return make


@pytest.fixture
def world_for(make_settings: SettingsFactory) -> Iterator[Callable[..., DatasetWorld]]:
    engines = []

    def factory(**overrides: Any) -> DatasetWorld:
        values: dict[str, Any] = {
            "ingest_workers": 0,
            "ingest_min_short_side": 120,
            "operators": [OPERATOR],
        }
        values.update(overrides)
        settings = make_settings(**values)
        engine = create_db_engine(settings)
        engines.append(engine)
        upgrade_to_head(engine)
        return DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))

    yield factory
    for engine in engines:
        engine.dispose()


@pytest.fixture
def world(world_for: Callable[..., DatasetWorld]) -> DatasetWorld:
    return world_for()


def webdataset_samples(urls: list[str]) -> list[dict[str, Any]]:
    """Every sample of the shards as the real ``webdataset`` package yields it."""
    # webdataset 1.0.2 leaves shard files open (upstream webdataset#311); its
    # ResourceWarning is silenced here only and collection is forced inside the block.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed file", ResourceWarning)
        dataset = wds.WebDataset(urls, shardshuffle=False)
        got = list(dataset)
        del dataset
        gc.collect()
    return got


def define(world: DatasetWorld, slug: str, **flt: Any) -> str:
    with Session(world.engine) as db:
        made = datasets.create_dataset(
            db,
            request=DatasetCreate(slug=slug, title=slug.title(), filter=flt),
            created_by=OPERATOR,
            now=NOW,
        )
    return made.id


def freeze(world: DatasetWorld, dataset_id: str, **kwargs: Any) -> int:
    version = datasets.freeze_version(
        world.engine,
        settings=world.settings,
        dataset_id=dataset_id,
        created_by=OPERATOR,
        now=NOW,
        **kwargs,
    )
    assert version.status == DatasetVersionStatus.PACKING
    return version.number


def stored_version(world: DatasetWorld, dataset_id: str, number: int) -> DatasetVersion:
    with Session(world.engine) as db:
        version = db.exec(
            select(DatasetVersion).where(
                col(DatasetVersion.dataset_id) == dataset_id, col(DatasetVersion.number) == number
            )
        ).one()
        db.expunge(version)
        return version


def members(world: DatasetWorld, version_id: str) -> dict[str, str]:
    with Session(world.engine) as db:
        rows = db.exec(
            select(DatasetVersionSample).where(col(DatasetVersionSample.version_id) == version_id)
        ).all()
        return {row.clip_id: row.contributor for row in rows}


def pack_all(world: DatasetWorld) -> None:
    while datasets.pack_next(world.engine, settings=world.settings, blobs=world.blobs):
        pass


# --- the filter -----------------------------------------------------------------------------


def _filter_world(
    world: DatasetWorld, clip_bytes: Callable[..., bytes], owners: tuple[str, str, str]
) -> dict[str, str]:
    """Six accepted clips, each differing from ``plain`` in one thing, and one rejected."""
    alice, bob, carol = owners
    made = {
        "plain": world.accepted(clip_bytes(0), owner=alice),
        "pan": world.accepted(
            clip_bytes(1),
            owner=alice,
            doc=annotation(camera={"movement": "pan", "direction": "left"}),
        ),
        "low_key_dialogue": world.accepted(
            clip_bytes(2),
            owner=bob,
            doc=annotation(
                lighting={"setup": "low_key"},
                audio={"genre": "speech", "dialogue": True},
                scene={"tags": ["night", "city"]},
            ),
        ),
        "weak_camera": world.accepted(
            clip_bytes(3), owner=bob, scores=verdict(0.7, {"camera": 0.55})
        ),
        "long_wide": world.accepted(clip_bytes(4, seconds=3.0, width=320, height=240), owner=carol),
        "cc_by": world.accepted(
            clip_bytes(5),
            owner=carol,
            doc=annotation(rights={"licence": "cc-by-4.0", "attribution": "Carol"}),
        ),
    }
    world.accepted(clip_bytes(6), owner=alice, scores=verdict(0.2))  # rejected: never matches
    return made


def _filter_cases(owners: tuple[str, str, str]) -> list[tuple[dict[str, Any], set[str]]]:
    """Each filter field against :func:`_filter_world`'s clips: the names it selects."""
    alice, bob, _ = owners
    good = {"plain", "pan", "low_key_dialogue", "long_wide", "cc_by"}
    short = {"plain", "pan", "low_key_dialogue", "weak_camera", "cc_by"}
    return [
        ({"camera_movements": ["pan", "dolly"]}, {"pan"}),
        ({"lighting_setups": ["low_key"]}, {"low_key_dialogue"}),
        ({"audio_genres": ["speech"]}, {"low_key_dialogue"}),
        ({"has_dialogue": True}, {"low_key_dialogue"}),
        ({"tags": ["city", "NIGHT"]}, {"low_key_dialogue"}),
        ({"tags": ["city", "beach"]}, set()),
        ({"min_quality": 0.8}, good),
        ({"min_component_scores": {"camera": 0.6}}, good),
        ({"min_duration_s": 2.5}, {"long_wide"}),
        ({"max_duration_s": 2.5}, short),
        ({"min_short_side": 200}, {"long_wide"}),
        ({"licences": ["cc-by-4.0"]}, {"cc_by"}),
        ({"contributors": [bob.lower()]}, {"low_key_dialogue", "weak_camera"}),
        ({"exclude_contributors": [alice, bob]}, {"long_wide", "cc_by"}),
        ({"has_dialogue": False, "contributors": [bob]}, {"weak_camera"}),
    ]


def _check_filters(
    world: DatasetWorld, made: dict[str, str], owners: tuple[str, str, str], *, scoped: bool
) -> None:
    names = {clip_id: name for name, clip_id in made.items()}
    for fields, expected in _filter_cases(owners):
        flt = DatasetFilter.model_validate(fields)
        if scoped and flt.contributors is None:
            # A shared database holds other tests' clips: look at this test's only.
            flt = flt.model_copy(update={"contributors": list(owners)})
        with Session(world.engine) as db:
            found = [clip.id for clip in matching_clips(db, flt)]
        assert found == sorted(found), "matches come in clip-id order"
        assert {names.get(clip_id, clip_id) for clip_id in found} == expected, fields
    everything = DatasetFilter(contributors=list(owners)) if scoped else DatasetFilter()
    with Session(world.engine) as db:
        assert {names[clip.id] for clip in matching_clips(db, everything)} == set(made)
        assert len(list(matching_clips(db, everything, limit=2))) == 2


def test_each_filter_field_selects_exactly_its_accepted_clips(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    owners = (ALICE, BOB, CAROL)
    made = _filter_world(world, clip_bytes, owners)
    _check_filters(world, made, owners, scoped=False)


@pytest.mark.postgres
def test_each_filter_field_selects_exactly_its_accepted_clips_on_postgresql(
    world_for: Callable[..., DatasetWorld], clip_bytes: Callable[..., bytes], postgres_url: str
) -> None:
    world = world_for(database_url=postgres_url)
    owners = (Account.create().address, Account.create().address, Account.create().address)
    # Other tests may have stored these very bytes on the shared database: fresh tones.
    made = _filter_world(world, lambda n, **f: clip_bytes(n + 40, **f), owners)
    _check_filters(world, made, owners, scoped=True)


def test_a_filter_refuses_unknown_fields_and_unknown_vocabulary() -> None:
    with pytest.raises(ValueError, match="extra"):
        DatasetFilter.model_validate({"camera_movement": ["pan"]})
    with pytest.raises(ValueError, match="camera_movements"):
        DatasetFilter.model_validate({"camera_movements": ["barrel_roll"]})
    with pytest.raises(ValueError, match="min_duration_s must not exceed"):
        DatasetFilter.model_validate({"min_duration_s": 5, "max_duration_s": 3})


# --- freezing and packing -----------------------------------------------------------------------


def test_a_frozen_version_packs_into_shards_webdataset_reads_whose_manifest_hash_names_it(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    owners = {
        world.accepted(clip_bytes(n), owner=[ALICE, BOB][n % 2]): [ALICE, BOB][n % 2]
        for n in range(3)
    }
    ids = sorted(owners)
    world.accepted(
        clip_bytes(7), owner=CAROL, doc=annotation(camera={"movement": "pan", "direction": "left"})
    )
    dataset_id = define(world, "static-shots", camera_movements=["static"])
    number = freeze(world, dataset_id, shard_bytes=16 * 1024)
    assert number == 1
    version = stored_version(world, dataset_id, number)
    assert members(world, version.id) == owners

    pack_all(world)
    version = stored_version(world, dataset_id, number)
    assert version.status == DatasetVersionStatus.READY, version.error
    assert version.version_hash is not None
    folder = world.settings.var_dir / str(version.storage_path)
    assert folder == world.settings.datasets_path / version.version_hash
    index = read_index(folder / "index.json")
    rows = read_manifest_jsonl(folder / "manifest.jsonl")
    assert version_hash(rows) == version.version_hash == index.version_hash
    assert (
        hashlib.sha256((folder / "manifest.jsonl").read_bytes()).hexdigest() == version.version_hash
    )
    assert [row.key for row in rows] == ids
    assert (version.samples, version.shard_count) == (3, len(index.shards))
    assert len(index.shards) >= 2, "a 16 KiB target splits these clips over several shards"
    assert version.total_bytes == sum(shard.size for shard in index.shards)

    got = webdataset_samples([str(folder / shard.name) for shard in index.shards])
    assert [sample["__key__"] for sample in got] == ids
    for sample, row in zip(got, rows, strict=True):
        assert sample["mp4"] == world.blob_path(row.key).read_bytes()
        decoded = json.loads(sample["json"])
        assert decoded["contributor"] == row.contributor
        assert decoded["licence"] == {
            "licence": "cc0-1.0",
            "model_release": "not_required",
            "location_release": "not_required",
        }
        assert decoded["scores"]["quality"] == pytest.approx(0.9)
        assert decoded["media"]["width"] == 160
        assert decoded["accepted_at"] == "2030-01-01T12:00:00.000000Z"
    assert not list((world.settings.datasets_path / "packing").iterdir()), "no build left"

    summary = datasets.version_view(Session(world.engine), dataset_id=dataset_id, number=1)
    assert (summary.contributors, summary.samples, summary.shards) == (2, 3, len(index.shards))


def test_a_clip_accepted_after_the_freeze_is_not_in_it_and_the_next_freeze_is_version_2(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    first = world.accepted(clip_bytes(0), owner=ALICE)
    dataset_id = define(world, "everything")
    assert freeze(world, dataset_id) == 1
    later = world.accepted(clip_bytes(1), owner=BOB)
    pack_all(world)
    one = stored_version(world, dataset_id, 1)
    assert set(members(world, one.id)) == {first}
    assert one.status == DatasetVersionStatus.READY
    rows = read_manifest_jsonl(world.settings.var_dir / str(one.storage_path) / "manifest.jsonl")
    assert [row.key for row in rows] == [first]

    assert freeze(world, dataset_id) == 2
    pack_all(world)
    two = stored_version(world, dataset_id, 2)
    assert set(members(world, two.id)) == {first, later}
    assert two.status == DatasetVersionStatus.READY
    assert two.version_hash != one.version_hash
    assert stored_version(world, dataset_id, 1).version_hash == one.version_hash


def test_freezing_an_unchanged_match_again_is_refused_as_identical_to_the_earlier_version(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    world.accepted(clip_bytes(0), owner=ALICE)
    dataset_id = define(world, "same")
    freeze(world, dataset_id)
    pack_all(world)
    with pytest.raises(DatasetVersionExistsError, match="Nothing changed since version 1"):
        freeze(world, dataset_id)
    with Session(world.engine) as db:
        assert len(db.exec(select(DatasetVersion)).all()) == 1


def test_an_empty_match_makes_no_version(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    world.accepted(clip_bytes(0), owner=ALICE)
    dataset_id = define(world, "drone-shots", camera_movements=["drone"])
    with pytest.raises(DatasetEmptyMatchError, match="nothing to freeze"):
        freeze(world, dataset_id)
    with Session(world.engine) as db:
        assert db.exec(select(DatasetVersion)).all() == []


def test_a_damaged_blob_fails_the_version_with_its_reason_and_writes_nothing(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    good = world.accepted(clip_bytes(0), owner=ALICE)
    bad = world.accepted(clip_bytes(1), owner=BOB)
    dataset_id = define(world, "damaged")
    freeze(world, dataset_id)
    path = world.blob_path(bad)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    pack_all(world)
    version = stored_version(world, dataset_id, 1)
    assert version.status == DatasetVersionStatus.FAILED
    assert version.error is not None
    assert bad in version.error
    assert "SHA-256" in version.error
    assert good not in version.error
    assert version.version_hash is None
    assert version.storage_path is None
    assert [p.name for p in world.settings.datasets_path.rglob("*") if p.is_file()] == []


_PACKER = """
from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.services.datasets import pack_next
from ingest.blobstore import LocalBlobStore

settings = Settings()
pack_next(create_db_engine(settings), settings=settings, blobs=LocalBlobStore(settings.blob_path))
"""


def test_a_pack_killed_mid_way_is_resumed_and_its_leftovers_removed(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    first, second = sorted(world.accepted(clip_bytes(n), owner=ALICE) for n in range(2))
    dataset_id = define(world, "resumed")
    freeze(world, dataset_id)
    # The second clip's blob becomes a FIFO: a packer process opening it blocks there,
    # with the first sample already written into its staging directory, and is killed.
    blob = world.blob_path(second)
    data = blob.read_bytes()
    blob.chmod(0o644)
    blob.unlink()
    os.mkfifo(blob)
    env = {"PATH": os.environ["PATH"], "SHOTBANK_VAR_DIR": str(world.settings.var_dir)}
    packer = subprocess.Popen([sys.executable, "-c", _PACKER], env=env, cwd=Path.cwd())
    packing = world.settings.datasets_path / "packing"
    try:
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size > 0 for p in packing.glob(".*.partial-*/shard-*.tar")):
            assert packer.poll() is None, "the packer ended before it reached the second clip"
            assert time.monotonic() < deadline, "the packer never started writing"
            time.sleep(0.02)
    finally:
        packer.kill()
        packer.wait(timeout=10)
    leftovers = list(packing.glob(".*.partial-*"))
    assert len(leftovers) == 1
    assert stored_version(world, dataset_id, 1).status == DatasetVersionStatus.PACKING

    blob.unlink()
    blob.write_bytes(data)
    assert datasets.pack_next(world.engine, settings=world.settings, blobs=world.blobs)
    resumed = stored_version(world, dataset_id, 1)
    assert resumed.status == DatasetVersionStatus.READY, resumed.error
    assert not leftovers[0].exists()
    rows = read_manifest_jsonl(
        world.settings.var_dir / str(resumed.storage_path) / "manifest.jsonl"
    )
    assert [row.key for row in rows] == [first, second]
    assert not datasets.pack_next(world.engine, settings=world.settings, blobs=world.blobs)


def test_a_pack_killed_after_its_rename_is_adopted_on_restart(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    world.accepted(clip_bytes(0), owner=ALICE)
    dataset_id = define(world, "adopted")
    freeze(world, dataset_id)
    pack_all(world)
    done = stored_version(world, dataset_id, 1)
    assert done.version_hash is not None
    # As if the process died between the rename and the row's update.
    with Session(world.engine) as db:
        row = db.get(DatasetVersion, done.id)
        assert row is not None
        row.status, row.version_hash, row.storage_path = DatasetVersionStatus.PACKING, None, None
        db.add(row)
        db.commit()
    final = world.settings.datasets_path / done.version_hash
    before = (final / "index.json").read_bytes()
    pack_all(world)
    again = stored_version(world, dataset_id, 1)
    assert (again.status, again.version_hash) == (DatasetVersionStatus.READY, done.version_hash)
    assert (final / "index.json").read_bytes() == before


def test_the_pack_reads_the_same_bytes_as_packing_the_rows_directly(
    world: DatasetWorld, clip_bytes: Callable[..., bytes], tmp_path: Path
) -> None:
    world.accepted(clip_bytes(0), owner=ALICE)
    dataset_id = define(world, "direct")
    freeze(world, dataset_id)
    pack_all(world)
    version = stored_version(world, dataset_id, 1)
    folder = world.settings.var_dir / str(version.storage_path)
    rows = read_manifest_jsonl(folder / "manifest.jsonl")
    index = pack_version(
        [(row, partial(world.blobs.open, row.cid)) for row in rows],
        tmp_path / "again",
        shard_bytes=version.shard_bytes,
    )
    assert index.version_hash == version.version_hash, "packing is deterministic"


def test_only_operators_may_define_datasets(world: DatasetWorld) -> None:
    datasets.require_operator(world.settings, OPERATOR.upper().replace("0X", "0x"))
    with pytest.raises(NotAnOperatorError, match="SHOTBANK_OPERATORS"):
        datasets.require_operator(world.settings, BOB)


def test_the_admin_command_creates_freezes_and_lists_datasets(
    world: DatasetWorld, clip_bytes: Callable[..., bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    world.accepted(clip_bytes(0), owner=ALICE)
    settings = world.settings
    assert (
        admin.main(
            ["datasets", "create", "cli-set", "CLI set", "--filter", '{"min_quality": 0.5}'],
            settings,
        )
        == 0
    )
    dataset_id = capsys.readouterr().out.split("\t")[0]
    assert admin.main(["datasets", "freeze", dataset_id], settings) == 0
    assert "version 1 packing: 1 samples of 1 contributors" in capsys.readouterr().out
    assert (
        admin.main(["datasets", "create", "bad", "Bad", "--filter", '{"nope": 1}'], settings) == 1
    )
    assert "filter is invalid" in capsys.readouterr().err
    assert admin.main(["datasets", "list"], settings) == 0
    listing = capsys.readouterr().out
    assert "cli-set" in listing
    assert "v1\tpacking\t1" in listing


def test_the_admin_command_prices_datasets_and_versions(
    world: DatasetWorld, clip_bytes: Callable[..., bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    world.accepted(clip_bytes(0), owner=ALICE)
    settings = world.settings
    assert admin.main(["datasets", "create", "priced", "Priced", "--price", "5"], settings) == 0
    dataset_id = capsys.readouterr().out.split("\t")[0]
    assert admin.main(["datasets", "freeze", dataset_id, "--price", "9"], settings) == 0
    with Session(world.engine) as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        assert dataset.price == 5
        version = db.exec(select(DatasetVersion)).one()
        assert version.price == 9
    assert admin.main(["datasets", "create", "free", "Free", "--price", "0"], settings) == 1
    assert "price" in capsys.readouterr().err


def test_a_lost_blob_fails_the_version_naming_the_missing_content(
    world: DatasetWorld, clip_bytes: Callable[..., bytes]
) -> None:
    lost = world.accepted(clip_bytes(0), owner=ALICE)
    dataset_id = define(world, "lost")
    freeze(world, dataset_id)
    path = world.blob_path(lost)
    path.chmod(0o644)
    path.unlink()
    pack_all(world)
    version = stored_version(world, dataset_id, 1)
    assert version.status == DatasetVersionStatus.FAILED
    assert version.error is not None
    assert "No blob" in version.error
