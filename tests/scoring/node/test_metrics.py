"""The Prometheus endpoint: real HTTP, the text format, one registry per node."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scoring.node.metrics import NodeMetrics


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_endpoint_serves_prometheus_text_and_stops(free_tcp_port: int) -> None:
    metrics = NodeMetrics()
    metrics.leases.labels(event="leased").inc(3)
    metrics.reports_refused.labels(code="lease_expired").inc()
    metrics.fetch_bytes.inc(1234)
    metrics.fetch_seconds.observe(0.2)
    metrics.in_flight.set(2)
    metrics.stake_wei.set(100 * 10**18)
    metrics.serve("127.0.0.1", free_tcp_port)
    try:
        assert metrics.port == free_tcp_port
        response = httpx.get(f"http://127.0.0.1:{free_tcp_port}/metrics", timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)
    finally:
        metrics.stop()
    assert samples[("shotbank_validator_leases_total", (("event", "leased"),))] == 3
    assert samples[("shotbank_validator_leases_total", (("event", "returned"),))] == 0
    assert samples[("shotbank_validator_reports_refused_total", (("code", "lease_expired"),))] == 1
    assert samples[("shotbank_validator_fetch_bytes_total", ())] == 1234
    assert samples[("shotbank_validator_fetch_seconds_count", ())] == 1
    assert samples[("shotbank_validator_in_flight", ())] == 2
    assert samples[("shotbank_validator_stake_wei", ())] == 100 * 10**18
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{free_tcp_port}/metrics", timeout=2)


def test_two_nodes_in_one_process_keep_their_numbers_apart() -> None:
    first, second = NodeMetrics(), NodeMetrics()
    first.cid_mismatches.inc()
    assert (
        _samples(first.exposition().decode())[("shotbank_validator_cid_mismatches_total", ())] == 1
    )
    assert (
        _samples(second.exposition().decode())[("shotbank_validator_cid_mismatches_total", ())] == 0
    )
