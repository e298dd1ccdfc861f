"""Registering fine-tuned models and reading their lineage (``docs/api/models.md``).

Over HTTP against a live server whose two dataset versions were made from real clips by
the real ingest, consensus and packer (``tests.backend.models_world``); the lineage SQL
and idempotency also on PostgreSQL, through the service; migration 0013 up and down on
both databases.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import inspect
from sqlalchemy.engine import URL, Engine
from sqlmodel import Session

from backend.core.db import create_db_engine
from backend.core.migrate import alembic_config, upgrade_to_head
from backend.errors import LicenceRequiredError, ModelExistsError
from backend.models.modelruns import ModelRunVersion
from backend.services import modelruns
from ingest.blobstore import LocalBlobStore
from shotbank.runs import MAX_HYPERPARAMETERS_JSON_BYTES, RunRecord
from tests import pgcluster
from tests.backend.conftest import SettingsFactory
from tests.backend.datasets_world import DatasetWorld
from tests.backend.models_world import (
    ALICE,
    BOB,
    CAROL,
    ModelsWorld,
    ReadyVersion,
    frozen_versions,
    models_world,
    run_record,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelsWorld]:
    with models_world(tmp_path_factory.mktemp("models-api")) as made:
        yield made


def _post(world: ModelsWorld, account: LocalAccount, record: RunRecord | dict[str, Any]) -> Any:
    body = record.model_dump_json() if isinstance(record, RunRecord) else json.dumps(record)
    with world.http(account) as http:
        return http.post(
            "/api/v1/models", content=body, headers={"Content-Type": "application/json"}
        )


def _error(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- registering --------------------------------------------------------------------------


def test_registering_answers_201_then_200_for_the_same_record(world: ModelsWorld) -> None:
    trainer = world.trainer()
    record = run_record(world.first)
    created = _post(world, trainer, record)
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["hash"] == record.output.sha256
    assert view["registrant"] == trainer.address
    assert view["base_model"] == record.base_model.model_dump(mode="json")
    assert view["hyperparameters"] == record.hyperparameters
    assert view["metrics"]["base"]["step"] == 0
    assert view["metrics"]["final"]["step"] == 2
    assert view["output"] == record.output.model_dump(mode="json")
    assert view["dataset_versions"] == [
        {
            "dataset_id": world.first.dataset_id,
            "number": 1,
            "version_hash": world.first.version_hash,
        }
    ]
    # The same record again, keys reordered: the same model, 200, the same body.
    reordered = dict(reversed(list(record.model_dump(mode="json").items())))
    again = _post(world, trainer, reordered)
    assert again.status_code == 200, again.text
    assert again.json() == view
    with world.http() as http:
        read = http.get(f"/api/v1/models/{record.output.sha256}")
    assert read.status_code == 200
    assert read.json() == view


def test_the_hash_with_another_record_or_by_another_address_is_409(world: ModelsWorld) -> None:
    trainer = world.trainer()
    record = run_record(world.first)
    assert _post(world, trainer, record).status_code == 201
    changed = record.model_copy(update={"device": "cuda:0"})
    other_record = _post(world, trainer, changed)
    assert other_record.status_code == 409
    assert _error(other_record) == "model_exists"
    other_address = _post(world, world.trainer(), record)
    assert other_address.status_code == 409
    assert _error(other_address) == "model_exists"
    assert "another address" in other_address.json()["error"]["message"]


def test_a_registrant_without_a_licence_gets_402_and_operators_need_none(
    world: ModelsWorld,
) -> None:
    stranger: LocalAccount = Account.create()
    refused = _post(world, stranger, run_record(world.first))
    assert refused.status_code == 402
    assert _error(refused) == "licence_required"
    message = refused.json()["error"]["message"]
    assert "purchase(0x" + world.first.version_hash in message
    # A licence for another version is not one for this version.
    world.license(stranger.address, world.second)
    assert _post(world, stranger, run_record(world.first)).status_code == 402
    assert _post(world, stranger, run_record(world.second)).status_code == 201
    assert _post(world, world.operator, run_record(world.first)).status_code == 201


def test_registering_needs_a_session(world: ModelsWorld) -> None:
    with world.http() as http:
        response = http.post("/api/v1/models", json=run_record(world.first).model_dump(mode="json"))
    assert response.status_code == 401


def test_a_run_on_a_version_this_backend_does_not_have_is_404(world: ModelsWorld) -> None:
    unknown = ReadyVersion("0" * 32, 1, "0" * 32, "ab" * 32, world.first.samples)
    response = _post(world, world.operator, run_record(unknown))
    assert response.status_code == 404
    assert _error(response) == "dataset_version_not_found"


def test_a_sample_count_other_than_the_versions_is_422(world: ModelsWorld) -> None:
    wrong = ReadyVersion(
        world.first.dataset_id,
        1,
        world.first.id,
        world.first.version_hash,
        world.first.samples + 1,
    )
    response = _post(world, world.trainer(), run_record(wrong))
    assert response.status_code == 422
    assert _error(response) == "run_dataset_mismatch"


def test_a_record_that_is_no_run_record_is_422(world: ModelsWorld) -> None:
    document = run_record(world.first).model_dump(mode="json")
    document["dataset"]["train_samples"] += 1  # the split no longer adds up
    response = _post(world, world.trainer(), document)
    assert (response.status_code, _error(response)) == (422, "validation_error")
    big = run_record(world.first).model_dump(mode="json")
    big["hyperparameters"] = {"notes": "x" * MAX_HYPERPARAMETERS_JSON_BYTES}
    response = _post(world, world.trainer(), big)
    assert (response.status_code, _error(response)) == (422, "validation_error")
    assert "hyperparameters" in json.dumps(response.json()["error"]["details"])


def test_a_body_over_one_mib_is_413(world: ModelsWorld) -> None:
    document = run_record(world.first).model_dump(mode="json")
    evaluation = document["metrics"][-1]
    document["metrics"] = [evaluation] * 12_000  # ~1.3 MB of JSON
    body = json.dumps(document)
    assert len(body) > 1024 * 1024
    response = _post(world, world.trainer(), document)
    assert response.status_code == 413
    assert _error(response) == "request_too_large"


# --- reading ------------------------------------------------------------------------------


def test_an_unknown_model_is_404_and_a_malformed_hash_422(world: ModelsWorld) -> None:
    with world.http() as http:
        missing = http.get(f"/api/v1/models/{'0' * 64}")
        assert (missing.status_code, _error(missing)) == (404, "model_not_found")
        lineage = http.get(f"/api/v1/models/{'0' * 64}/lineage")
        assert (lineage.status_code, _error(lineage)) == (404, "model_not_found")
        assert http.get(f"/api/v1/models/{'A' * 64}").status_code == 422
        assert http.get("/api/v1/models/abc").status_code == 422


def test_models_are_listed_newest_first_in_pages_and_by_registrant(world: ModelsWorld) -> None:
    trainer = world.trainer()
    hashes = []
    for _ in range(5):
        record = run_record(world.first)
        assert _post(world, trainer, record).status_code == 201
        hashes.append(record.output.sha256)
    newest_first = list(reversed(hashes))
    seen: list[str] = []
    before: str | None = None
    pages = 0
    with world.http() as http:
        while True:
            params: dict[str, Any] = {"registrant": trainer.address.lower(), "limit": 2}
            if before is not None:
                params["before"] = before
            page = http.get("/api/v1/models", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["models"]) <= 2
            seen += [model["hash"] for model in body["models"]]
            pages += 1
            before = body["next_before"]
            if before is None:
                break
        assert seen == newest_first
        assert pages == 3
        everyone = http.get("/api/v1/models", params={"limit": 100}).json()["models"]
        listed = [model["hash"] for model in everyone if model["hash"] in hashes]
        assert listed == newest_first
        times = [model["registered_at"] for model in everyone]
        assert times == sorted(times, reverse=True)
        bad = http.get("/api/v1/models", params={"before": "0" * 64})
        assert (bad.status_code, _error(bad)) == (422, "invalid_cursor")
        assert http.get("/api/v1/models", params={"limit": 101}).status_code == 422
        assert http.get("/api/v1/models", params={"registrant": "bob"}).status_code == 422


def test_lineage_lists_each_versions_contributors_with_their_sample_counts(
    world: ModelsWorld,
) -> None:
    record = run_record(world.first)
    assert _post(world, world.trainer(), record).status_code == 201
    with world.http() as http:
        lineage = http.get(f"/api/v1/models/{record.output.sha256}/lineage").json()
    first = [{"address": ALICE, "samples": 2}, {"address": BOB, "samples": 1}]
    assert lineage == {
        "model": record.output.sha256,
        "dataset_versions": [
            {
                "dataset_id": world.first.dataset_id,
                "number": 1,
                "version_hash": world.first.version_hash,
                "samples": 3,
                "contributors": first,
            }
        ],
        "contributors": first,
        "truncated": False,
    }


def test_lineage_over_two_versions_sums_shared_contributors(world: ModelsWorld) -> None:
    record = run_record(world.first)
    assert _post(world, world.trainer(), record).status_code == 201
    # A run record names one version; the table links a model to several (a later
    # record format), and lineage must sum over them.
    with Session(world.engine) as db:
        db.add(ModelRunVersion(model_hash=record.output.sha256, version_id=world.second.id))
        db.commit()
    with world.http() as http:
        lineage = http.get(f"/api/v1/models/{record.output.sha256}/lineage").json()
        cut = http.get(f"/api/v1/models/{record.output.sha256}/lineage", params={"limit": 1}).json()
        model = http.get(f"/api/v1/models/{record.output.sha256}").json()
    assert [v["number"] for v in lineage["dataset_versions"]] == [1, 2]
    assert [v["number"] for v in model["dataset_versions"]] == [1, 2]
    second = lineage["dataset_versions"][1]
    assert second["samples"] == 4
    # Equal counts are ordered by address.
    assert second["contributors"] == [
        {"address": ALICE, "samples": 2},
        {"address": BOB, "samples": 1},
        {"address": CAROL, "samples": 1},
    ]
    assert lineage["contributors"] == [
        {"address": ALICE, "samples": 4},
        {"address": BOB, "samples": 2},
        {"address": CAROL, "samples": 1},
    ]
    assert lineage["truncated"] is False
    assert cut["truncated"] is True
    assert cut["contributors"] == [{"address": ALICE, "samples": 4}]
    assert [len(v["contributors"]) for v in cut["dataset_versions"]] == [1, 1]
    with world.http() as http:
        assert (
            http.get(
                f"/api/v1/models/{record.output.sha256}/lineage", params={"limit": 10_001}
            ).status_code
            == 422
        )


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def own_postgres_url(postgres_admin_url: URL) -> Iterator[str]:
    """A database of its own: the session's shared one may already hold these clips'
    bytes from another test, and a clip's content is unique."""
    with pgcluster.throwaway_database(postgres_admin_url, prefix="shotbank_models") as url:
        yield url


