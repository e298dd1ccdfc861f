"""The error tree and its one handler: stable codes, one JSON envelope for every error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from backend import errors
from backend.core.config import Settings
from backend.main import create_app

#: Published codes and statuses; changing one breaks API clients, so it must be deliberate.
PUBLISHED = {
    errors.BackendError: ("internal_error", 500),
    errors.ConfigurationError: ("configuration_error", 500),
    errors.DependencyUnavailableError: ("dependency_unavailable", 503),
    errors.SignedRequestRejectedError: ("invalid_authorization", 401),
    errors.RequestSignatureInvalidError: ("request_signature_invalid", 401),
    errors.RequestExpiredError: ("request_expired", 401),
    errors.RequestReplayedError: ("request_replayed", 401),
    errors.InvalidInputError: ("invalid_input", 422),
    errors.NotFoundError: ("not_found", 404),
    errors.ConflictError: ("conflict", 409),
    errors.AuthenticationError: ("unauthenticated", 401),
    errors.PermissionDeniedError: ("permission_denied", 403),
    errors.LimitExceededError: ("limit_exceeded", 413),
    errors.BadRequestError: ("bad_request", 400),
    errors.InvalidCidError: ("invalid_cid", 400),
    errors.BlobNotFoundError: ("blob_not_found", 404),
    errors.BlobDamagedError: ("blob_damaged", 503),
}


class _ClipNotFoundError(errors.NotFoundError):
    code = "clip_not_found"


@pytest.fixture
def raising_client(settings: Settings) -> Iterator[TestClient]:
    """The real app plus routes that raise, as future routes and services will."""
    app: FastAPI = create_app(settings)

    @app.get("/api/test/raise/{name}")
    def raise_named(name: str) -> None:
        cls = {cls.__name__: cls for cls in PUBLISHED} | {"ClipNotFound": _ClipNotFoundError}
        raise cls[name](f"{name} happened.")

    @app.get("/api/test/crash")
    def crash() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @app.get("/api/test/limited")
    def limited(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> int:
        return limit

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_every_error_class_has_its_published_code_and_status() -> None:
    for cls, (code, status) in PUBLISHED.items():
        assert cls.code == code
        assert errors.http_status_for(cls("x")) == status


def test_codes_are_unique_across_the_tree() -> None:
    def subclasses(cls: type[errors.BackendError]) -> Iterator[type[errors.BackendError]]:
        for sub in cls.__subclasses__():
            if sub.__module__ == errors.__name__:
                yield sub
                yield from subclasses(sub)

    codes = [errors.BackendError.code, *(cls.code for cls in subclasses(errors.BackendError))]
    assert len(codes) == len(set(codes))


def test_value_and_lookup_errors_are_also_builtin_errors() -> None:
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.NotFoundError, LookupError)


@pytest.mark.parametrize("cls", list(PUBLISHED), ids=lambda cls: cls.__name__)
def test_domain_error_becomes_its_status_and_envelope(
    raising_client: TestClient, cls: type[errors.BackendError]
) -> None:
    response = raising_client.get(f"/api/test/raise/{cls.__name__}")
    code, status = PUBLISHED[cls]
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": f"{cls.__name__} happened."}}


def test_subclass_narrows_the_code_and_keeps_the_status(raising_client: TestClient) -> None:
    response = raising_client.get("/api/test/raise/ClipNotFound")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "clip_not_found"


def test_request_validation_error_lists_problems_without_echoing_input(
    raising_client: TestClient,
) -> None:
    response = raising_client.get("/api/test/limited", params={"limit": "1000000"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "The request is invalid (1 problem)."
    assert error["details"][0]["loc"] == ["query", "limit"]
    assert "1000000" not in response.text


def test_unknown_route_and_wrong_method_use_the_envelope(raising_client: TestClient) -> None:
    missing = raising_client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "Not Found"}}
    wrong = raising_client.delete("/api/v1/health")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"]


def test_unexpected_exception_is_a_500_that_leaks_nothing(raising_client: TestClient) -> None:
    response = raising_client.get("/api/test/crash")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "An internal error occurred."}
    }
    assert "hunter2" not in response.text


def test_range_not_satisfiable_carries_the_size_in_content_range() -> None:
    error = errors.RangeNotSatisfiableError("No.", size=42)
    assert error.code == "range_not_satisfiable"
    assert errors.http_status_for(error) == 416
    assert error.headers == {"Content-Range": "bytes */42"}
