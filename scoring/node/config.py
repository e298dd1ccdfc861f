"""The validator node's settings: one object, from ``SHOTBANK_VALIDATOR_*``, a file, defaults.

Precedence, highest first: values passed in (the CLI's options), environment variables,
the config file (``--config FILE`` or ``SHOTBANK_VALIDATOR_CONFIG_FILE``: TOML or JSON,
keys are the field names below), the defaults. The backend's URL also comes from the
SDK's shared ``SHOTBANK_API_URL`` (``SHOTBANK_VALIDATOR_API_URL`` wins when both are set).

The wallet key is **not** a setting: it comes from a key file (``key_file`` here,
``--key-file`` or ``SHOTBANK_KEY_FILE``) or ``SHOTBANK_PRIVATE_KEY``, resolved by the CLI's
:mod:`shotbank.cli.credentials`. A config file holding a key, or anything shaped like one,
is refused.

=================================== =======================================================
``SHOTBANK_VALIDATOR_RPC_URL``      chain RPC for the on-chain stake check
``SHOTBANK_VALIDATOR_MODEL``        open_clip architecture (default ``ViT-B-32``)
``SHOTBANK_VALIDATOR_PRETRAINED``   weights registry tag (default ``laion2b_s34b_b79k``)
``SHOTBANK_VALIDATOR_WEIGHTS_FILE`` a local weights file instead of the tag
``SHOTBANK_VALIDATOR_WEIGHTS_SHA256`` the SHA-256 the weights must have
``SHOTBANK_VALIDATOR_DEVICE``       ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
``SHOTBANK_VALIDATOR_PRECISION``    ``auto``, ``fp32``, ``fp16``, ``bf16``, ``amp_bf16``
``SHOTBANK_VALIDATOR_WORKERS``      decode worker processes (0: decode in the node)
``SHOTBANK_VALIDATOR_BATCH_SIZE``   clips per inference batch
``SHOTBANK_VALIDATOR_MAX_LEASES``   leases held at once (fetching, scoring, submitting)
``SHOTBANK_VALIDATOR_METRICS_PORT`` Prometheus endpoint port (0 disables; host: ``METRICS_HOST``)
``SHOTBANK_VALIDATOR_STATE_DIR``    duplicate index, signed-report journal, temp files
``SHOTBANK_VALIDATOR_RAY_ADDRESS``  scale inference out over a Ray cluster
``SHOTBANK_VALIDATOR_EPOCH_POLL_S`` seconds between looks for closed epochs to co-sign (0: off)
=================================== =======================================================
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from scoring.node.errors import NodeConfigError
from shotbank.client.keys import looks_like_private_key
from shotbank.client.settings import DEFAULT_API_URL

__all__ = [
    "DEFAULT_METRICS_PORT",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "MAX_CONFIG_FILE_BYTES",
    "NodeSettings",
]

DEFAULT_MODEL: Final = "ViT-B-32"
DEFAULT_PRETRAINED: Final = "laion2b_s34b_b79k"
#: Prometheus' registry of default ports lists 9464 for OpenTelemetry-style exporters.
DEFAULT_METRICS_PORT: Final = 9464
#: A config file is a few hundred bytes; anything far larger is a mistake.
MAX_CONFIG_FILE_BYTES: Final = 64 * 1024
#: Names that would hold key material: refused in a config file with a pointed message.
_KEY_NAMES: Final = frozenset({"private_key", "key", "key_password", "password", "mnemonic"})
#: Settings whose values are 64 hex digits by design (a SHA-256), not keys.
_HASH_FIELDS: Final = frozenset({"weights_sha256"})
_AUTO: Final = "auto"


def _http_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an http:// or https:// URL")
    return value.rstrip("/")


def _read_config_file(path: Path) -> dict[str, Any]:
    """The settings a TOML or JSON config file holds (a flat table of field names)."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_FILE_BYTES:
            raise NodeConfigError(
                f"config file {path} is {size} bytes; the limit is {MAX_CONFIG_FILE_BYTES}"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NodeConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise NodeConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            document: Any = tomllib.loads(raw.decode("utf-8"))
        elif suffix == ".json":
            document = json.loads(raw)
        else:
            raise NodeConfigError(f"config file {path} must end in .toml or .json")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, NodeConfigError):
            raise
        raise NodeConfigError(
            f"config file {path} is not valid {suffix[1:].upper()}: {exc}"
        ) from None
    if not isinstance(document, dict):
        raise NodeConfigError(f"config file {path} must hold a table of settings")
    _refuse_keys(document, path)
    return document


def _refuse_keys(document: Mapping[str, Any], path: Path) -> None:
    for name, value in document.items():
        shaped_like_key = isinstance(value, str) and looks_like_private_key(value)
        if name.lower() in _KEY_NAMES or (shaped_like_key and name not in _HASH_FIELDS):
            raise NodeConfigError(
                f"config file {path}: {name!r} would put key material in the config file; "
                "keys are read only from a key file (key_file = PATH, --key-file, "
                "SHOTBANK_KEY_FILE) or SHOTBANK_PRIVATE_KEY. If that was a real key, "
                "consider it exposed."
            )


