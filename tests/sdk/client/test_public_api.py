"""Guards the client's and the CLI's exported names and their exception tree."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import shotbank.cli
import shotbank.client
from shotbank.cli.errors import CliError, StateFileError, StateLockedError
from shotbank.client import (
    ApiError,
    ApiUnavailableError,
    ClientError,
    KeyLoadError,
    NotSignedInError,
    UnexpectedResponseError,
)
from shotbank.errors import ShotbankError


@pytest.mark.parametrize("package", [shotbank.client, shotbank.cli])
def test_every_module_declares_all_and_exports_what_it_declares(package: object) -> None:
    for module in [package, *(
        importlib.import_module(f"{package.__name__}.{info.name}")  # type: ignore[attr-defined]
        for info in pkgutil.iter_modules(package.__path__)  # type: ignore[attr-defined]
        if not info.name.startswith("_")
    )]:  # fmt: skip
        assert hasattr(module, "__all__"), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_the_exception_trees_hang_under_shotbank_error() -> None:
    for error in (ApiError, ApiUnavailableError, UnexpectedResponseError, NotSignedInError,
                  KeyLoadError):  # fmt: skip
        assert issubclass(error, ClientError)
    assert issubclass(ClientError, ShotbankError)
    assert issubclass(ApiUnavailableError, ConnectionError)
    assert issubclass(KeyLoadError, ValueError)
    assert issubclass(StateFileError, CliError)
    assert issubclass(StateLockedError, CliError)
    assert issubclass(CliError, ShotbankError)


def test_the_client_and_the_cli_pull_in_no_server_packages() -> None:
    server = ("fastapi", "sqlmodel", "sqlalchemy", "torch", "backend", "ingest", "av")
    code = (
        "import sys, shotbank.client, shotbank.cli; "
        f"print(','.join(m for m in {server!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
