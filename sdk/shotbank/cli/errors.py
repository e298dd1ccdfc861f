"""Exceptions of the command-line interface, as one tree.

::

    ShotbankError
    └── CliError
        ├── StateFileError      the state file cannot be read or written (I/O, newer version)
        └── StateLockedError    another run is using the same state file right now

A state file that is merely corrupt is not an error: it is set aside and rebuilt (what
it recorded is found again through idempotent requests and duplicate detection).
"""

from __future__ import annotations

from shotbank.errors import ShotbankError

__all__ = ["CliError", "StateFileError", "StateLockedError"]


class CliError(ShotbankError):
    """Base class of every error raised by :mod:`shotbank.cli`."""


class StateFileError(CliError):
    """The state file cannot be read or written."""


class StateLockedError(CliError):
    """Another ``shotbank contribute`` holds the lock of the same state file."""
