"""Shotbank SDK: the chain layer for validators and trainers, and (later) dataset access.

The SDK is its own light distribution: it needs web3.py, eth-account, siwe and pydantic,
never the server (no FastAPI, no database server, no torch).
"""

from shotbank.errors import ShotbankError

__all__ = ["ShotbankError", "__version__"]

__version__ = "0.1.0"
