"""Shotbank SDK: the chain layer, the backend's API client (``shotbank.client``) and the
``shotbank`` command line for contributors, and (later) dataset access for trainers.

The SDK is its own light distribution: it needs web3.py, eth-account, siwe and pydantic,
never the server (no FastAPI, no database server, no torch).
"""

from shotbank.errors import ShotbankError

__all__ = ["ShotbankError", "__version__"]

__version__ = "0.1.0"
