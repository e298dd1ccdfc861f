"""The outbox store on the backend database: the OutboxStore contract (shared with the SDK's
SQLite store), atomic nonces under concurrency, and the real Outbox on anvil, crashes
included, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3

from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.errors import ConfigurationError
from backend.models.rewardchain import MAX_ERROR_CHARS, OutboxAttempt, OutboxTransaction
from backend.services.outboxstore import SqlOutboxStore, operator_account, operator_outbox
from shotbank.chain.devnode import AnvilNode
from shotbank.chain.errors import OutboxError
from shotbank.chain.outbox import (
    AttemptKind,
    NewTx,
    Outbox,
    OutboxPolicy,
    OutboxStore,
    SqliteOutboxStore,
    TxAttempt,
    TxIntent,
    TxStatus,
)
from tests.backend.conftest import SettingsFactory

CHAIN = 31337
ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
VALUE = 987_654_321
BIG = 2**256 - 1


def _empty(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(delete(OutboxAttempt))
        session.execute(delete(OutboxTransaction))
        session.commit()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Iterator[Engine]:
    """The migrated backend database of each kind, with an empty outbox.

    The PostgreSQL database lives for the whole test session: the outbox tables are
    emptied before and after each test.
    """
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    engine = create_db_engine(make_settings(**overrides))
    upgrade_to_head(engine)
    _empty(engine)
    yield engine
    _empty(engine)
    engine.dispose()


def _attempt(tag: str, *, fee: int = 2_000, kind: AttemptKind = AttemptKind.ORIGINAL) -> TxAttempt:
    # Stand-in signed bytes: the store only keeps them; the chain tests below sign for real.
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return TxAttempt(
        tx_hash="0x" + digest,
        raw="0x02" + digest * 3,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=fee // 2,
        kind=kind,
        created_at=1_700_000_000.25,
    )


def _builder(key: str, calls: list[int] | None = None) -> Callable[[int], NewTx]:
    def build(nonce: int) -> NewTx:
        if calls is not None:
            calls.append(nonce)
        return NewTx(
            to=BOB, data="0xabcd", value=BIG, gas=21_000, attempt=_attempt(f"{key}:{nonce}")
        )

    return build


def _create(
    store: OutboxStore, key: str, *, chain_nonce: int = 0, sender: str = ALICE, chain: int = CHAIN
) -> tuple[Any, bool]:
    return store.create(
        chain_id=chain,
        sender=sender,
        key=key,
        chain_nonce=chain_nonce,
        build=_builder(f"{chain}:{sender}:{key}"),
        now=1_700_000_000.5,
    )


# --- the OutboxStore contract: the SDK's SQLite store and ours behave the same ------------


@pytest.fixture(
    params=[
        "sdk-sqlite",
        "backend-sqlite",
        pytest.param("backend-postgresql", marks=pytest.mark.postgres),
    ]
)
def contract_store(
    request: pytest.FixtureRequest, tmp_path: Path, make_settings: SettingsFactory
) -> Iterator[OutboxStore]:
    """The SDK's reference store and :class:`SqlOutboxStore` on both databases."""
    if request.param == "sdk-sqlite":
        sdk = SqliteOutboxStore(tmp_path / "outbox.sqlite")
        yield sdk
        sdk.close()
        return
    overrides: dict[str, Any] = {}
    if request.param == "backend-postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    engine = create_db_engine(make_settings(**overrides))
    upgrade_to_head(engine)
    _empty(engine)
    yield SqlOutboxStore(engine)
    _empty(engine)
    engine.dispose()


def test_create_reserves_the_chain_nonce_or_the_one_after_the_highest_stored(
    contract_store: OutboxStore,
) -> None:
    assert _create(contract_store, "a", chain_nonce=5)[0].nonce == 5
    assert _create(contract_store, "b", chain_nonce=0)[0].nonce == 6
    assert _create(contract_store, "c", chain_nonce=9)[0].nonce == 9
    # Nonces are per sender and per chain.
    assert _create(contract_store, "a", sender=BOB)[0].nonce == 0
    assert _create(contract_store, "a", chain=1)[0].nonce == 0


