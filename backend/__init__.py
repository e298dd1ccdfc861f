"""Shotbank coordinator service.

The backend runs the marketplace's coordinator: the HTTP API (``backend.api``), its
settings and database plumbing (``backend.core``), the domain services
(``backend.services``) and the local development stack (``backend.devstack``, what
``make up`` runs).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("shotbank-server")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
