"""Contract artifacts (ABI + bytecode) shipped inside the package.

The files under ``shotbank/chain/abi/<Name>.json`` are exported from the Hardhat build
(``make abi``) as ``{"contractName", "abi", "bytecode"}`` and read here through
:mod:`importlib.resources`, so they work from a wheel, a zip or an editable install.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any, Final, TypeAlias

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_abi_to_4byte_selector
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shotbank.chain.errors import ArtifactNotFoundError, ChainConfigError

__all__ = [
    "CONTRACT_NAMES",
    "ContractArtifact",
    "describe_revert",
    "load_abi",
    "load_artifact",
]

#: The contracts Shotbank deploys, in wiring order.
CONTRACT_NAMES: Final = ("ShotToken", "ValidatorRegistry", "RewardDistributor", "DatasetMarket")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_MAX_ARTIFACT_BYTES: Final = 4 * 1024 * 1024

AbiEntry: TypeAlias = dict[str, Any]


class ContractArtifact(BaseModel):
    """One exported contract: its name, ABI and creation bytecode."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    contract_name: str = Field(alias="contractName", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    abi: tuple[AbiEntry, ...]
    bytecode: str = Field(pattern=r"^0x([0-9a-fA-F]{2})*$")

    def event_names(self) -> list[str]:
        """Names of the events declared in the ABI."""
        return [str(e["name"]) for e in self.abi if e.get("type") == "event"]


@cache
def load_artifact(name: str) -> ContractArtifact:
    """Load the shipped artifact for contract ``name`` (e.g. ``"ShotToken"``).

    Raises :class:`ArtifactNotFoundError` when no such file is shipped and
    :class:`ChainConfigError` when the file is not a valid artifact.
    """
    if not _NAME.match(name):
        raise ArtifactNotFoundError(f"not a contract name: {name!r}")
    resource = resources.files("shotbank.chain").joinpath("abi", f"{name}.json")
    if not resource.is_file():
        raise ArtifactNotFoundError(
            f"no artifact for {name!r} in shotbank/chain/abi/ (run `make abi` to export it)"
        )
    raw = resource.read_bytes()
    if len(raw) > _MAX_ARTIFACT_BYTES:
        raise ChainConfigError(f"artifact {name!r} is larger than {_MAX_ARTIFACT_BYTES} bytes")
    try:
        artifact = ContractArtifact.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise ChainConfigError(f"artifact {name!r} is not valid: {exc}") from exc
    if artifact.contract_name != name:
        raise ChainConfigError(
            f"artifact file {name}.json holds contract {artifact.contract_name!r}"
        )
    return artifact


def load_abi(name: str) -> list[AbiEntry]:
    """Return a copy of the ABI of contract ``name``."""
    return [dict(entry) for entry in load_artifact(name).abi]


def _signature_types(entry: AbiEntry) -> list[str]:
    types = []
    for item in entry.get("inputs", []):
        kind = str(item["type"])
        if kind.startswith("tuple"):
            inner = ",".join(_signature_types({"inputs": item.get("components", [])}))
            kind = f"({inner}){kind[5:]}"
        types.append(kind)
    return types


@cache
def _error_selectors() -> dict[bytes, AbiEntry]:
    selectors: dict[bytes, AbiEntry] = {}
    for name in CONTRACT_NAMES:
        try:
            artifact = load_artifact(name)
        except ArtifactNotFoundError:
            continue
        for entry in artifact.abi:
            if entry.get("type") == "error":
                selectors[bytes(function_abi_to_4byte_selector(entry))] = entry  # type: ignore[arg-type]
    return selectors


def describe_revert(data: str | bytes | None) -> str:
    """Readable form of revert data: ``Name(arg=value, ...)`` for the contracts' custom errors.

    Falls back to the raw hex for unknown selectors and ``Error(string)`` reasons.
    """
    if data is None:
        return "reverted without data"
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    if len(raw) < 4:
        return f"reverted with 0x{raw.hex()}"
    if raw[:4] == bytes.fromhex("08c379a0"):
        try:
            (reason,) = abi_decode(["string"], raw[4:])
        except Exception:  # malformed reason: show the bytes
            return f"reverted with 0x{raw.hex()}"
        return f"Error({reason!r})"
    entry = _error_selectors().get(raw[:4])
    if entry is None:
        return f"reverted with 0x{raw.hex()}"
    try:
        values = abi_decode(_signature_types(entry), raw[4:])
    except Exception:  # selector known but arguments malformed
        return f"{entry['name']}(<undecodable 0x{raw[4:].hex()}>)"
    names = [str(i.get("name") or f"arg{n}") for n, i in enumerate(entry.get("inputs", []))]
    args = ", ".join(
        f"{n}={'0x' + v.hex() if isinstance(v, bytes) else v}"
        for n, v in zip(names, values, strict=True)
    )
    return f"{entry['name']}({args})"