def test_a_key_creates_one_transaction_and_later_calls_return_it_without_building(
    contract_store: OutboxStore,
) -> None:
    tx, created = _create(contract_store, "epoch-root:31337:1", chain_nonce=3)
    assert created
    assert (tx.status, tx.nonce, tx.to, tx.data, tx.value, tx.gas) == (
        TxStatus.PENDING, 3, BOB, "0xabcd", BIG, 21_000,
    )  # fmt: skip
    assert tx.attempts == (_attempt(f"{CHAIN}:{ALICE}:epoch-root:31337:1:3"),)
    assert (tx.created_at, tx.updated_at) == (1_700_000_000.5, 1_700_000_000.5)
    calls: list[int] = []
    again, created = contract_store.create(
        chain_id=CHAIN, sender=ALICE, key="epoch-root:31337:1", chain_nonce=7,
        build=_builder("other", calls), now=2.0,
    )  # fmt: skip
    assert not created
    assert calls == []
    assert again == tx
    assert contract_store.get_by_key(chain_id=CHAIN, sender=ALICE, key="epoch-root:31337:1") == tx
    assert contract_store.get_by_key(chain_id=CHAIN, sender=BOB, key="epoch-root:31337:1") is None
    assert contract_store.get(tx.id) == tx


def test_a_failing_build_stores_nothing_and_reserves_no_nonce(
    contract_store: OutboxStore,
) -> None:
    def failing(nonce: int) -> NewTx:
        raise RuntimeError(f"cannot sign nonce {nonce}")

    with pytest.raises(RuntimeError, match="cannot sign nonce 4"):
        contract_store.create(
            chain_id=CHAIN, sender=ALICE, key="x", chain_nonce=4, build=failing, now=1.0
        )
    assert contract_store.get_by_key(chain_id=CHAIN, sender=ALICE, key="x") is None
    assert _create(contract_store, "y", chain_nonce=4)[0].nonce == 4


def test_open_transactions_are_the_unfinished_ones_in_nonce_order(
    contract_store: OutboxStore,
) -> None:
    txs = [_create(contract_store, key, chain_nonce=0)[0] for key in "abcde"]
    _create(contract_store, "bob's", sender=BOB)
    for tx, status in zip(
        txs,
        [TxStatus.CONFIRMED, TxStatus.SENT, TxStatus.DROPPED, TxStatus.MINED, TxStatus.REVERTED],
        strict=True,
    ):
        contract_store.update(tx.id, now=5.0, status=status)
    open_txs = contract_store.open_transactions(chain_id=CHAIN, sender=ALICE)
    assert [(tx.key, tx.nonce, tx.status) for tx in open_txs] == [
        ("b", 1, TxStatus.SENT),
        ("d", 3, TxStatus.MINED),
    ]


def test_attempts_are_kept_in_order_with_exact_fees(contract_store: OutboxStore) -> None:
    tx, _ = _create(contract_store, "k")
    bump = _attempt("bump", fee=2**200 + 1, kind=AttemptKind.BUMP)
    cancel = _attempt("cancel", fee=BIG, kind=AttemptKind.CANCEL)
    contract_store.add_attempt(tx.id, bump, now=10.0)
    contract_store.add_attempt(tx.id, cancel, now=11.0)
    stored = contract_store.get(tx.id)
    assert stored is not None
    assert stored.attempts == (tx.attempts[0], bump, cancel)
    assert stored.latest_attempt.max_fee_per_gas == BIG
    assert stored.updated_at == 11.0


def test_update_sets_status_times_and_mined_block_and_always_writes_the_error(
    contract_store: OutboxStore,
) -> None:
    tx, _ = _create(contract_store, "k")
    contract_store.update(tx.id, now=20.0, status=TxStatus.SENT, last_sent_at=19.5, error="slow")
    mined = ("0x" + "11" * 32, 42, "0x" + "22" * 32)
    contract_store.update(tx.id, now=21.0, status=TxStatus.MINED, mined=mined)
    stored = contract_store.get(tx.id)
    assert stored is not None
    assert (stored.status, stored.last_sent_at, stored.updated_at) == (TxStatus.MINED, 19.5, 21.0)
    assert (stored.mined_hash, stored.block_number, stored.block_hash) == mined
    assert stored.error is None, "an update without an error clears the previous one"
    contract_store.update(tx.id, now=22.0, status=TxStatus.SENT, clear_mined=True, error="reorged")
    stored = contract_store.get(tx.id)
    assert stored is not None
    assert (stored.mined_hash, stored.block_number, stored.block_hash) == (None, None, None)
    assert (stored.status, stored.error, stored.last_sent_at) == (TxStatus.SENT, "reorged", 19.5)
    assert contract_store.get(tx.id + 1000) is None


