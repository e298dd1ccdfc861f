"""``ShotbankClient.register_model``, ``model``, ``models`` and ``lineage`` against a live
backend whose versions were made from real clips (``tests.backend.models_world``)."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from shotbank.client import ApiError, ApiUnavailableError, RetryPolicy, ShotbankClient
from shotbank.client.lineage import Lineage, Model, lineage_path
from shotbank.runs import MAX_RUN_RECORD_BYTES
from tests.backend.models_world import (
    ALICE,
    BOB,
    ModelsWorld,
    ReadyVersion,
    models_world,
    run_record,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelsWorld]:
    with models_world(tmp_path_factory.mktemp("sdk-models"), tone_base=1300.0) as made:
        yield made


def test_a_registered_model_is_answered_again_and_read_back(world: ModelsWorld) -> None:
    trainer = world.trainer()
    record = run_record(world.first)
    with ShotbankClient(world.url) as client:
        client.sign_in(trainer)
        model = client.register_model(record)
        assert isinstance(model, Model)
        assert model.hash == record.model_hash
        assert model.registrant == trainer.address
        assert model.metrics.final == record.final_metrics
        assert model.output == record.output
        assert [(v.dataset_id, v.number) for v in model.dataset_versions] == [
            (world.first.dataset_id, 1)
        ]
        # The run.json document works as well as the parsed record; the same model comes back.
        assert client.register_model(record.model_dump(mode="json")) == model
    with ShotbankClient(world.url) as public:
        assert public.model(record.model_hash) == model


def test_a_client_with_a_key_and_no_session_registers_with_signed_requests(
    world: ModelsWorld,
) -> None:
    trainer = world.trainer()
    record = run_record(world.first)
    with ShotbankClient(world.url, account=trainer) as client:
        assert client.token is None
        model = client.register_model(record)
        assert model.registrant == trainer.address
        # A signed request carries a fresh nonce each time: repeating it is no replay.
        assert client.register_model(record) == model
    with (
        ShotbankClient(world.url, account=Account.create()) as stranger,
        pytest.raises(ApiError) as refused,
    ):
        stranger.register_model(run_record(world.first))
    assert (refused.value.status, refused.value.code) == (402, "licence_required")


def test_a_diverged_loss_registers_and_repeats_as_the_same_record(world: ModelsWorld) -> None:
    record = run_record(world.first)
    record.metrics[-1].train_loss = math.nan
    with ShotbankClient(world.url) as client:
        client.sign_in(world.trainer())
        model = client.register_model(record)
        assert model.metrics.final.train_loss is None
        assert client.register_model(record) == model


def test_lineage_names_the_versions_and_contributors(world: ModelsWorld) -> None:
    record = run_record(world.first)
    with ShotbankClient(world.url) as client:
        client.sign_in(world.trainer())
        client.register_model(record)
        lineage = client.lineage(record.model_hash)
        cut = client.lineage(record.model_hash, limit=1)
    assert isinstance(lineage, Lineage)
    assert lineage.model == record.model_hash
    assert [(c.address, c.samples) for c in lineage.contributors] == [(ALICE, 2), (BOB, 1)]
    (version,) = lineage.dataset_versions
    assert (version.version_hash, version.samples) == (world.first.version_hash, 3)
    assert not lineage.truncated
    assert cut.truncated
    assert [(c.address, c.samples) for c in cut.contributors] == [(ALICE, 2)]
    assert lineage_path(record.model_hash) == f"/api/v1/models/{record.model_hash}/lineage"


def test_models_pages_follow_next_before(world: ModelsWorld) -> None:
    trainer = world.trainer()
    with ShotbankClient(world.url) as client:
        client.sign_in(trainer)
        hashes = [client.register_model(run_record(world.first)).hash for _ in range(3)]
        first = client.models(registrant=trainer.address, limit=2)
        assert first.next_before is not None
        rest = client.models(registrant=trainer.address, limit=2, before=first.next_before)
    assert [m.hash for m in [*first.models, *rest.models]] == hashes[::-1]
    assert rest.next_before is None


def test_the_servers_refusals_carry_their_codes(world: ModelsWorld) -> None:
    stranger: LocalAccount = Account.create()
    with ShotbankClient(world.url) as client:
        client.sign_in(stranger)
        with pytest.raises(ApiError) as refused:
            client.register_model(run_record(world.first))
        assert (refused.value.status, refused.value.code) == (402, "licence_required")
        with pytest.raises(ApiError) as missing:
            client.model("0" * 64)
        assert (missing.value.status, missing.value.code) == (404, "model_not_found")
        record = run_record(world.first)
        client.sign_in(world.trainer())
        client.register_model(record)
        client.sign_in(world.trainer())
        with pytest.raises(ApiError) as taken:
            client.register_model(record)
        assert (taken.value.status, taken.value.code) == (409, "model_exists")


def test_bad_arguments_are_refused_before_any_request() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there: a request that went out would raise ApiUnavailableError.
    with ShotbankClient(
        f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=1), token="t"
    ) as client:
        for call in (
            lambda: client.model("A" * 64),
            lambda: client.lineage("abc"),
            lambda: client.lineage("0" * 64, limit=0),
            lambda: client.lineage("0" * 64, limit=10_001),
            lambda: client.models(limit=101),
            lambda: client.models(registrant="bob"),
            lambda: client.models(before="xyz"),
        ):
            with pytest.raises(ValueError, match=r"not a|must be within"):
                call()
        huge = run_record_document_over_limit()
        with pytest.raises(ValueError, match="over the backend's limit"):
            client.register_model(huge)
        with pytest.raises(ApiUnavailableError):
            client.model("0" * 64)


def run_record_document_over_limit() -> dict[str, object]:
    """A valid run record whose JSON is over :data:`MAX_RUN_RECORD_BYTES`."""
    document = run_record(ReadyVersion("0" * 32, 1, "0" * 32, "ab" * 32, 3)).model_dump(mode="json")
    evaluation = document["metrics"][-1]
    document["metrics"] = [evaluation] * (MAX_RUN_RECORD_BYTES // 100)
    return document
