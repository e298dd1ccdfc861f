"""The backend's one settings object, read from ``SHOTBANK_*`` environment variables.

Defaults are the embedded development setup (SQLite under ``var/``, the local anvil on
127.0.0.1:8545, chain id 31337). Outside ``environment="development"`` the settings
refuse to start with defaults that are only safe on a developer's machine.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal, Self

from eth_utils.address import is_address, to_checksum_address
from pydantic import (
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from backend.errors import ConfigurationError
from ingest.probe import ProbeLimits

Environment = Literal["development", "staging", "production"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]

#: Secrets that appear in examples and templates; never acceptable outside development.
_WEAK_SECRETS = frozenset({"changethis", "changeme", "secret", "dev", "development", "test"})
_MIN_SECRET_LENGTH = 32
_PROBE_DEFAULTS = ProbeLimits()


class Settings(BaseSettings):
    """Configuration of one backend process.

    Every field can be set through the environment as ``SHOTBANK_<FIELD>`` (for example
    ``SHOTBANK_DATABASE_URL``). Instances are immutable.
    """

    model_config = SettingsConfigDict(
        env_prefix="SHOTBANK_",
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    environment: Environment = "development"
    """``development`` allows the embedded defaults; anything else demands real secrets."""

    secret_key: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(_MIN_SECRET_LENGTH)),
        description="Signs sessions. Random per process in development; required elsewhere.",
    )

    host: str = Field("127.0.0.1", min_length=1, max_length=253)
    """Interface the HTTP server binds to; loopback unless explicitly asked otherwise."""

    port: int = Field(8000, ge=1, le=65535)

    public_url: HttpUrl = HttpUrl("http://127.0.0.1:8000")
    """Where clients reach this API; it prefixes the terms URI of on-chain listings
    (``{public_url}/api/v1/datasets/{id}/terms``)."""

    var_dir: Path = Path("var")
    """Root of local state: the SQLite database, the deployments file, devstack state."""

    database_url: SecretStr | None = None
    """SQLAlchemy URL, e.g. ``postgresql+psycopg://user:pw@host/db``; SQLite under
    ``var_dir`` when unset."""

    auto_migrate: bool = True
    """Apply Alembic migrations up to head when the app starts."""

    db_pool_size: int = Field(5, ge=1, le=100)
    db_max_overflow: int = Field(10, ge=0, le=100)
    db_pool_timeout_s: float = Field(10.0, gt=0, le=120)
    db_connect_timeout_s: int = Field(5, ge=1, le=60)

    chain_rpc_url: HttpUrl = HttpUrl("http://127.0.0.1:8545")
    chain_id: int = Field(31337, ge=1, le=2**53)
    """The chain this deployment serves; its contracts are looked up under this id."""

    chain_rpc_timeout_s: float = Field(3.0, gt=0, le=60)

    chain_confirmations: int = Field(2, ge=0, le=64)
    """Blocks a ValidatorRegistry event must be deep before the stake snapshot shows it
    (the ``make up`` stack, one anvil block a second, sets 1)."""

    chain_poll_s: float = Field(2.0, gt=0, le=300)
    """How long the chain indexer waits when it has caught up, or the node is down."""

    web_dir: Path | None = None
    """The built web app served at ``/`` (``npm run build --prefix web``); the repository's
    ``web/dist`` when unset."""

    deployments_file: Path | None = None
    """Contract addresses by chain id (see docs/decisions/0001); ``var_dir/deployments.json``
    when unset."""

    git_commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,40}$")
    """Commit reported by ``/api/v1/version``; read from the source checkout when unset."""

    max_concurrency: int = Field(256, ge=1, le=10_000)
    """Connections served at once before the server answers 503."""

    keep_alive_timeout_s: int = Field(5, ge=1, le=300)
    max_request_body_bytes: int = Field(64 * 1024, ge=1024, le=64 * 1024**2)
    """Largest body of a non-upload request (JSON); larger ones are answered 413."""
    clip_max_request_body_bytes: int = Field(16 * 1024**2, ge=1024, le=256 * 1024**2)
    """Largest body of ``POST``/``PATCH /api/v1/clips`` (an annotation may carry a camera
    path of up to 10,000 keyframes, or its text form of up to 8,000,000 characters)."""
    log_level: LogLevel = "info"

    # --- sign-in (SIWE) and sessions ---------------------------------------------------

    siwe_domain: str | None = Field(None, min_length=1, max_length=253)
    """The ``domain`` SIWE messages must name (``host:port`` of the web app); ``host:port``
    of this server when unset."""

    siwe_uri: str | None = Field(None, min_length=1, max_length=2048)
    """The ``URI`` SIWE messages must carry; ``http://host:port`` of this server when unset."""

    siwe_max_message_chars: int = Field(2048, ge=256, le=8192)
    """Longest SIWE message accepted (the request is refused before parsing)."""

    siwe_max_lifetime_s: int = Field(3600, ge=60, le=86_400)
    """Longest ``Expiration Time - Issued At`` a SIWE message may declare."""

    nonce_ttl_s: int = Field(300, ge=10, le=3600)
    """How long an issued sign-in nonce can be used."""

    max_pending_nonces: int = Field(10_000, ge=10, le=10_000_000)
    """Unused, unexpired nonces kept at most; beyond it ``/auth/nonce`` answers 429."""

    session_ttl_s: int = Field(86_400, ge=60, le=30 * 86_400)
    """Lifetime of a session token from sign-in."""

    session_cookie_name: str = Field("shotbank_session", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    session_cookie_secure: bool | None = None
    """``Secure`` flag of the session cookie; on everywhere except development when unset."""

    # --- resumable uploads (tus 1.0) ----------------------------------------------------

    upload_dir: Path | None = None
    """Where partial uploads are written; ``var_dir/uploads`` when unset."""

    upload_max_size: int = Field(4 * 1024**3, ge=1, le=1024**4)
    """Largest ``Upload-Length`` accepted (bytes); advertised as ``Tus-Max-Size``."""

    upload_max_concurrent_per_wallet: int = Field(4, ge=1, le=1000)
    """Unfinished uploads one wallet may have at once."""

    upload_daily_bytes_per_wallet: int = Field(20 * 1024**3, ge=1, le=1024**5)
    """Bytes one wallet may declare in new uploads per rolling 24 hours."""

    upload_expiry_s: int = Field(86_400, ge=60, le=30 * 86_400)
    """An unfinished upload expires this long after it was created (``Upload-Expires``)."""

    upload_request_timeout_s: float = Field(600.0, gt=0, le=3600)
    """Longest one ``PATCH`` body may take to arrive; slower bodies are cut off (408)."""

    upload_idle_timeout_s: float = Field(30.0, gt=0, le=600)
    """Longest pause between two pieces of a body before it is cut off (408)."""

    upload_max_metadata_chars: int = Field(4096, ge=64, le=65_536)
    """Longest ``Upload-Metadata`` header accepted."""

    upload_max_metadata_pairs: int = Field(16, ge=1, le=256)
    upload_max_filename_chars: int = Field(255, ge=16, le=1024)

    # --- blob store (content by CID) ----------------------------------------------------

    blob_dir: Path | None = None
    """Root of the local blob store (``ingest.blobstore.LocalBlobStore``);
    ``var_dir/blobs`` when unset."""

    # --- ingest pipeline (received -> probing -> queued) --------------------------------

    ingest_workers: int = Field(1, ge=0, le=64)
    """Ingest worker threads of this process; 0 disables ingest here (another process
    or none takes the clips)."""

    ingest_poll_s: float = Field(1.0, gt=0, le=300)
    """How long an idle ingest worker waits before it looks for a received clip again."""

    ingest_max_attempts: int = Field(2, ge=1, le=10)
    """Claims of one clip (a probe timeout, a crash or a stale claim each count) before
    it is ``failed``."""

    ingest_stale_s: int = Field(900, ge=1, le=7 * 86_400)
    """A clip ``probing`` for longer than this (its worker died) is put back to
    ``received``; must exceed ``ingest_wall_seconds``."""

    housekeeping_interval_s: float = Field(60.0, gt=0, le=86_400)
    """Period of the housekeeping job: upload expiry, stale-claim recovery, sweeps of
    temporary files."""

    # Bounds of an acceptable clip and the probe's budget (``ingest.probe.ProbeLimits``;
    # the defaults are the product's).
    ingest_min_duration_s: float = Field(_PROBE_DEFAULTS.min_duration_s, gt=0)
    ingest_max_duration_s: float = Field(_PROBE_DEFAULTS.max_duration_s, gt=0)
    ingest_min_short_side: int = Field(_PROBE_DEFAULTS.min_short_side, ge=1)
    ingest_max_short_side: int = Field(_PROBE_DEFAULTS.max_short_side, ge=1)
    ingest_max_long_side: int = Field(_PROBE_DEFAULTS.max_long_side, ge=1)
    ingest_min_frame_rate: float = Field(_PROBE_DEFAULTS.min_frame_rate, gt=0)
    ingest_max_frame_rate: float = Field(_PROBE_DEFAULTS.max_frame_rate, gt=0)
    ingest_max_streams: int = Field(_PROBE_DEFAULTS.max_streams, ge=1, le=1024)
    ingest_cpu_seconds: int = Field(_PROBE_DEFAULTS.cpu_seconds, ge=1, le=3600)
    ingest_memory_bytes: int = Field(_PROBE_DEFAULTS.memory_bytes, ge=1 << 20)
    ingest_wall_seconds: float = Field(_PROBE_DEFAULTS.wall_seconds, gt=0, le=3600)

    # --- scoring: validator leases, reports, consensus (docs/api/validator.md) ---------

    lease_ttl_s: int = Field(600, ge=10, le=86_400)
    """How long a validator holds a leased clip; its signed ``deadline`` is the expiry."""

    lease_max_jobs: int = Field(16, ge=1, le=256)
    """Most clips one ``POST /validator/leases`` hands out (``max_jobs_per_lease``)."""

    lease_retry_after_s: int = Field(5, ge=1, le=3600)
    """What a validator is told to wait when there is nothing to lease."""

    consensus_quorum: int = Field(3, ge=1, le=64)
    """Reports that decide a clip at once (the ``make up`` stack sets 1)."""

    consensus_deadline_s: int = Field(3600, ge=60, le=30 * 86_400)
    """After this long from its first lease a clip is decided on the reports it has."""

    consensus_interval_s: float = Field(15.0, gt=0, le=3600)
    """Period of the job that decides clips past their consensus deadline and marks
    expired leases."""

    # --- rewards: epochs, root submission, the transaction outbox (docs/api/rewards.md) --

    operator_key: SecretStr | None = None
    """Hex private key of the operator account that sends root submissions and emission
    draws through the transaction outbox; without it nothing is sent (``make up`` uses dev
    account 0). Never logged."""

    epoch_length_s: float = Field(86_400.0, ge=10, le=366 * 86_400)
    """An epoch closes this long after it opened (``make up`` sets 120)."""

    epoch_validator_share_bps: int = Field(1000, ge=0, le=10_000)
    """The validators' share of an epoch's pool (rule ``validator_share_bps``)."""

    epoch_contributor_cap_bps: int = Field(2500, ge=1, le=10_000)
    """Most of the contributor pool one contributor receives (rule ``contributor_cap_bps``)."""

    outbox_confirmations: int = Field(2, ge=0, le=64)
    """Blocks on top of a sent transaction's block before the outbox deems it final."""

    # --- datasets (docs/api/datasets.md) ---------------------------------------------

    operators: list[str] = Field(default_factory=list, max_length=64)
    """Wallet addresses whose SIWE sessions may define and freeze datasets (a JSON list,
    e.g. ``["0xf39F..."]``); ``make up`` adds dev account 0. Empty: nobody may."""

    dataset_shard_bytes: int = Field(512 * 1024**2, ge=16 * 1024, le=64 * 1024**3)
    """Default shard target of a frozen dataset version."""

    dataset_poll_s: float = Field(2.0, gt=0, le=300)
    """How long the idle dataset packer waits before it looks for a version to pack."""

    @field_validator("operators")
    @classmethod
    def _operators_are_addresses(cls, value: list[str]) -> list[str]:
        checked: list[str] = []
        for address in value:
            if not is_address(address):
                raise ValueError(f"{address!r} in operators is not an address")
            checked.append(to_checksum_address(address))
        return checked

    @property
    def datasets_path(self) -> Path:
        """Where frozen dataset versions are stored, one folder per version hash."""
        return self.var_dir / "datasets"

    @field_validator("operator_key")
    @classmethod
    def _operator_key_is_a_private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        key = value.get_secret_value().strip()
        digits = key[2:] if key[:2].lower() == "0x" else key
        if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            # Not a ValueError: pydantic would quote the input in its error, and the input
            # may be a real key, mistyped. Other exceptions pass through unquoted.
            raise ConfigurationError("SHOTBANK_OPERATOR_KEY must be 32 bytes of hex (64 digits)")
        return SecretStr("0x" + digits.lower())

    @field_validator("var_dir")
    @classmethod
    def _absolute_var_dir(cls, value: Path) -> Path:
        # Child processes (uvicorn, the devstack's services) may run from another cwd.
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _consistent_ingest_limits(self) -> Self:
        try:
            self.probe_limits  # noqa: B018 - validates the combination
        except ValidationError as exc:
            problems = "; ".join(str(error["msg"]) for error in exc.errors())
            raise ValueError(f"SHOTBANK_INGEST_* limits are inconsistent: {problems}") from None
        if self.ingest_stale_s <= self.ingest_wall_seconds:
            raise ValueError(
                "SHOTBANK_INGEST_STALE_S must exceed SHOTBANK_INGEST_WALL_SECONDS, or live "
                "probes would be taken for dead ones"
            )
        return self

    @model_validator(mode="after")
    def _consistent_scoring_times(self) -> Self:
        if self.consensus_deadline_s <= self.lease_ttl_s:
            raise ValueError(
                "SHOTBANK_CONSENSUS_DEADLINE_S must exceed SHOTBANK_LEASE_TTL_S, or a clip "
                "could be decided before its first lease could be reported"
            )
        return self

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Self:
        if self.environment == "development":
            return self
        if "secret_key" not in self.model_fields_set:
            raise ValueError(
                f"SHOTBANK_SECRET_KEY must be set when SHOTBANK_ENVIRONMENT={self.environment}"
            )
        key = self.secret_key.get_secret_value()
        if len(key) < _MIN_SECRET_LENGTH or key.lower() in _WEAK_SECRETS:
            raise ValueError(
                f"SHOTBANK_SECRET_KEY must be at least {_MIN_SECRET_LENGTH} random characters "
                f"when SHOTBANK_ENVIRONMENT={self.environment}"
            )
        return self

    @property
    def database_url_value(self) -> URL:
        """The SQLAlchemy URL to connect to (contains the password, if any)."""
        if self.database_url is None:
            return URL.create("sqlite", database=str(self.var_dir / "shotbank.db"))
        return make_url(self.database_url.get_secret_value())

    @property
    def database_url_display(self) -> str:
        """The database URL with any password masked, safe for logs and banners."""
        return self.database_url_value.render_as_string(hide_password=True)

    @property
    def siwe_domain_value(self) -> str:
        """The domain SIWE messages must be bound to."""
        return self.siwe_domain or f"{self.host}:{self.port}"

    @property
    def siwe_uri_value(self) -> str:
        """The URI SIWE messages must be bound to."""
        return self.siwe_uri or f"http://{self.host}:{self.port}"

    @property
    def session_cookie_secure_value(self) -> bool:
        """Whether the session cookie is sent over HTTPS only."""
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.environment != "development"

    @property
    def upload_path(self) -> Path:
        """Directory of partial uploads."""
        return self.upload_dir or self.var_dir / "uploads"

    @property
    def probe_limits(self) -> ProbeLimits:
        """The ``ingest.probe`` limits these settings ask for."""
        return ProbeLimits(
            min_duration_s=self.ingest_min_duration_s,
            max_duration_s=self.ingest_max_duration_s,
            min_short_side=self.ingest_min_short_side,
            max_short_side=self.ingest_max_short_side,
            max_long_side=self.ingest_max_long_side,
            min_frame_rate=self.ingest_min_frame_rate,
            max_frame_rate=self.ingest_max_frame_rate,
            max_streams=self.ingest_max_streams,
            cpu_seconds=self.ingest_cpu_seconds,
            memory_bytes=self.ingest_memory_bytes,
            wall_seconds=self.ingest_wall_seconds,
        )

    @property
    def blob_path(self) -> Path:
        """Root of the local blob store."""
        return self.blob_dir or self.var_dir / "blobs"

    @property
    def web_path(self) -> Path:
        """Where the built web app is read (if missing, ``/`` says how to build it)."""
        return self.web_dir or Path(__file__).resolve().parents[2] / "web" / "dist"

    @property
    def deployments_path(self) -> Path:
        """Where the deployments file is read (and, by the devstack, written)."""
        return self.deployments_file or self.var_dir / "deployments.json"
