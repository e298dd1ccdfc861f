"""The epoch signing record: one root per epoch, across restarts and processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pytest

from scoring.node.errors import ConflictingRootError, NodeStateError
from scoring.node.signing_record import SIGNING_RECORD_FILE, SigningRecord

CHAIN = 31337
DISTRIBUTOR = "0x" + "ab" * 20
ROOT_A = "0x" + "aa" * 32
ROOT_B = "0x" + "bb" * 32


def test_a_recorded_root_is_returned_and_the_same_root_may_be_recorded_again(
    tmp_path: Path,
) -> None:
    with SigningRecord.in_state_dir(tmp_path) as record:
        first = record.record_or_refuse(CHAIN, DISTRIBUTOR, 7, ROOT_A, 1000)
        again = record.record_or_refuse(
            CHAIN,
            DISTRIBUTOR.upper().replace("0X", "0x"),
            7,
            ROOT_A.upper().replace("0X", "0x"),
            1000,
        )
        assert again == first
        assert first.root == ROOT_A
        assert first.cumulative_total == 1000
        assert record.recorded(CHAIN, DISTRIBUTOR, 7) == first
        assert record.recorded(CHAIN, DISTRIBUTOR, 8) is None
    assert (tmp_path / SIGNING_RECORD_FILE).is_file()


@pytest.mark.parametrize(("root", "total"), [(ROOT_B, 1000), (ROOT_A, 1001)])
def test_another_root_or_total_for_a_recorded_epoch_is_refused_after_a_restart(
    tmp_path: Path, root: str, total: int
) -> None:
    with SigningRecord.in_state_dir(tmp_path) as record:
        record.record_or_refuse(CHAIN, DISTRIBUTOR, 7, ROOT_A, 1000)
    # A new process, as after a crash: only the file remembers.
    with SigningRecord.in_state_dir(tmp_path) as reopened:
        with pytest.raises(ConflictingRootError, match=r"epoch 7 .*refuses to sign"):
            reopened.record_or_refuse(CHAIN, DISTRIBUTOR, 7, root, total)
        kept = reopened.recorded(CHAIN, DISTRIBUTOR, 7)
        assert kept is not None
        assert (kept.root, kept.cumulative_total) == (ROOT_A, 1000)
        # The same root is still fine after the restart (a re-send).
        assert reopened.record_or_refuse(CHAIN, DISTRIBUTOR, 7, ROOT_A, 1000) == kept


def test_epochs_of_other_chains_and_distributors_are_independent(tmp_path: Path) -> None:
    with SigningRecord.in_state_dir(tmp_path) as record:
        record.record_or_refuse(CHAIN, DISTRIBUTOR, 1, ROOT_A, 5)
        record.record_or_refuse(CHAIN + 1, DISTRIBUTOR, 1, ROOT_B, 6)
        record.record_or_refuse(CHAIN, "0x" + "cd" * 20, 1, ROOT_B, 6)
        record.record_or_refuse(CHAIN, DISTRIBUTOR, 2, ROOT_B, 6)
        with pytest.raises(ConflictingRootError):
            record.record_or_refuse(CHAIN, DISTRIBUTOR, 1, ROOT_B, 6)


def test_totals_beyond_64_bits_round_trip(tmp_path: Path) -> None:
    total = 2**256 - 1
    with SigningRecord.in_state_dir(tmp_path) as record:
        record.record_or_refuse(CHAIN, DISTRIBUTOR, 3, ROOT_A, total)
    with SigningRecord.in_state_dir(tmp_path) as record:
        kept = record.recorded(CHAIN, DISTRIBUTOR, 3)
        assert kept is not None
        assert kept.cumulative_total == total
        with pytest.raises(ConflictingRootError):
            record.record_or_refuse(CHAIN, DISTRIBUTOR, 3, ROOT_A, total - 1)


@pytest.mark.parametrize(
    ("chain_id", "distributor", "epoch", "root", "total"),
    [
        (0, DISTRIBUTOR, 1, ROOT_A, 1),
        (CHAIN, "0x1234", 1, ROOT_A, 1),
        (CHAIN, DISTRIBUTOR, -1, ROOT_A, 1),
        (CHAIN, DISTRIBUTOR, 1, "0x" + "aa" * 31, 1),
        (CHAIN, DISTRIBUTOR, 1, ROOT_A, -1),
        (CHAIN, DISTRIBUTOR, 1, ROOT_A, 2**256),
    ],
)
def test_malformed_keys_and_values_are_refused_before_anything_is_written(
    tmp_path: Path, chain_id: int, distributor: str, epoch: int, root: str, total: int
) -> None:
    with (
        SigningRecord.in_state_dir(tmp_path) as record,
        pytest.raises(ValueError),  # noqa: PT011 - each case has its own message
    ):
        record.record_or_refuse(chain_id, distributor, epoch, root, total)
    with closing(sqlite3.connect(tmp_path / SIGNING_RECORD_FILE)) as db:
        assert db.execute("SELECT count(*) FROM epoch_signatures").fetchone() == (0,)


def test_the_record_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    with SigningRecord.in_state_dir(tmp_path) as record:
        record.record_or_refuse(CHAIN, DISTRIBUTOR, 1, ROOT_A, 1)
        assert record._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # 2 = FULL: each commit is fsync'd before record_or_refuse returns.
        assert record._db.execute("PRAGMA synchronous").fetchone() == (2,)


def test_a_record_written_by_a_newer_node_is_not_used(tmp_path: Path) -> None:
    with SigningRecord.in_state_dir(tmp_path):
        pass
    with closing(sqlite3.connect(tmp_path / SIGNING_RECORD_FILE)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(NodeStateError, match="newer node"):
        SigningRecord.in_state_dir(tmp_path)


def test_a_record_held_locked_by_another_process_refuses_instead_of_signing(
    tmp_path: Path,
) -> None:
    path = tmp_path / SIGNING_RECORD_FILE
    with SigningRecord(path):
        pass
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with (
            SigningRecord(path, busy_timeout_s=0.2) as record,
            pytest.raises(NodeStateError, match="not signing"),
        ):
            record.record_or_refuse(CHAIN, DISTRIBUTOR, 1, ROOT_A, 1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from scoring.node.errors import ConflictingRootError
    from scoring.node.signing_record import SigningRecord

    path, root, go, epochs = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    record = SigningRecord(path)
    won = []
    for epoch in range(1, epochs + 1):
        try:
            record.record_or_refuse(31337, "0x" + "ab" * 20, epoch, root, epoch)
        except ConflictingRootError:
            continue
        won.append(epoch)
    record.close()
    print(",".join(map(str, won)))
    """
)


@pytest.mark.slow
def test_two_processes_racing_for_the_same_epochs_never_both_record_a_root(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / SIGNING_RECORD_FILE
    go = tmp_path / "go"
    epochs = 150
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), root, str(go), str(epochs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root in (ROOT_A, ROOT_B)
    ]
    time.sleep(0.5)  # both interpreters up and waiting, so they start together
    go.touch()
    results = []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        results.append({int(e) for e in out.strip().split(",") if e})
    won_a, won_b = results
    print(f"process A recorded {len(won_a)} epochs, process B {len(won_b)}")
    assert won_a.isdisjoint(won_b), "both processes recorded a root for the same epoch"
    assert won_a | won_b == set(range(1, epochs + 1))
    with SigningRecord(path) as record:
        for epoch in range(1, epochs + 1):
            kept = record.recorded(CHAIN, DISTRIBUTOR, epoch)
            assert kept is not None
            assert kept.root == (ROOT_A if epoch in won_a else ROOT_B)
