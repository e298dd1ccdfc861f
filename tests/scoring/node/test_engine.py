"""The node's scoring engine: real model, real pipeline, verdicts for good and bad media."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.dedup import DuplicateIndex
from scoring.models import TEST_MODEL
from scoring.node.config import NodeSettings
from scoring.node.engine import Engine, build_engine
from scoring.node.state import NodeState
from scoring.report import ClipScores, Outcome
from shotbank.annotation import Annotation


@pytest.fixture
def state(tmp_path: Path) -> Iterator[NodeState]:
    with NodeState(tmp_path / "state") as opened:
        yield opened


def _settings(state: NodeState, **overrides: Any) -> NodeSettings:
    values: dict[str, Any] = {
        "model": TEST_MODEL[0],
        "pretrained": TEST_MODEL[1],
        "device": "cpu",
        "precision": "fp32",
        "workers": 0,
        "state_dir": state.directory,
    }
    values.update(overrides)
    return NodeSettings(**values)


def _verdicts(engine: Engine, count: int) -> dict[str, ClipScores | BaseException]:
    results: dict[str, ClipScores | BaseException] = {}
    for _ in range(600):
        results.update(engine.poll(0.1))
        if len(results) == count:
            return results
    pytest.fail(f"only {len(results)} of {count} verdicts came back")


def test_a_good_clip_is_scored_and_an_undecodable_one_fails_without_a_crash(
    state: NodeState, clip_files: list[tuple[Path, dict[str, Any]]], tmp_path: Path
) -> None:
    engine = build_engine(_settings(state), state)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    good_path, good_annotation = clip_files[0]
    try:
        engine.submit("good", good_path, Annotation.model_validate(good_annotation), clip_id="a")
        engine.submit("bad", garbage, Annotation.model_validate(good_annotation), clip_id="b")
        verdicts = _verdicts(engine, 2)
    finally:
        assert engine.close() == []
    good, bad = verdicts["good"], verdicts["bad"]
    assert isinstance(good, ClipScores)
    assert good.outcome is Outcome.SCORED
    assert good.passed
    assert good.model.weights_sha256 == engine.identity.weights_sha256
    assert isinstance(bad, ClipScores)
    assert bad.outcome is Outcome.FAILED
    assert [r.code for r in bad.reasons] == ["scoring.media.undecodable"]


def test_closing_returns_the_clips_never_scored(
    state: NodeState, clip_files: list[tuple[Path, dict[str, Any]]]
) -> None:
    engine = build_engine(_settings(state), state)
    path, document = clip_files[0]
    for n in range(6):
        engine.submit(f"job-{n}", path, Annotation.model_validate(document), clip_id=str(n))
    unfinished = engine.close()
    # Whatever was not finished comes back by key, nothing twice, nothing invented.
    assert set(unfinished) <= {f"job-{n}" for n in range(6)}
    assert len(set(unfinished)) == len(unfinished)
    assert unfinished, "six clips cannot all be scored before close() returns"


def test_the_duplicate_index_is_kept_in_the_state_dir_and_a_damaged_one_rebuilt(
    state: NodeState,
) -> None:
    first = build_engine(_settings(state), state)
    first.close()
    vector = np.ones(first.index.dim, np.float32) / np.sqrt(first.index.dim)
    first.index.add("accepted-clip", vector)
    first.index.save(first.index_path)
    state.set_cursor(f"embeddings:{first.identity.weights_sha256}", "7")

    again = build_engine(_settings(state), state)
    again.close()
    assert "accepted-clip" in again.index
    assert state.cursor(f"embeddings:{again.identity.weights_sha256}") == "7"

    again.index_path.write_bytes(b"not an index")
    rebuilt = build_engine(_settings(state), state)
    rebuilt.close()
    assert len(rebuilt.index) == 0
    # The sync starts over, so the rebuilt index gets every accepted clip again.
    assert state.cursor(f"embeddings:{rebuilt.identity.weights_sha256}") is None
    assert isinstance(DuplicateIndex.load(rebuilt.index_path), DuplicateIndex)
