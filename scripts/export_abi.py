"""Export the Shotbank contracts' ABI and bytecode from the Hardhat build into the SDK.

Writes ``sdk/shotbank/chain/abi/<Name>.json`` as ``{"abi", "bytecode", "contractName"}`` with
sorted keys and a trailing newline, so a rebuild of unchanged sources gives byte-identical files.

Usage (after ``hardhat build``)::

    .venv/bin/python scripts/export_abi.py           # write the files
    .venv/bin/python scripts/export_abi.py --check   # exit 1 if the committed files are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "contracts"
OUT_DIR = ROOT / "sdk" / "shotbank" / "chain" / "abi"
CONTRACTS: tuple[str, ...] = (
    "ShotToken",
    "ValidatorRegistry",
    "RewardDistributor",
    "DatasetMarket",
)


class ExportError(Exception):
    """An artifact is missing or malformed."""


def load_artifact(name: str, artifacts: Path = ARTIFACTS) -> dict[str, Any]:
    """Return ``{"contractName", "abi", "bytecode"}`` of ``name`` from the Hardhat build."""
    path = artifacts / f"{name}.sol" / f"{name}.json"
    if not path.is_file():
        raise ExportError(f"missing artifact {path}; run `hardhat build` first")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ExportError(f"{path}: not a JSON object")
    abi = data.get("abi")
    bytecode = data.get("bytecode")
    if data.get("contractName") != name or not isinstance(abi, list):
        raise ExportError(f"{path}: unexpected artifact layout")
    if not isinstance(bytecode, str) or not bytecode.startswith("0x") or len(bytecode) <= 2:
        raise ExportError(f"{path}: missing bytecode")
    return {"contractName": name, "abi": abi, "bytecode": bytecode}


def render(export: dict[str, Any]) -> str:
    """Serialise one export deterministically."""
    return json.dumps(export, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def expected_files(artifacts: Path = ARTIFACTS) -> dict[str, str]:
    """Map each output file name to the content a fresh export would give it."""
    return {f"{name}.json": render(load_artifact(name, artifacts)) for name in CONTRACTS}


def stale_files(out_dir: Path, expected: dict[str, str]) -> list[str]:
    """Names of files under ``out_dir`` that are missing or differ from ``expected``."""
    stale = []
    for file_name, content in sorted(expected.items()):
        path = out_dir / file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(file_name)
    return stale


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 when the committed files differ from a fresh export",
    )
    args = parser.parse_args(argv)
    try:
        expected = expected_files()
    except ExportError as exc:
        print(f"export_abi: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files(OUT_DIR, expected)
        if stale:
            print(
                "export_abi: stale ABI files (run `make abi`): " + ", ".join(stale),
                file=sys.stderr,
            )
            return 1
        print(f"export_abi: {len(expected)} ABI files up to date")
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for file_name, content in expected.items():
        (OUT_DIR / file_name).write_text(content, encoding="utf-8")
    print(f"export_abi: wrote {len(expected)} files to {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