@pytest.mark.postgres
def test_registration_and_lineage_on_postgresql(
    tmp_path: Path, own_postgres_url: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(
        database_url=own_postgres_url,
        operators=[ALICE],
        ingest_workers=0,
        ingest_min_short_side=120,
    )
    engine = create_db_engine(settings)
    try:
        upgrade_to_head(engine)
        world = DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))
        # Fresh tones: other tests may have stored the other worlds' bytes on this database.
        first, second = frozen_versions(world, tmp_path, tone_base=2300.0)
        record = run_record(first)
        trainer = Account.create().address
        with Session(engine) as db:
            with pytest.raises(LicenceRequiredError):
                modelruns.register_model(
                    db, settings, record=record, registrant=trainer, now=datetime.now(UTC)
                )
            done = modelruns.register_model(
                db, settings, record=record, registrant=ALICE, now=datetime.now(UTC)
            )
            assert done.created
            again = modelruns.register_model(
                db,
                settings,
                record=RunRecord.model_validate_json(record.model_dump_json()),
                registrant=ALICE,
                now=datetime.now(UTC),
            )
            assert (again.created, again.view) == (False, done.view)
            with pytest.raises(ModelExistsError):
                modelruns.register_model(
                    db,
                    settings,
                    record=record.model_copy(update={"device": "cuda"}),
                    registrant=ALICE,
                    now=datetime.now(UTC),
                )
            db.add(ModelRunVersion(model_hash=record.output.sha256, version_id=second.id))
            db.commit()
            lineage = modelruns.lineage(db, model_hash=record.output.sha256, limit=2)
        # Two identical registrations at once: one creates, the other answers the same.
        racing = run_record(first)
        barrier = threading.Barrier(2)

        def register(_: int) -> modelruns.RegisteredModel:
            with Session(engine) as own:
                barrier.wait(timeout=10)
                return modelruns.register_model(
                    own, settings, record=racing, registrant=ALICE, now=datetime.now(UTC)
                )

        with ThreadPoolExecutor(2) as pool:
            raced = list(pool.map(register, range(2)))
        assert sorted(result.created for result in raced) == [False, True]
        assert raced[0].view == raced[1].view
        with Session(engine) as db:
            page = modelruns.list_models(db, limit=2, registrant=ALICE)
        assert [m.hash for m in page.models] == [racing.output.sha256, record.output.sha256]
        assert [(c.address, c.samples) for c in lineage.contributors] == [(ALICE, 4), (BOB, 2)]
        assert lineage.truncated
        assert [
            [(c.address, c.samples) for c in version.contributors]
            for version in lineage.dataset_versions
        ] == [[(ALICE, 2), (BOB, 1)], [(ALICE, 2), (BOB, 1)]]
    finally:
        engine.dispose()


# --- migration ------------------------------------------------------------------------------


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _migrate(engine: Engine, target: str, *, down: bool) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_migration_0013_creates_and_drops_the_model_tables(
    database: str, make_settings: SettingsFactory, request: pytest.FixtureRequest
) -> None:
    overrides = {}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    engine = create_db_engine(make_settings(**overrides))
    try:
        upgrade_to_head(engine)
        assert {"model_run", "model_run_version"} <= _tables(engine)
        _migrate(engine, "0012", down=True)
        assert not {"model_run", "model_run_version"} & _tables(engine)
        assert "dataset_version" in _tables(engine)
        _migrate(engine, "0013", down=False)
        assert {"model_run", "model_run_version"} <= _tables(engine)
        indexes = {index["name"] for index in inspect(engine).get_indexes("model_run")}
        assert "ix_model_run_registered_at_hash" in indexes
    finally:
        if database == "postgresql":
            upgrade_to_head(engine)  # the shared database stays at head for other tests
        engine.dispose()
