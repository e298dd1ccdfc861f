"""The deployments file: where Shotbank's contracts live on each chain.

Format (decision record 0001), keyed by chain id::

    {"31337": {"chainId": 31337, "startBlock": 1,
               "contracts": {"ShotToken": "0x...", "ValidatorRegistry": "0x...",
                             "RewardDistributor": "0x...", "DatasetMarket": "0x..."}}}

Writes are atomic (temporary file, fsync, rename, fsync of the directory) and merge by
chain id under an advisory lock, so two processes saving different chains do not lose
each other's entry and a crash never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Final

from eth_utils.address import is_address, to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from shotbank.chain.errors import DeploymentNotFoundError, DeploymentsFileError

__all__ = [
    "ChecksumAddressStr",
    "Deployment",
    "get_deployment",
    "load_deployments",
    "save_deployment",
]

_MAX_FILE_BYTES: Final = 1024 * 1024
_MAX_CHAINS: Final = 256
_MAX_CONTRACTS: Final = 64


def _checksum(value: str) -> str:
    if not is_address(value):
        raise ValueError(f"not an address: {value!r}")
    return str(to_checksum_address(value))


#: An address given in any case, stored and compared in its EIP-55 checksum form.
ChecksumAddressStr = Annotated[str, Field(max_length=42), AfterValidator(_checksum)]


class Deployment(BaseModel):
    """Contracts deployed on one chain, and the block to start indexing from."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    chain_id: int = Field(alias="chainId", ge=1, lt=2**64)
    start_block: int = Field(alias="startBlock", ge=0)
    contracts: dict[Annotated[str, Field(min_length=1, max_length=64)], ChecksumAddressStr] = Field(
        max_length=_MAX_CONTRACTS
    )

    def address(self, name: str) -> str:
        """Checksum address of contract ``name``; :class:`DeploymentNotFoundError` if absent."""
        try:
            return self.contracts[name]
        except KeyError:
            raise DeploymentNotFoundError(
                f"chain {self.chain_id} has no deployed contract named {name!r}"
            ) from None

    def to_json_dict(self) -> dict[str, Any]:
        """The entry as written to the deployments file (camelCase keys)."""
        return self.model_dump(by_alias=True, mode="json")


class _DeploymentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: dict[int, Deployment] = Field(max_length=_MAX_CHAINS)

    @model_validator(mode="after")
    def _keys_match(self) -> _DeploymentsFile:
        for key, deployment in self.entries.items():
            if key != deployment.chain_id:
                raise ValueError(f"key {key} holds a deployment for chain {deployment.chain_id}")
        return self


def load_deployments(path: Path) -> dict[int, Deployment]:
    """Read the deployments file at ``path``; a missing file is an empty mapping.

    Raises :class:`DeploymentsFileError` when the file is too large, not JSON, or does
    not match the format (including a key that differs from its entry's ``chainId``).
    """
    try:
        with path.open("rb") as fh:
            raw = fh.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise DeploymentsFileError(f"cannot read {path}: {exc}") from exc
    if len(raw) > _MAX_FILE_BYTES:
        raise DeploymentsFileError(f"{path} is larger than {_MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise DeploymentsFileError(f"{path}: top level must be an object keyed by chain id")
        parsed = _DeploymentsFile.model_validate({"entries": data})
    except (ValueError, ValidationError) as exc:
        if isinstance(exc, DeploymentsFileError):
            raise
        raise DeploymentsFileError(f"{path} is not a valid deployments file: {exc}") from exc
    return dict(parsed.entries)


def get_deployment(path: Path, chain_id: int) -> Deployment:
    """The deployment for ``chain_id``; :class:`DeploymentNotFoundError` if there is none."""
    deployments = load_deployments(path)
    try:
        return deployments[chain_id]
    except KeyError:
        raise DeploymentNotFoundError(f"{path} has no deployment for chain {chain_id}") from None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def save_deployment(path: Path, deployment: Deployment) -> None:
    """Add or replace ``deployment`` (by chain id) in the file at ``path``, atomically.

    Entries for other chains are kept. The parent directory must exist.
    """
    directory = path.parent
    with _locked(path):
        entries = load_deployments(path)
        entries[deployment.chain_id] = deployment
        document = {str(chain_id): entries[chain_id].to_json_dict() for chain_id in sorted(entries)}
        payload = (json.dumps(document, indent=2) + "\n").encode()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
