"""Guards ingest's exported names and the error codes others depend on."""

from __future__ import annotations

import importlib
import pkgutil

import ingest
import ingest.errors
from ingest.errors import IngestError, error_for_code


def test_every_exported_name_exists() -> None:
    for info in pkgutil.iter_modules(ingest.__path__):
        module = importlib.import_module(f"ingest.{info.name}")
        assert hasattr(module, "__all__"), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    for name in ingest.__all__:
        assert hasattr(ingest, name), name


def _tree(cls: type[IngestError]) -> list[type[IngestError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _tree(child))]


def test_reason_codes_are_unique_and_round_trip() -> None:
    classes = _tree(IngestError)
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert error_for_code(cls.code) is cls
    assert error_for_code("no.such.code") is IngestError


def test_published_codes_do_not_change() -> None:
    published = {
        "EmptyFileError": "media.empty",
        "UnsupportedContainerError": "media.unsupported_container",
        "PlaylistError": "media.playlist",
        "TruncatedMediaError": "media.truncated",
        "TooManyStreamsError": "media.too_many_streams",
        "ResolutionOutOfBoundsError": "media.resolution_out_of_bounds",
        "ProbeTimeoutError": "media.probe_timeout",
        "ProbeResourceLimitError": "media.probe_resource_limit",
        "BlobIntegrityError": "blob.integrity_mismatch",
    }
    for name, code in published.items():
        assert getattr(ingest.errors, name).code == code


def test_every_error_is_drawn_in_the_errors_docstring() -> None:
    doc = ingest.errors.__doc__ or ""
    for cls in _tree(IngestError):
        assert cls.__name__ in doc, cls.__name__
        assert cls.code in doc, cls.code
