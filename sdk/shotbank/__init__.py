"""Shotbank SDK: the chain layer, the backend's API client (``shotbank.client``) and the
``shotbank`` command line, and dataset access for trainers (``shotbank.Client(api_url,
account=...)``: datasets, versions, buy, licences, verified downloads and streams).

The SDK is its own light distribution: it needs web3.py, eth-account, siwe and pydantic,
never the server (no FastAPI, no database server, no torch).
"""

from typing import TYPE_CHECKING, Any

from shotbank.errors import ShotbankError

if TYPE_CHECKING:
    from shotbank.client import Client

__all__ = ["Client", "ShotbankError", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # ``shotbank.Client`` on first use: importing the package stays light.
    if name == "Client":
        from shotbank.client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
