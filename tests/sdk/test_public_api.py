"""Guards the SDK's exported names: additions are deliberate, removals are breaking."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import shotbank
import shotbank.chain


def test_every_exported_name_exists() -> None:
    for module in (shotbank, shotbank.chain):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_chain_module_declares_all_and_exports_what_it_declares() -> None:
    for info in pkgutil.iter_modules(shotbank.chain.__path__):
        module = importlib.import_module(f"shotbank.chain.{info.name}")
        assert hasattr(module, "__all__"), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_backend_facing_signatures_are_stable() -> None:
    from shotbank.chain import deploy, deployments

    assert list(deployments.Deployment.model_fields) == ["chain_id", "start_block", "contracts"]
    assert deploy.deploy_all.__kwdefaults__ == {"params": None}
    assert deploy.deploy_all.__code__.co_kwonlyargcount == 3


def test_importing_the_sdk_pulls_in_no_server_packages() -> None:
    server = ("fastapi", "sqlmodel", "sqlalchemy", "torch", "backend")
    code = (
        "import sys, shotbank, shotbank.chain; "
        f"print(','.join(m for m in {server!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
