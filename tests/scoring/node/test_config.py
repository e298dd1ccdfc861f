"""Node settings: environment, config file, precedence, and no keys anywhere but key files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from scoring.node.config import DEFAULT_METRICS_PORT, NodeSettings
from scoring.node.errors import NodeConfigError

DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_defaults_name_a_real_model_and_listen_on_loopback_only() -> None:
    settings = NodeSettings()
    assert (settings.model, settings.pretrained) == ("ViT-B-32", "laion2b_s34b_b79k")
    assert settings.weights_source == "laion2b_s34b_b79k"
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", DEFAULT_METRICS_PORT)
    assert settings.metrics_enabled
    assert settings.device is None
    assert settings.precision is None


def test_environment_variables_set_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOTBANK_VALIDATOR_MODEL", "shotbank-tiny")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_PRETRAINED", "synthetic-v1")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_WORKERS", "0")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_METRICS_PORT", "0")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_DEVICE", "auto")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_WEIGHTS_DIRS", '["/models", "/more"]')
    settings = NodeSettings()
    assert (settings.model, settings.pretrained, settings.workers) == (
        "shotbank-tiny",
        "synthetic-v1",
        0,
    )
    assert not settings.metrics_enabled
    assert settings.device is None
    assert settings.weights_dirs == (Path("/models"), Path("/more"))


def test_the_api_url_comes_from_the_shared_variable_unless_the_validator_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOTBANK_API_URL", "http://shared.test:8000/")
    assert NodeSettings().api_url == "http://shared.test:8000"
    monkeypatch.setenv("SHOTBANK_VALIDATOR_API_URL", "https://validators.test")
    assert NodeSettings().api_url == "https://validators.test"


def test_a_toml_file_is_read_and_the_environment_and_options_override_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        'api_url = "http://file.test:8000"\nworkers = 3\nmax_leases = 9\n'
        f'weights_sha256 = "{"AB" * 32}"\nstate_dir = "/srv/validator"\n'
    )
    settings = NodeSettings(config_file=config)
    assert (settings.api_url, settings.workers, settings.max_leases) == (
        "http://file.test:8000",
        3,
        9,
    )
    assert settings.weights_sha256 == "ab" * 32  # a hash in a file is fine, and normalised
    assert settings.state_dir == Path("/srv/validator")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_WORKERS", "5")
    assert NodeSettings(config_file=config).workers == 5
    assert NodeSettings(config_file=config, workers=1).workers == 1
    monkeypatch.setenv("SHOTBANK_VALIDATOR_CONFIG_FILE", str(config))
    assert NodeSettings().max_leases == 9


def test_a_json_file_works_like_toml(tmp_path: Path) -> None:
    config = tmp_path / "node.json"
    config.write_text(json.dumps({"metrics_port": 0, "ray_address": "auto"}))
    settings = NodeSettings(config_file=config)
    assert not settings.metrics_enabled
    assert settings.ray_address == "auto"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("node.toml", f'private_key = "{DEV_KEY}"\n', "key material"),
        ("node.toml", f'note = "{DEV_KEY[2:]}"\n', "key material"),
        ("node.json", json.dumps({"key_password": "hunter2"}), "key material"),
        ("node.toml", "workers = [\n", "not valid TOML"),
        ("node.yaml", "workers: 1\n", "must end in .toml or .json"),
        ("node.json", "[1, 2]", "table of settings"),
    ],
)
def test_config_files_with_keys_or_broken_syntax_are_refused(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    config = tmp_path / name
    config.write_text(content)
    with pytest.raises(NodeConfigError, match=message) as caught:
        NodeSettings(config_file=config)
    assert DEV_KEY[2:] not in str(caught.value)


def test_a_missing_or_oversized_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NodeConfigError, match="does not exist"):
        NodeSettings(config_file=tmp_path / "absent.toml")
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 70_000 + "\n")
    with pytest.raises(NodeConfigError, match="limit"):
        NodeSettings(config_file=big)


def test_unknown_settings_and_bad_values_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text("wrokers = 2\n")
    with pytest.raises(ValidationError, match="wrokers"):
        NodeSettings(config_file=config)
    with pytest.raises(ValidationError, match="api_url"):
        NodeSettings(api_url="ftp://backend.test")
    with pytest.raises(ValidationError, match="max_leases"):
        NodeSettings(max_leases=0)
    with pytest.raises(ValidationError, match="metrics_port"):
        NodeSettings(metrics_port=70_000)


def test_a_weights_file_replaces_the_tag(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    settings = NodeSettings(weights_file=weights, weights_sha256="0" * 64)
    assert settings.weights_source == weights
