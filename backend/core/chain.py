"""The backend's connection to its chain node."""

from __future__ import annotations

from web3 import HTTPProvider, Web3

from backend.core.config import Settings


def create_web3(settings: Settings) -> Web3:
    """A web3 client for ``settings.chain_rpc_url`` with a bounded timeout.

    Requests are not retried here: the callers that may retry (idempotent reads) decide so
    themselves, and a health check must report a dead node quickly.
    """
    provider = HTTPProvider(
        str(settings.chain_rpc_url),
        request_kwargs={"timeout": settings.chain_rpc_timeout_s},
        exception_retry_configuration=None,
    )
    return Web3(provider)
