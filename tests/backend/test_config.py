"""Settings: embedded defaults for development, refusal of insecure ones elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from backend.core.config import Settings

STRONG_KEY = "k" * 16 + "9f3c1e0a7b2d4c6e8f0a1b2c3d4e5f60"


def test_defaults_are_loopback_development_on_sqlite_under_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.environment == "development"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.chain_id == 31337
    assert str(settings.chain_rpc_url) == "http://127.0.0.1:8545/"
    assert settings.var_dir == tmp_path / "var"
    assert settings.database_url_value.get_backend_name() == "sqlite"
    assert settings.database_url_value.database == str(tmp_path / "var" / "shotbank.db")
    assert settings.deployments_path == tmp_path / "var" / "deployments.json"


def test_settings_are_read_from_shotbank_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOTBANK_PORT", "8123")
    monkeypatch.setenv("SHOTBANK_CHAIN_ID", "5")
    monkeypatch.setenv("PORT", "1")
    settings = Settings()
    assert (settings.port, settings.chain_id) == (8123, 5)


def test_development_generates_a_random_secret_key_per_process() -> None:
    first, second = Settings(), Settings()
    assert len(first.secret_key.get_secret_value()) >= 32
    assert first.secret_key != second.secret_key


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_outside_development_a_missing_secret_key_is_refused(environment: str) -> None:
    with pytest.raises(ValidationError, match="SHOTBANK_SECRET_KEY must be set"):
        Settings(environment=environment)


@pytest.mark.parametrize("key", ["changethis", "short-but-random-9f3c", "CHANGETHIS"])
def test_outside_development_a_weak_secret_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 random characters"):
        Settings(environment="production", secret_key=key)


def test_outside_development_a_secret_key_from_the_environment_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOTBANK_ENVIRONMENT", "production")
    monkeypatch.setenv("SHOTBANK_SECRET_KEY", STRONG_KEY)
    settings = Settings()
    assert settings.secret_key.get_secret_value() == STRONG_KEY
    assert STRONG_KEY not in repr(settings)


def test_database_url_is_secret_and_displayed_without_password() -> None:
    settings = Settings(database_url="postgresql+psycopg://app:hunter2@db.internal:5432/shotbank")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.database_url_display
    assert settings.database_url_value.password == "hunter2"


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", 0), ("port", 70000), ("chain_id", 0), ("git_commit", "not-a-sha"),
     ("environment", "prod"), ("max_concurrency", 0)],
)  # fmt: skip
def test_out_of_range_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 9000  # type: ignore[misc]


def test_ingest_limits_default_to_the_products_probe_limits() -> None:
    from ingest.probe import ProbeLimits

    settings = Settings()
    assert settings.probe_limits == ProbeLimits()
    assert (settings.ingest_workers, settings.ingest_max_attempts) == (1, 2)
    tight = Settings(ingest_max_duration_s=30, ingest_wall_seconds=5, ingest_max_streams=2)
    limits = tight.probe_limits
    assert (limits.max_duration_s, limits.wall_seconds, limits.max_streams) == (30, 5, 2)


@pytest.mark.parametrize(
    "values",
    [
        {"ingest_min_duration_s": 60, "ingest_max_duration_s": 30},
        {"ingest_stale_s": 100, "ingest_wall_seconds": 120},
        {"ingest_workers": -1},
    ],
)
def test_inconsistent_ingest_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"SHOTBANK_INGEST|greater"):
        Settings(**values)