def test_recently_final_are_the_mined_final_ones_from_a_block_on_in_nonce_order(
    contract_store: OutboxStore,
) -> None:
    outcomes: list[tuple[str, TxStatus, int | None]] = [
        ("a", TxStatus.CONFIRMED, 9),  # mined before the window
        ("b", TxStatus.CONFIRMED, 10),
        ("c", TxStatus.REVERTED, 11),
        ("d", TxStatus.DROPPED, None),  # final, never mined
        ("e", TxStatus.MINED, 12),  # mined, not final: the open transactions' business
        ("f", TxStatus.CANCELLED, 12),
        ("g", TxStatus.CONFIRMED, 13),
    ]
    txs = [_create(contract_store, key)[0] for key, _status, _block in outcomes]
    # Another sender's and another chain's, final in the window: never listed.
    txs += [_create(contract_store, "x", sender=BOB)[0], _create(contract_store, "x", chain=1)[0]]
    outcomes += [("x", TxStatus.CONFIRMED, 11)] * 2
    for tx, (_key, status, block) in zip(txs, outcomes, strict=True):
        mined = None if block is None else (f"0x{tx.id:064x}", block, f"0x{block:064x}")
        contract_store.update(tx.id, now=30.0, status=status, mined=mined)
    listed = contract_store.recently_final(chain_id=CHAIN, sender=ALICE, since_block=10)
    assert [(tx.key, tx.nonce, tx.status, tx.block_number) for tx in listed] == [
        ("b", 1, TxStatus.CONFIRMED, 10),
        ("c", 2, TxStatus.REVERTED, 11),
        ("f", 5, TxStatus.CANCELLED, 12),
        ("g", 6, TxStatus.CONFIRMED, 13),
    ]
    assert listed[0] == contract_store.get(txs[1].id)  # attempts included
    limited = contract_store.recently_final(chain_id=CHAIN, sender=ALICE, since_block=0, limit=2)
    assert [tx.key for tx in limited] == ["a", "b"]
    assert contract_store.recently_final(chain_id=CHAIN, sender=ALICE, since_block=14) == []


# --- only the backend store: long errors, concurrency -------------------------------------


def test_a_long_node_error_is_kept_shortened(engine: Engine) -> None:
    store = SqlOutboxStore(engine)
    tx, _ = _create(store, "k")
    store.update(tx.id, now=1.0, error="x" * (MAX_ERROR_CHARS * 3))
    stored = store.get(tx.id)
    assert stored is not None
    assert stored.error == "x" * MAX_ERROR_CHARS


