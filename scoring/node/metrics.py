"""What the validator node exposes to Prometheus (``GET /metrics`` on the metrics port).

Every node owns its registry (not prometheus_client's process-wide default), so several
nodes in one process -- tests, a multi-key operator -- never mix their numbers.

======================================================= ====================================
``shotbank_validator_leases_total{event}``              ``leased``, ``returned`` (given
                                                        back), ``expired`` (let go, too late),
                                                        ``discarded`` (bad content, bad
                                                        annotation)
``shotbank_validator_reports_submitted_total{outcome}`` accepted reports, ``scored``/``failed``
``shotbank_validator_reports_refused_total{code}``      refused reports by the API error code
``shotbank_validator_fetch_bytes_total``                media bytes downloaded
``shotbank_validator_cid_mismatches_total``             downloads whose bytes were not the
                                                        leased content
``shotbank_validator_failures_total{stage}``            ``fetch``, ``score``, ``submit``,
                                                        ``lease``, ``epochs``: errors that
                                                        lost a job or a round
``shotbank_validator_fetch_seconds``                    download + verification time
``shotbank_validator_score_seconds``                    from handing a clip to the scorer to
                                                        its verdict
``shotbank_validator_submit_seconds``                   signing + ``POST /validator/reports``
``shotbank_validator_in_flight``                        leases held now
``shotbank_validator_stake_wei``                        own active stake at the last check
``shotbank_validator_epochs_signed_total``              epoch roots verified, signed and
                                                        handed in
``shotbank_validator_epochs_refused_total{reason}``     closed epochs whose root the node
                                                        refused to sign: ``funded_total``,
                                                        ``previous_cumulative``, ``root``,
                                                        ``conflict`` (signing record),
                                                        ``inputs``, ``identity``,
                                                        ``rejected`` (by the backend)
======================================================= ====================================
"""

from __future__ import annotations

import threading
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import generate_latest

__all__ = ["EPOCH_REFUSALS", "LEASE_EVENTS", "STAGES", "NodeMetrics"]

LEASE_EVENTS: Final = ("leased", "returned", "expired", "discarded")
STAGES: Final = ("fetch", "score", "submit", "lease", "epochs")
#: Why a closed epoch's root was not signed (labels of ``epochs_refused``).
EPOCH_REFUSALS: Final = (
    "identity",
    "funded_total",
    "previous_cumulative",
    "inputs",
    "root",
    "conflict",
    "rejected",
)
_NAMESPACE: Final = "shotbank_validator"
#: From a fast LAN fetch of a small clip to a slow scoring queue.
_LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class NodeMetrics:
    """The node's counters, histograms and gauges, and the HTTP endpoint serving them."""

    def __init__(self) -> None:
        """Create the metrics in a registry of their own."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.leases = Counter(
            "leases", "Lease events.", ["event"], namespace=_NAMESPACE, registry=r
        )
        self.reports_submitted = Counter(
            "reports_submitted",
            "Reports the backend accepted.",
            ["outcome"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.reports_refused = Counter(
            "reports_refused",
            "Reports the backend refused, by error code.",
            ["code"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.fetch_bytes = Counter(
            "fetch_bytes", "Media bytes downloaded.", namespace=_NAMESPACE, registry=r
        )
        self.cid_mismatches = Counter(
            "cid_mismatches",
            "Downloads whose bytes were not the leased content (CID, SHA-256 or size).",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.failures = Counter(
            "failures", "Errors by stage.", ["stage"], namespace=_NAMESPACE, registry=r
        )
        self.fetch_seconds = Histogram(
            "fetch_seconds",
            "Download and verification of one clip.",
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.score_seconds = Histogram(
            "score_seconds",
            "From handing a clip to the scorer to its verdict.",
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.submit_seconds = Histogram(
            "submit_seconds",
            "Signing and submitting one report.",
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.in_flight = Gauge("in_flight", "Leases held now.", namespace=_NAMESPACE, registry=r)
        self.stake_wei = Gauge(
            "stake_wei",
            "Own active stake in the ValidatorRegistry at the last check (wei).",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.epochs_signed = Counter(
            "epochs_signed",
            "Epoch roots this node verified, signed and handed in.",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.epochs_refused = Counter(
            "epochs_refused",
            "Closed epochs whose published root this node refused to sign, by reason.",
            ["reason"],
            namespace=_NAMESPACE,
            registry=r,
        )
        # Labelled series exist from the start, so a dashboard sees zeros, not gaps.
        for event in LEASE_EVENTS:
            self.leases.labels(event=event)
        for stage in STAGES:
            self.failures.labels(stage=stage)
        for outcome in ("scored", "failed"):
            self.reports_submitted.labels(outcome=outcome)
        for reason in EPOCH_REFUSALS:
            self.epochs_refused.labels(reason=reason)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def exposition(self) -> bytes:
        """The current values in Prometheus' text format."""
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread (until :meth:`stop`)."""
        if self._server is not None:
            raise RuntimeError("the metrics endpoint is already served")
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)

    @property
    def port(self) -> int | None:
        """The port actually listened on (``None`` when not serving)."""
        return None if self._server is None else int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
