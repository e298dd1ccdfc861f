"""The state directory: one node at a time, a journal that survives restarts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scoring.node.errors import NodeStateError
from scoring.node.state import NodeState, SignedReport


def _report(lease_id: str = "a" * 32, signed_at: float | None = None) -> SignedReport:
    return SignedReport(
        lease_id=lease_id,
        clip_id="b" * 32,
        signer="0x" + "1" * 40,
        deadline=1_900_000_000,
        scores_json='{"outcome": "failed"}',
        signature=bytes(range(65)),
        signed_at=time.time() if signed_at is None else signed_at,
    )


def test_a_second_node_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    with (
        NodeState(tmp_path / "state"),
        pytest.raises(NodeStateError, match="another validator node"),
    ):
        NodeState(tmp_path / "state")
    with NodeState(tmp_path / "state"):  # released on close
        pass


def test_the_journal_keeps_signed_reports_across_restarts(tmp_path: Path) -> None:
    report = _report()
    with NodeState(tmp_path) as state:
        state.record_signed(report)
        # The first signature wins: a later one for the same lease is not recorded.
        state.record_signed(_report(signed_at=report.signed_at + 5))
        state.set_cursor("embeddings", "cursor-1")
    with NodeState(tmp_path) as state:
        again = state.signed_report(report.lease_id, report.signer)
        assert again == report
        assert state.signed_report(report.lease_id, "0x" + "2" * 40) is None
        state.mark_finished(report.lease_id, "accepted")
        finished = state.signed_report(report.lease_id, report.signer)
        assert finished is not None
        assert finished.result == "accepted"
        assert finished.finished_at is not None
        assert state.cursor("embeddings") == "cursor-1"
        state.set_cursor("embeddings", None)
        assert state.cursor("embeddings") is None


def test_old_entries_are_pruned_and_leftover_downloads_removed(tmp_path: Path) -> None:
    with NodeState(tmp_path) as state:
        state.record_signed(_report("c" * 32, signed_at=time.time() - 30 * 86_400))
        state.record_signed(_report("d" * 32))
        (state.downloads / "leftover.media").write_bytes(b"x")
    with NodeState(tmp_path) as state:
        assert state.signed_report("c" * 32, "0x" + "1" * 40) is None
        assert state.signed_report("d" * 32, "0x" + "1" * 40) is not None
        assert list(state.downloads.iterdir()) == []


def test_an_unusable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(NodeStateError, match="cannot use the state directory"):
        NodeState(blocker / "state")


def test_index_paths_are_per_model_and_safe(tmp_path: Path) -> None:
    with NodeState(tmp_path) as state:
        one = state.index_path("ViT-B-32", "ab" * 32)
        other = state.index_path("../../evil", "cd" * 32)
    assert one.parent == other.parent == tmp_path
    assert one != other