class NodeSettings(BaseSettings):
    """Everything ``shotbank validator run`` is configured with (see the module docstring)."""

    model_config = SettingsConfigDict(
        env_prefix="SHOTBANK_VALIDATOR_", extra="forbid", frozen=True, populate_by_name=True
    )

    config_file: Path | None = None
    """The TOML/JSON file the other settings were read from (``None``: none)."""

    # --- where ---------------------------------------------------------------------------
    api_url: str = Field(
        DEFAULT_API_URL,
        max_length=2048,
        validation_alias=AliasChoices("api_url", "SHOTBANK_VALIDATOR_API_URL", "SHOTBANK_API_URL"),
    )
    """Base URL of the backend, without ``/api/v1``."""
    rpc_url: str = Field("http://127.0.0.1:8545", max_length=2048)
    """Chain RPC the node checks its own stake through (the registry comes from the backend)."""
    key_file: Path | None = None
    """A file holding the wallet's key (hex or an encrypted JSON keystore); a path, never a key."""

    # --- the model -----------------------------------------------------------------------
    model: str = Field(DEFAULT_MODEL, min_length=1, max_length=100)
    """The open_clip architecture."""
    pretrained: str = Field(DEFAULT_PRETRAINED, min_length=1, max_length=100)
    """A tag of the weights registry (``scoring/pretrained.json``)."""
    weights_file: Path | None = None
    """A local weights file, used instead of ``pretrained``."""
    weights_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    """The SHA-256 the weights must have; needed for a file the registry does not pin."""
    weights_dirs: tuple[Path, ...] = Field((), max_length=16)
    """Folders searched for a tag's weights file before the package's own."""
    device: str | None = Field(None, max_length=32)
    """``None``/``auto``: the fastest the machine has."""
    precision: str | None = Field(None, max_length=16)
    """``None``/``auto``: the best for the device."""

    # --- throughput ----------------------------------------------------------------------
    workers: int = Field(2, ge=0, le=64)
    """Decode worker processes (0: decode in the node's own process)."""
    batch_size: int = Field(8, ge=1, le=512)
    """Clips per batched inference step."""
    max_leases: int = Field(4, ge=1, le=256)
    """Leases held at once, whatever their stage (fetching, scoring, submitting)."""
    fetch_threads: int = Field(2, ge=1, le=32)
    """Clips downloaded at once."""
    ray_address: str | None = Field(None, max_length=2048)
    """A Ray cluster (``ray://host:10001``, ``auto``) to run inference on, one actor per GPU."""

    # --- pacing --------------------------------------------------------------------------
    poll_interval_s: float = Field(2.0, gt=0, le=300)
    """Pause before asking for jobs again when there were none (or the backend said longer)."""
    shutdown_grace_s: float = Field(10.0, ge=0, le=600)
    """On SIGINT/SIGTERM: how long clips already being scored may finish and be reported."""
    expiry_margin_s: float = Field(5.0, ge=0, le=600)
    """A lease this close to its deadline is given up rather than reported late."""
    api_timeout_s: float = Field(30.0, gt=0, le=600)
    """Seconds one API exchange may take."""
    fetch_timeout_s: float = Field(60.0, gt=0, le=3600)
    """Seconds a media download may stall (connect, or between two reads)."""
    fetch_attempts: int = Field(3, ge=1, le=10)
    """Tries per media download before the lease is returned."""
    max_clip_bytes: int = Field(4 * 1024**3, ge=1, le=1024**4)
    """Largest clip the node downloads, whatever the lease says."""
    status_interval_s: float = Field(10.0, gt=0, le=3600)
    """How often a status line (counts, clips/s) is printed."""
    embeddings_sync_s: float = Field(300.0, gt=0, le=86_400)
    """How often the duplicate index is brought up to date with accepted clips."""
    epoch_poll_s: float = Field(10.0, ge=0, le=3600)
    """How often closed epochs are looked for, verified and co-signed (0: never; a node
    that does not co-sign leaves its stake out of every root's quorum)."""

    # --- observability and state ---------------------------------------------------------
    metrics_host: str = Field("127.0.0.1", min_length=1, max_length=253)
    """Interface the metrics endpoint listens on (loopback unless asked)."""
    metrics_port: int = Field(DEFAULT_METRICS_PORT, ge=0, le=65535)
    """Port of the Prometheus endpoint; 0 disables it."""
    state_dir: Path = Path("var/validator")
    """Duplicate index, the journal of signed reports, downloads in progress."""

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return _http_url(value, "api_url")

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, value: str) -> str:
        return _http_url(value, "rpc_url")

    @field_validator("device", "precision")
    @classmethod
    def _auto_is_none(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", _AUTO):
            return None
        return value.strip()

    @field_validator("ray_address")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        # Ray's own "auto" (the local cluster) is kept as it is.
        return value.strip() or None if value is not None else None

    @field_validator("weights_sha256")
    @classmethod
    def _lower_hex(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @property
    def weights_source(self) -> str | Path:
        """What :func:`scoring.models.load_model` is given: the file when set, else the tag."""
        return self.weights_file if self.weights_file is not None else self.pretrained

    @property
    def metrics_enabled(self) -> bool:
        """Whether the Prometheus endpoint is served."""
        return self.metrics_port != 0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values passed in, then the environment, then the config file they name."""
        path: Any = None
        if isinstance(init_settings, InitSettingsSource):
            path = init_settings.init_kwargs.get("config_file")
        if path is None:
            path = env_settings().get("config_file")
        if path is None:
            return (init_settings, env_settings)
        values = _read_config_file(Path(path))
        values.pop("config_file", None)  # a file naming another file is not followed
        return (init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=values))