def _race(workers: int, job: Callable[[int], None]) -> list[BaseException]:
    """Run ``job(i)`` on ``workers`` threads released at once; the exceptions raised."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            job(index)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_creates_for_one_sender_reserve_distinct_consecutive_nonces(
    engine: Engine,
) -> None:
    # Each thread has its own store and connection, as separate processes would.
    stores = [SqlOutboxStore(engine) for _ in range(4)]

    def slow_builder(key: str) -> Callable[[int], NewTx]:
        inner = _builder(key)

        def build(nonce: int) -> NewTx:
            # Signing takes time; a reservation that is not atomic shows here.
            time.sleep(0.02)
            return inner(nonce)

        return build

    def job(index: int) -> None:
        for round_ in range(4):
            key = f"w{index}-{round_}"
            stores[index].create(
                chain_id=CHAIN, sender=ALICE, key=key, chain_nonce=0,
                build=slow_builder(key), now=1.0,
            )  # fmt: skip

    assert _race(4, job) == []
    txs = stores[0].open_transactions(chain_id=CHAIN, sender=ALICE)
    assert sorted(tx.nonce for tx in txs) == list(range(16))


def test_concurrent_creates_of_one_key_make_one_transaction(engine: Engine) -> None:
    stores = [SqlOutboxStore(engine) for _ in range(4)]
    created: list[bool] = []

    def job(index: int) -> None:
        tx, new = stores[index].create(
            chain_id=CHAIN, sender=ALICE, key="emission:31337:7", chain_nonce=0,
            build=_builder(f"w{index}"), now=1.0,
        )  # fmt: skip
        assert tx.nonce == 0
        created.append(new)

    assert _race(4, job) == []
    assert sorted(created) == [False, False, False, True]
    assert len(stores[0].open_transactions(chain_id=CHAIN, sender=ALICE)) == 1


# --- the real Outbox over the backend store, on anvil ------------------------------------


def test_the_outbox_sends_through_the_backend_store_until_confirmed(
    engine: Engine, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> None:
    sender, recipient = dev_keys[0], dev_keys[1].address
    outbox = Outbox(anvil_w3, sender, SqlOutboxStore(engine), policy=OutboxPolicy(confirmations=1))
    before = anvil_w3.eth.get_balance(recipient)
    txs = [outbox.enqueue(TxIntent(key=f"pay-{i}", to=recipient, value=VALUE)) for i in range(3)]
    assert [tx.nonce for tx in txs] == [0, 1, 2]
    final = [outbox.wait(tx.id, timeout_s=20, poll_s=0.05) for tx in txs]
    assert [tx.status for tx in final] == [TxStatus.CONFIRMED] * 3
    assert all(tx.mined_hash == tx.attempts[0].tx_hash for tx in final)
    assert anvil_w3.eth.get_transaction_count(sender.address) == 3
    assert anvil_w3.eth.get_balance(recipient) - before == 3 * VALUE


def test_enqueue_by_the_same_key_returns_the_same_transaction(
    engine: Engine, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> None:
    outbox = Outbox(anvil_w3, dev_keys[0], SqlOutboxStore(engine))
    intent = TxIntent(key="epoch-root:31337:1", to=dev_keys[1].address, value=VALUE)
    first = outbox.enqueue(intent)
    # A second Outbox (a restarted backend) over the same database gets it back too.
    again = Outbox(anvil_w3, dev_keys[0], SqlOutboxStore(engine)).enqueue(intent)
    assert again == first
    with pytest.raises(OutboxError, match="already used"):
        outbox.enqueue(TxIntent(key="epoch-root:31337:1", to=dev_keys[2].address, value=VALUE))


_CRASHING_SENDER = textwrap.dedent(
    """
    import os, signal, sys
    from eth_account import Account
    from sqlalchemy import create_engine
    from backend.services.outboxstore import SqlOutboxStore
    from shotbank.chain.outbox import Outbox, OutboxPolicy, TxIntent
    from shotbank.chain.rpc import connect

    url, database_url, key, to, value, crash_point = sys.argv[1:]
    store = SqlOutboxStore(create_engine(database_url))
    outbox = Outbox(connect(url), Account.from_key(key), store,
                    policy=OutboxPolicy(confirmations=1))
    outbox.enqueue(TxIntent(key="epoch-root:31337:1", to=to, value=int(value)))
    if crash_point == "after-send":
        outbox.process()  # broadcasts; the receipt is never looked at
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("crash_point", ["before-send", "after-send"])
def test_a_restarted_outbox_lands_a_transaction_of_a_crashed_one_exactly_once(
    engine: Engine,
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    crash_point: str,
) -> None:
    sender, recipient = dev_keys[3], dev_keys[4].address
    before = anvil_w3.eth.get_balance(recipient)
    database_url = engine.url.render_as_string(hide_password=False)
    crashed = subprocess.run(
        [
            sys.executable, "-c", _CRASHING_SENDER, anvil.url, database_url,
            "0x" + sender.key.hex(), recipient, str(VALUE), crash_point,
        ],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr.decode()
    sent = anvil_w3.eth.get_transaction_count(sender.address, "pending")
    assert sent == (1 if crash_point == "after-send" else 0)

    store = SqlOutboxStore(engine)
    (open_tx,) = store.open_transactions(chain_id=CHAIN, sender=sender.address)
    assert open_tx.status is (TxStatus.SENT if crash_point == "after-send" else TxStatus.PENDING)
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    final = outbox.wait(open_tx.id, timeout_s=20, poll_s=0.05)
    # A third start reconciles again: nothing more is sent.
    Outbox(anvil_w3, sender, SqlOutboxStore(engine), policy=OutboxPolicy(confirmations=1)).process()
    assert final.status is TxStatus.CONFIRMED
    assert len(final.attempts) == 1
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
    assert anvil_w3.eth.get_balance(recipient) - before == VALUE


# --- the operator's outbox from the settings ----------------------------------------------


def test_the_operator_outbox_sends_as_the_configured_key(
    make_settings: SettingsFactory, engine: Engine, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> None:
    operator = dev_keys[5]
    settings = make_settings(operator_key=operator.key.hex(), outbox_confirmations=0)
    assert operator_account(settings).address == operator.address
    outbox = operator_outbox(anvil_w3, engine, settings)
    assert outbox.policy.confirmations == 0
    tx = outbox.send(TxIntent(key="k", to=dev_keys[6].address, value=VALUE))
    assert outbox.wait(tx.id, timeout_s=20, poll_s=0.05).status is TxStatus.CONFIRMED
    assert anvil_w3.eth.get_transaction_count(operator.address) == 1


def test_without_an_operator_key_there_is_no_operator_outbox(
    make_settings: SettingsFactory,
) -> None:
    with pytest.raises(ConfigurationError, match="SHOTBANK_OPERATOR_KEY is not set"):
        operator_account(make_settings())


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 32, "0x" + "ab" * 33])
def test_a_malformed_operator_key_is_refused_without_quoting_it(
    make_settings: SettingsFactory, bad: str
) -> None:
    with pytest.raises(ConfigurationError, match="32 bytes of hex") as caught:
        make_settings(operator_key=bad)
    assert bad not in str(caught.value)
    assert bad.removeprefix("0x") not in str(caught.value)
