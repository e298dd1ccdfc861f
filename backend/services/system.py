"""The service's view of itself: dependency health, build and deployment information."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from web3 import Web3
from web3.exceptions import Web3Exception

import backend
from backend.core.migrate import current_revision
from backend.errors import ConfigurationError
from backend.models.system import ChainHealth, DatabaseHealth, HealthPublic, VersionPublic
from shotbank.chain.deployments import Deployment, load_deployments
from shotbank.chain.errors import DeploymentsFileError

logger = logging.getLogger(__name__)

_SOURCE_ROOT: Final = Path(backend.__file__).resolve().parent.parent
_COMMIT: Final = re.compile(r"^[0-9a-f]{40}$")
_GIT_TIMEOUT_S: Final = 2.0


def check_database(*, engine: Engine) -> DatabaseHealth:
    """Ask the database for a trivial answer and its schema revision."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            revision = current_revision(connection)
    except SQLAlchemyError as exc:
        logger.warning("database health check failed: %s", exc.__class__.__name__)
        return DatabaseHealth(reachable=False)
    return DatabaseHealth(reachable=True, revision=revision)


def check_chain(*, w3: Web3) -> ChainHealth:
    """Ask the chain node for its chain id and latest block number."""
    try:
        chain_id = w3.eth.chain_id
        block = w3.eth.block_number
    except (OSError, Web3Exception, ValueError) as exc:
        # requests' connection errors and timeouts are OSErrors.
        logger.warning("chain health check failed: %s", exc.__class__.__name__)
        return ChainHealth(reachable=False)
    return ChainHealth(reachable=True, chain_id=chain_id, block=block)


def health(*, engine: Engine, w3: Web3, expected_chain_id: int) -> HealthPublic:
    """Overall health: ``ok`` only if the database answers and the node serves our chain."""
    db = check_database(engine=engine)
    chain = check_chain(w3=w3)
    healthy = db.reachable and chain.reachable and chain.chain_id == expected_chain_id
    return HealthPublic(status="ok" if healthy else "degraded", db=db, chain=chain)


def read_deployment(*, path: Path, chain_id: int) -> Deployment | None:
    """The contracts deployed on ``chain_id`` per the deployments file, if any."""
    try:
        return load_deployments(path).get(chain_id)
    except DeploymentsFileError as exc:
        raise ConfigurationError(f"The deployments file is not usable: {exc}") from exc


@cache
def source_commit() -> str | None:
    """The git commit of the source checkout the backend runs from, if it is one."""
    git = shutil.which("git")
    if git is None or not (_SOURCE_ROOT / ".git").exists():
        return None
    try:
        result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [git, "rev-parse", "HEAD"],
            cwd=_SOURCE_ROOT,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and _COMMIT.match(commit) else None


def version_info(
    *, chain_id: int, deployments_path: Path, commit: str | None = None
) -> VersionPublic:
    """What runs: package version, commit, and the contracts of ``chain_id``."""
    deployment = read_deployment(path=deployments_path, chain_id=chain_id)
    return VersionPublic(
        version=backend.__version__,
        commit=commit if commit is not None else source_commit(),
        chain_id=chain_id,
        start_block=deployment.start_block if deployment else None,
        contracts=dict(deployment.contracts) if deployment else {},
    )
