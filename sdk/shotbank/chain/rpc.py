"""Connecting to a node: retries for reads on an allow-list, clear errors when it is down.

Only idempotent reads are retried (:data:`READ_METHODS`), with capped exponential
backoff and jitter. Anything else -- above all ``eth_sendRawTransaction`` -- is tried
once: web3.py's own default allow-list retries sends, which we do not want, because a
send that timed out may have reached the node. The outbox resolves such an outcome by
reconciling the stored transaction hash instead.

When the node cannot be reached the caller gets :class:`NodeUnavailableError` (also a
``ConnectionError``) naming the method and endpoint, instead of a ``requests`` stack.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Final

import requests
from eth_typing import URI
from pydantic import BaseModel, ConfigDict, Field
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

from shotbank.chain.errors import ChainIdMismatchError, NodeUnavailableError, RpcError

__all__ = [
    "READ_METHODS",
    "RetryPolicy",
    "RetryingHTTPProvider",
    "connect",
]

#: JSON-RPC methods that do not change state and may be repeated freely.
READ_METHODS: Final = frozenset(
    {
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getCode",
        "eth_getLogs",
        "eth_getStorageAt",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_maxPriorityFeePerGas",
        "eth_syncing",
        "net_version",
        "web3_clientVersion",
    }
)

#: HTTP statuses worth another try for a read (overload and gateway trouble).
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


class RetryPolicy(BaseModel):
    """How reads are retried and how long one HTTP exchange may take."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=5, ge=1, le=20)
    backoff_s: float = Field(default=0.1, ge=0, le=10)
    max_backoff_s: float = Field(default=2.0, ge=0, le=60)
    timeout_s: float = Field(default=10.0, gt=0, le=300)


class RetryingHTTPProvider(HTTPProvider):
    """An :class:`~web3.HTTPProvider` that retries reads only, and names its failures."""

    def __init__(
        self,
        endpoint_uri: str,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Talk to ``endpoint_uri`` with ``policy`` (defaults: 5 attempts, 10 s timeout)."""
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        super().__init__(
            endpoint_uri,
            request_kwargs={"timeout": self.policy.timeout_s},
            exception_retry_configuration=None,
        )

    def _delay(self, attempt: int) -> float:
        base = min(self.policy.max_backoff_s, self.policy.backoff_s * float(1 << attempt))
        # Jitter spreads retries of many clients; not security relevant.
        return base * (0.5 + random.random() / 2)  # noqa: S311

    def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        attempts = self.policy.attempts if method in READ_METHODS else 1
        endpoint = str(self.endpoint_uri)
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                response: bytes = self._request_session_manager.make_post_request(
                    URI(endpoint), request_data, **self.get_request_kwargs()
                )
                return response
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status not in _RETRY_STATUSES:
                    raise RpcError(f"{method} to {endpoint} failed with HTTP {status}") from exc
                last = exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = exc
            if attempt + 1 < attempts:
                self._sleep(self._delay(attempt))
        tries = "once" if attempts == 1 else f"{attempts} times"
        raise NodeUnavailableError(
            f"node at {endpoint} unreachable for {method} (tried {tries}): {last}",
            method=str(method),
            endpoint=endpoint,
        ) from last


def connect(
    url: str,
    *,
    expected_chain_id: int | None = None,
    policy: RetryPolicy | None = None,
    **provider_kwargs: Any,
) -> Web3:
    """A :class:`~web3.Web3` on ``url`` with read retries; checks the chain id if given.

    Raises :class:`NodeUnavailableError` if the node cannot be reached for the check and
    :class:`ChainIdMismatchError` if it serves another chain.
    """
    w3 = Web3(RetryingHTTPProvider(url, policy=policy, **provider_kwargs))
    if expected_chain_id is not None:
        actual = w3.eth.chain_id
        if actual != expected_chain_id:
            raise ChainIdMismatchError(
                f"node at {url} serves chain {actual}, expected {expected_chain_id}"
            )
    return w3
