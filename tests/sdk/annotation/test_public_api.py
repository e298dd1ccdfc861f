"""Guards the annotation package's exported names and its light dependencies."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import shotbank.annotation


def test_every_exported_name_exists() -> None:
    for name in shotbank.annotation.__all__:
        assert hasattr(shotbank.annotation, name), name


def test_every_public_module_declares_all_and_documents_its_exports() -> None:
    for info in pkgutil.iter_modules(shotbank.annotation.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"shotbank.annotation.{info.name}")
        assert module.__doc__, module.__name__
        assert hasattr(module, "__all__"), module.__name__
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and not name.isupper():
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"


def test_backend_facing_names_are_stable() -> None:
    from shotbank.annotation import Annotation

    assert list(Annotation.model_fields) == [
        "schema_version",
        "scene",
        "camera",
        "lighting",
        "audio",
        "rights",
    ]
    assert shotbank.annotation.parse_camera_path_text.__code__.co_kwonlyargcount == 6
    assert shotbank.annotation.validate_against_media.__code__.co_kwonlyargcount == 2


def test_importing_annotation_pulls_in_no_heavy_packages() -> None:
    heavy = (
        "numpy",
        "fastapi",
        "sqlmodel",
        "sqlalchemy",
        "torch",
        "backend",
        "multiformats",
        "jsonschema",
    )
    code = (
        "import sys, shotbank.annotation; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
