"""The validator node: lease clips, fetch and verify them, score, sign, report.

Start-up (:meth:`ValidatorNode.start`), in this order, each step refusing with a clear
error before anything is leased:

1. take the state directory (:class:`~scoring.node.state.NodeState`);
2. load the model with hash-verified weights (tampered weights:
   :class:`~scoring.errors.WeightsIntegrityError`);
3. ``GET /validator/config``: chain, registry, report version;
4. read the node's own stake from the ValidatorRegistry on chain
   (:class:`~scoring.node.errors.NotStakedError` when it has none);
5. sign in with SIWE;
6. load the near-duplicate index from the state dir and bring it up to date with the
   accepted clips' embeddings (``GET /validator/embeddings``);
7. start the scoring engine, the metrics endpoint, and adopt the leases the backend
   says this validator still holds (a restart after a crash);
8. open the epoch signing record and start co-signing closed epochs' roots on a thread
   of its own (:mod:`~scoring.node.epochs`; ``epoch_poll_s = 0`` turns it off).

The loop (:meth:`ValidatorNode.run`) keeps up to ``max_leases`` jobs in flight. Each job
goes ``fetching`` (a download thread streams the media and checks size, SHA-256 and
CID) → ``scoring`` (the engine: decode workers, batched inference) → ``submitting``
(sign the EIP-712 report, journal it, ``POST /validator/reports``). What goes wrong
with one job costs that job only:

- bytes that are not the leased content: discarded, lease returned, counted;
- a download that keeps failing, a scorer error: lease returned;
- a clip that cannot be decoded: a ``failed`` verdict, reported like any other;
- ``409`` (lease expired or returned, clip decided, duplicate...), ``404``, ``403``:
  logged, counted by code, the job dropped;
- connection trouble and 5xx: retried with backoff while the lease lasts;
- a lease about to expire: given up (returned) rather than reported late.

A session that expired is renewed by signing in again (the client does it on a 401).

Shutdown (``stop`` set, e.g. by SIGINT/SIGTERM in the CLI): no more leasing; downloads
are cancelled and their leases returned; clips already in the scorer get
``shutdown_grace_s`` to be scored and reported; whatever is left is returned
(``DELETE /validator/leases/{id}``); the engine, the metrics endpoint and the session
are closed. A node that is killed instead loses only its leases: the backend issues
them again once they expire, and the journal keeps the node from signing a second,
different verdict for a lease it already signed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final

from eth_account.signers.local import LocalAccount
from pydantic import ValidationError

from scoring.node.client import (
    MAX_JOBS_PER_REQUEST,
    FetchedContent,
    Lease,
    ValidatorClient,
    ValidatorConfig,
)
from scoring.node.config import NodeSettings
from scoring.node.epochs import EpochCosigner
from scoring.node.errors import BackendMismatchError, ContentMismatchError, FetchError
from scoring.node.metrics import NodeMetrics
from scoring.node.signing_record import SigningRecord
from scoring.node.stake import StakeStatus, read_stake, require_stake
from scoring.node.state import NodeState, SignedReport
from scoring.report import REPORT_SCHEMA_VERSION, ClipScores, Outcome
from scoring.signing import score_report_message
from shotbank.annotation import Annotation, annotation_hash
from shotbank.chain.eip712 import sign_score_report
from shotbank.client import ApiError, ClientError

if TYPE_CHECKING:  # the engine imports torch: only when the node starts
    from scoring.node.engine import Engine

__all__ = ["NodeCounts", "Stage", "ValidatorNode"]

log = logging.getLogger("scoring.node")

#: How long one loop turn waits for the engine (or for nothing) at most.
_TICK_S: Final = 0.1
_MAX_BACKOFF_S: Final = 60.0
#: When the backend's snapshot does not show the stake yet (confirmations pending).
_NOT_STAKED_PAUSE_S: Final = 5.0
#: Clips per second are counted over this last stretch of time.
_RATE_WINDOW_S: Final = 60.0
#: An idle node prints its status line this many intervals apart.
_IDLE_STATUS_EVERY: Final = 6


class Stage(StrEnum):
    """Where a job is."""

    FETCHING = "fetching"
    SCORING = "scoring"
    SUBMITTING = "submitting"


@dataclass
class NodeCounts:
    """What this run did, for status lines and the final summary."""

    leased: int = 0
    scored: int = 0
    failed_outcomes: int = 0
    submitted: int = 0
    refused: int = 0
    returned: int = 0
    discarded: int = 0
    expired: int = 0
    errors: int = 0

    def line(self, *, in_flight: int, clips_per_s: float) -> str:
        """One status line."""
        return (
            f"leased {self.leased} · scored {self.scored} (failed {self.failed_outcomes}) · "
            f"submitted {self.submitted} · refused {self.refused} · returned {self.returned} · "
            f"discarded {self.discarded} · expired {self.expired} · errors {self.errors} · "
            f"in flight {in_flight} · {clips_per_s:.2f} clips/s"
        )


@dataclass
class _Job:
    lease: Lease
    annotation: Annotation
    stage: Stage
    fetch: Future[FetchedContent] | None = None
    path: Path | None = None
    scoring_since: float = 0.0
    report: SignedReport | None = None
    scores: ClipScores | None = None
    submit_attempts: int = 0
    next_submit_at: float = 0.0

    def seconds_left(self) -> float:
        return self.lease.deadline - time.time()


@dataclass
class _Pacer:
    """When to ask for leases again, with exponential backoff after failures."""

    base_s: float
    next_at: float = 0.0
    backoff_s: float = 0.0

    def ok(self, now: float, *, wait_s: float = 0.0) -> None:
        self.backoff_s = 0.0
        self.next_at = now + wait_s

    def failed(self, now: float, *, at_least_s: float = 0.0) -> float:
        self.backoff_s = min(max(self.backoff_s * 2, self.base_s), _MAX_BACKOFF_S)
        self.next_at = now + max(self.backoff_s, at_least_s)
        return self.next_at - now


class ValidatorNode:
    """One validator: one key, one state directory, one scoring engine (see the module)."""

    def __init__(self, settings: NodeSettings, account: LocalAccount) -> None:
        """Prepare (not start) a node for ``settings`` signing with ``account``."""
        self.settings = settings
        self.account = account
        self.metrics = NodeMetrics()
        self.counts = NodeCounts()
        self.config: ValidatorConfig | None = None
        self.stake: StakeStatus | None = None
        self._engine: Engine | None = None
        self._state: NodeState | None = None
        self._client: ValidatorClient | None = None
        self._fetchers: ThreadPoolExecutor | None = None
        self._cosigner: EpochCosigner | None = None
        self._cancel_fetches = threading.Event()
        self._jobs: dict[str, _Job] = {}
        self._pacer = _Pacer(base_s=settings.poll_interval_s)
        self._reconcile = False
        self._started_at = 0.0
        self._next_status_at = 0.0
        self._next_sync_at = 0.0
        self._window: list[float] = []
        self._last_counts: tuple[int, ...] = ()
        self._last_status_at = 0.0
        self._closed = False

    # --- start ---------------------------------------------------------------------------

    @property
    def client(self) -> ValidatorClient:
        """The API client (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("the node is not started")
        return self._client

    @property
    def state(self) -> NodeState:
        """The state directory (after :meth:`start`)."""
        if self._state is None:
            raise RuntimeError("the node is not started")
        return self._state

    @property
    def engine(self) -> Engine:
        """The scoring engine (after :meth:`start`)."""
        if self._engine is None:
            raise RuntimeError("the node is not started")
        return self._engine

    @property
    def in_flight(self) -> int:
        """Leases held now."""
        return len(self._jobs)

    def start(self) -> None:
        """Everything before the first lease (see the module docstring); closes on failure."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        s = self.settings
        self._state = NodeState(s.state_dir)
        # torch, open_clip and faiss are imported here, not when the CLI starts.
        from scoring.node.engine import build_engine

        self._client = ValidatorClient(
            s.api_url, timeout=s.api_timeout_s, fetch_timeout=s.fetch_timeout_s
        )
        # The engine loads (and verifies) the weights before anything reaches the network.
        engine = build_engine(s, self._state)
        self._engine = engine
        log.info(
            "model %s/%s ready (weights sha256 %s, preprocessing %s)",
            engine.identity.model,
            engine.identity.tag or "file",
            engine.identity.weights_sha256,
            engine.identity.preprocessing,
        )
        config = self.config = self._client.validator_config()
        if config.report_version != REPORT_SCHEMA_VERSION:
            raise BackendMismatchError(
                f"the backend at {s.api_url} expects report version {config.report_version}; "
                f"this node writes version {REPORT_SCHEMA_VERSION}: upgrade the node"
            )
        self.stake = require_stake(
            read_stake(
                s.rpc_url,
                chain_id=config.chain_id,
                registry=config.validator_registry,
                address=self.account.address,
            )
        )
        self.metrics.stake_wei.set(self.stake.active_stake_wei)
        log.info(
            "%s is staked: %s wei active in ValidatorRegistry %s (chain %d)",
            self.account.address,
            self.stake.active_stake_wei,
            self.stake.registry,
            config.chain_id,
        )
        self._client.sign_in(self.account)
        log.info("signed in at %s as %s", s.api_url, self.account.address)
        self._sync_embeddings(initial=True)
        self._fetchers = ThreadPoolExecutor(s.fetch_threads, thread_name_prefix="node-fetch")
        if s.metrics_enabled:
            self.metrics.serve(s.metrics_host, s.metrics_port)
            log.info("metrics on http://%s:%d/metrics", s.metrics_host, s.metrics_port)
        self._adopt_active_leases()
        if s.epoch_poll_s > 0:
            self._cosigner = EpochCosigner(
                client=self._client,
                account=self.account,
                config=config,
                rpc_url=s.rpc_url,
                record=SigningRecord.in_state_dir(s.state_dir),
                metrics=self.metrics,
            )
            self._cosigner.start(s.epoch_poll_s)
        self._started_at = time.monotonic()

    # --- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, stop_now: threading.Event | None = None) -> None:
        """Work until ``stop`` is set, then shut down gracefully (``stop_now``: no grace)."""
        if self._engine is None:
            raise RuntimeError("start() the node first")
        drain_until: float | None = None
        try:
            while True:
                now = time.monotonic()
                if stop.is_set() and drain_until is None:
                    drain_until = now + self.settings.shutdown_grace_s
                    self._begin_drain()
                if drain_until is not None and (
                    not self._jobs
                    or now >= drain_until
                    or (stop_now is not None and stop_now.is_set())
                ):
                    break
                if drain_until is None:
                    if self._reconcile:
                        self._adopt_active_leases()
                    if now >= self._pacer.next_at and len(self._jobs) < self.settings.max_leases:
                        self._lease_round(now)
                    if now >= self._next_sync_at:
                        self._sync_embeddings(initial=False)
                self._collect_fetches()
                self._collect_verdicts()
                self._submit_due()
                self._give_up_late_jobs()
                self._status(now)
        finally:
            self.close()

    def _begin_drain(self) -> None:
        scoring = sum(1 for job in self._jobs.values() if job.stage is not Stage.FETCHING)
        log.info(
            "stopping: no more leases; %d clip(s) in the scorer get %.0f s to finish",
            scoring,
            self.settings.shutdown_grace_s,
        )
        self._cancel_fetches.set()
        for job in list(self._jobs.values()):
            if job.stage is Stage.FETCHING:
                self._return(job, why="shutting down")

    # --- leasing -------------------------------------------------------------------------

    def _lease_round(self, now: float) -> None:
        assert self.config is not None
        want = min(
            self.settings.max_leases - len(self._jobs),
            self.config.max_jobs_per_lease,
            MAX_JOBS_PER_REQUEST,
        )
        try:
            batch = self.client.lease(want)
        except ApiError as exc:
            self.metrics.failures.labels(stage="lease").inc()
            if exc.code == "validator_not_staked":
                wait = self._pacer.failed(now, at_least_s=_NOT_STAKED_PAUSE_S)
                log.warning(
                    "the backend does not count this stake yet: %s (again in %.0f s)",
                    exc.message,
                    wait,
                )
            else:
                wait = self._pacer.failed(now)
                log.warning(
                    "leasing failed: %s %s: %s (again in %.1f s)",
                    exc.status,
                    exc.code,
                    exc.message,
                    wait,
                )
            return
        except ClientError as exc:
            self.metrics.failures.labels(stage="lease").inc()
            # The request may have been granted without the answer arriving: look for
            # leases we hold but do not know before asking for more.
            self._reconcile = True
            wait = self._pacer.failed(now)
            log.warning("leasing failed: %s (again in %.1f s)", exc, wait)
            return
        for lease in batch.leases:
            self._accept(lease)
        if len(batch.leases) < want:
            self._pacer.ok(now, wait_s=max(self.settings.poll_interval_s, batch.retry_after_s or 0))
        else:
            self._pacer.ok(now)

    def _adopt_active_leases(self) -> None:
        try:
            leases = self.client.active_leases()
        except ClientError as exc:
            self._reconcile = True
            log.warning("cannot list this validator's active leases: %s", exc)
            return
        self._reconcile = False
        adopted = [lease for lease in leases if lease.lease_id not in self._jobs]
        if adopted:
            log.info("adopting %d lease(s) this validator already holds", len(adopted))
        for lease in adopted:
            self._accept(lease, counted=False)

    def _accept(self, lease: Lease, *, counted: bool = True) -> None:
        if lease.lease_id in self._jobs:
            return
        if counted:
            self.counts.leased += 1
            self.metrics.leases.labels(event="leased").inc()
        try:
            annotation = Annotation.model_validate(lease.annotation)
        except ValidationError as exc:
            self._discard(
                lease,
                f"its annotation does not validate here ({exc.error_count()} "
                "problem(s)): is this node's SDK older than the backend?",
            )
            return
        if annotation_hash(annotation) != lease.annotation_hash.lower():
            self._discard(lease, "its annotation does not hash to the leased annotation_hash")
            return
        job = _Job(lease=lease, annotation=annotation, stage=Stage.FETCHING)
        self._jobs[lease.lease_id] = job
        self.metrics.in_flight.set(len(self._jobs))
        signed = self.state.signed_report(lease.lease_id, self.account.address)
        if signed is not None:
            if signed.finished_at is not None:
                self._return(job, why=f"its report was already submitted ({signed.result})")
                return
            # Signed before a crash or a lost answer: send that very report again.
            job.report = signed
            job.scores = ClipScores.model_validate_json(signed.scores_json)
            job.stage = Stage.SUBMITTING
            # An attempt before the restart may have got in: a duplicate then means done.
            job.submit_attempts = 1
            log.info("lease %s: submitting the report signed before a restart", lease.lease_id)
            return
        if job.seconds_left() <= self.settings.expiry_margin_s:
            self._return(job, why="it expires too soon to score it")
            return
        assert self._fetchers is not None
        job.fetch = self._fetchers.submit(self._fetch, lease)

    # --- fetching ------------------------------------------------------------------------

    def _fetch(self, lease: Lease) -> FetchedContent:
        """Download with retries (runs in a fetch thread)."""
        attempts = self.settings.fetch_attempts
        for attempt in range(1, attempts + 1):
            try:
                with self.metrics.fetch_seconds.time():
                    return self.client.fetch_content(
                        lease,
                        self.state.downloads,
                        max_bytes=self.settings.max_clip_bytes,
                        cancel=self._cancel_fetches,
                        on_bytes=self.metrics.fetch_bytes.inc,
                    )
            except ContentMismatchError:
                raise
            except FetchError as exc:
                if attempt == attempts or self._cancel_fetches.is_set():
                    raise
                log.info("lease %s: %s (try %d of %d)", lease.lease_id, exc, attempt, attempts)
                if self._cancel_fetches.wait(min(2.0**attempt * 0.25, 10.0)):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _collect_fetches(self) -> None:
        for job in list(self._jobs.values()):
            if job.stage is not Stage.FETCHING or job.fetch is None or not job.fetch.done():
                continue
            future, job.fetch = job.fetch, None
            try:
                fetched = future.result()
            except ContentMismatchError as exc:
                self.metrics.cid_mismatches.inc()
                self._discard(job.lease, str(exc), job=job)
                continue
            except Exception as exc:
                self.metrics.failures.labels(stage="fetch").inc()
                self.counts.errors += 1
                self._return(job, why=f"the media could not be fetched: {exc}")
                continue
            job.path = fetched.path
            job.stage = Stage.SCORING
            job.scoring_since = time.monotonic()
            self.engine.submit(
                job.lease.lease_id, fetched.path, job.annotation, clip_id=job.lease.clip_id
            )

    # --- scoring -------------------------------------------------------------------------

    def _collect_verdicts(self) -> None:
        engine = self.engine
        if engine.pending:
            results = engine.poll(_TICK_S)
        else:
            time.sleep(_TICK_S)
            results = []
        for key, verdict in results:
            job = self._jobs.get(key)
            if job is None or job.stage is not Stage.SCORING:
                continue  # given up meanwhile (late, or shutting down)
            self._remove_file(job)
            self.metrics.score_seconds.observe(time.monotonic() - job.scoring_since)
            if isinstance(verdict, BaseException):
                self.metrics.failures.labels(stage="score").inc()
                self.counts.errors += 1
                log.error("lease %s: the scorer failed: %r", key, verdict)
                self._return(job, why="the scorer failed on it")
                continue
            self.counts.scored += 1
            if verdict.outcome is Outcome.FAILED:
                self.counts.failed_outcomes += 1
            self._sign(job, verdict)

    def _sign(self, job: _Job, scores: ClipScores) -> None:
        assert self.config is not None
        lease = job.lease
        message = score_report_message(
            lease_id=lease.lease_id,
            clip_id=lease.clip_id,
            content_cid=lease.content_cid,
            annotation_hash=lease.annotation_hash,
            scores=scores,
            deadline=lease.deadline,
        )
        signature = sign_score_report(
            self.account,
            message,
            chain_id=self.config.chain_id,
            verifying_contract=self.config.validator_registry,
        )
        report = SignedReport(
            lease_id=lease.lease_id,
            clip_id=lease.clip_id,
            signer=self.account.address,
            deadline=lease.deadline,
            scores_json=scores.model_dump_json(),
            signature=signature,
            signed_at=time.time(),
        )
        self.state.record_signed(report)
        job.report = report
        job.scores = scores
        job.stage = Stage.SUBMITTING
        job.next_submit_at = 0.0

    # --- submitting ----------------------------------------------------------------------

    def _submit_due(self) -> None:
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if job.stage is Stage.SUBMITTING and job.next_submit_at <= now:
                self._submit(job)

    def _submit(self, job: _Job) -> None:
        assert job.report is not None
        assert job.scores is not None
        lease = job.lease
        if job.seconds_left() <= 0:
            self.state.mark_finished(lease.lease_id, "deadline_passed")
            self._drop(job, event="expired", why="its deadline passed before the report got in")
            return
        started = time.monotonic()
        try:
            receipt = self.client.submit_report(
                lease.lease_id, job.scores, deadline=lease.deadline, signature=job.report.signature
            )
        except ApiError as exc:
            self.metrics.submit_seconds.observe(time.monotonic() - started)
            if exc.status >= 500:
                self._retry_submit(job, f"{exc.status} {exc.code}")
                return
            if exc.code == "report_duplicate" and job.submit_attempts > 0:
                # An earlier attempt got in; only its answer was lost.
                self._submitted(job, "accepted")
                return
            self.metrics.reports_refused.labels(code=exc.code).inc()
            self.counts.refused += 1
            self.state.mark_finished(lease.lease_id, exc.code)
            self._forget(job)
            log.warning(
                "lease %s: report refused: %s %s: %s",
                lease.lease_id,
                exc.status,
                exc.code,
                exc.message,
            )
            return
        except ClientError as exc:
            self.metrics.submit_seconds.observe(time.monotonic() - started)
            self._retry_submit(job, str(exc))
            return
        self.metrics.submit_seconds.observe(time.monotonic() - started)
        self._submitted(job, "accepted")
        log.info(
            "clip %s: %s report submitted (clip now %s)",
            receipt.clip_id,
            job.scores.outcome,
            receipt.clip_status,
        )

    def _retry_submit(self, job: _Job, why: str) -> None:
        self.metrics.failures.labels(stage="submit").inc()
        job.submit_attempts += 1
        wait = min(2.0**job.submit_attempts * 0.5, 30.0)
        job.next_submit_at = time.monotonic() + wait
        log.warning(
            "lease %s: submitting failed (%s); again in %.1f s", job.lease.lease_id, why, wait
        )

    def _submitted(self, job: _Job, result: str) -> None:
        assert job.scores is not None
        self.state.mark_finished(job.lease.lease_id, result)
        self.metrics.reports_submitted.labels(outcome=job.scores.outcome.value).inc()
        self.counts.submitted += 1
        self._window.append(time.monotonic())
        self._forget(job)

    # --- giving jobs up ------------------------------------------------------------------

    def _give_up_late_jobs(self) -> None:
        margin = self.settings.expiry_margin_s
        for job in list(self._jobs.values()):
            if job.stage is not Stage.SUBMITTING and job.seconds_left() <= margin:
                self._drop(job, event="expired", why="its lease is about to expire")
                self._return_quietly(job.lease.lease_id)

    def _return(self, job: _Job, *, why: str) -> None:
        """Give the lease back and forget the job."""
        self._return_quietly(job.lease.lease_id)
        self._drop(job, event="returned", why=why)

    def _return_quietly(self, lease_id: str) -> None:
        try:
            self.client.return_lease(lease_id)
        except ClientError as exc:  # it expires on its own
            log.warning("lease %s: could not be returned (%s); it will expire", lease_id, exc)

    def _discard(self, lease: Lease, why: str, *, job: _Job | None = None) -> None:
        """Refuse a lease's content: return it and count it as discarded."""
        self._return_quietly(lease.lease_id)
        if job is not None:
            self._drop(job, event="discarded", why=why, level=logging.WARNING)
        else:
            self.metrics.leases.labels(event="discarded").inc()
            self.counts.discarded += 1
            log.warning("lease %s (clip %s) discarded: %s", lease.lease_id, lease.clip_id, why)

    def _drop(self, job: _Job, *, event: str, why: str, level: int = logging.INFO) -> None:
        self.metrics.leases.labels(event=event).inc()
        if event == "returned":
            self.counts.returned += 1
        elif event == "expired":
            self.counts.expired += 1
        elif event == "discarded":
            self.counts.discarded += 1
        log.log(
            level, "lease %s (clip %s) %s: %s", job.lease.lease_id, job.lease.clip_id, event, why
        )
        self._forget(job)

    def _forget(self, job: _Job) -> None:
        if job.fetch is not None:
            job.fetch.cancel()
        self._remove_file(job)
        self._jobs.pop(job.lease.lease_id, None)
        self.metrics.in_flight.set(len(self._jobs))

    @staticmethod
    def _remove_file(job: _Job) -> None:
        if job.path is not None:
            job.path.unlink(missing_ok=True)
            job.path = None

    # --- duplicate index -----------------------------------------------------------------

    def _sync_embeddings(self, *, initial: bool) -> None:
        self._next_sync_at = time.monotonic() + self.settings.embeddings_sync_s
        try:
            added = self.engine.sync_embeddings(self.client, self.state)
        except ClientError as exc:
            # Not fatal: the index stays as it is until the next sync.
            log.warning("duplicate index not updated: %s", exc)
            return
        if added or initial:
            log.info("duplicate index: %d accepted clip(s) added", added)

    # --- status --------------------------------------------------------------------------

    def _status(self, now: float) -> None:
        if now < self._next_status_at:
            return
        self._next_status_at = now + self.settings.status_interval_s
        horizon = now - _RATE_WINDOW_S
        self._window = [t for t in self._window if t >= horizon]
        span = min(_RATE_WINDOW_S, max(now - self._started_at, 1e-9))
        line = self.counts.line(in_flight=len(self._jobs), clips_per_s=len(self._window) / span)
        # While idle, one line now and then says the node is alive; not one per interval.
        changed = dataclasses.astuple(self.counts) != self._last_counts
        if (
            changed
            or now >= self._last_status_at + _IDLE_STATUS_EVERY * self.settings.status_interval_s
        ):
            log.info(line)
            self._last_counts = dataclasses.astuple(self.counts)
            self._last_status_at = now

    # --- shutdown ------------------------------------------------------------------------

    def close(self) -> None:
        """Return every lease still held, stop the engine, the endpoint and the session."""
        if self._closed:
            return
        self._closed = True
        self._cancel_fetches.set()
        if self._cosigner is not None:
            # Before the session ends: a round in progress finishes with a working client.
            self._cosigner.close()
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.close()
        if self._client is not None:
            for job in list(self._jobs.values()):
                self._return(job, why="the node stopped before it was reported")
        if self._fetchers is not None:
            self._fetchers.shutdown(wait=True, cancel_futures=True)
        self.metrics.stop()
        if self._client is not None:
            with contextlib.suppress(ClientError):
                self._client.logout()
            self._client.close()
        if self._state is not None:
            self._state.close()
        log.info(
            "stopped: %s",
            self.counts.line(in_flight=len(self._jobs), clips_per_s=self._overall_rate()),
        )

    def _overall_rate(self) -> float:
        if not self._started_at:
            return 0.0
        return self.counts.submitted / max(time.monotonic() - self._started_at, 1e-9)
