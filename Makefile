# Every target creates or reuses .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install test lint bench clean demo native native-clean ui chromium bench-ui softhsm

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Not --dist loadfile: xdist keys that queue by node id, and schemathesis gives all its
# cases one node id, so 107 of test_openapi_fuzz's 109 tests were silently not run.
test: lint ui chromium softhsm
	cd web && npm run check && npm test
	$(BIN)/pytest -n 2 -p no:cacheprovider --durations=20 tests

demo: install ui
	$(BIN)/tradewind demo $(DEMO_ARGS)

# Engine (about 6 min) then REST/WS against the matching-engine anchor (about 7 min);
# the anchor needs Python 3.12 in bench/.anchor-venv (see bench/anchor.py), else it is skipped.
bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/run.py --api

# Optional compiled build of the core (mypyc); `make native-clean` returns to pure Python.
native: install
	$(BIN)/python build_native.py

native-clean:
	$(BIN)/python build_native.py --clean

# The web UI (web/, docs/web.md): `npm ci` when the lock file changes, `vite build` when
# a source is newer than the last build's stamp. The app serves web/dist.
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/index.html web/package.json \
	web/vite.config.ts web/svelte.config.js web/tsconfig.json
WEB_STAMP := web/.build-stamp

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

$(WEB_STAMP): web/node_modules/.package-lock.json $(WEB_SRC)
	cd web && npm run build
	touch $@

ui: $(WEB_STAMP)

# Debian's Chromium for the browser tests; never `playwright install` (it downloads a
# browser build, which fails here).
chromium:
	@$(PY) -c "import shutil, sys; sys.exit(0 if shutil.which('chromium') else 1)" || \
		(apt-get update -qq && apt-get install -y -qq chromium)

# Debian's SoftHSM2 for the PKCS#11 signer's tests (docs/funding.md); the tests make their
# own token in a temp dir (SOFTHSM2_CONF), never touching the system's tokens.
softhsm:
	@test -e /usr/lib/softhsm/libsofthsm2.so || \
		(apt-get update -qq && apt-get install -y -qq softhsm2)

# The trading screen's speed in Chromium (bench/results/ui.json).
bench-ui: install ui chromium
	$(BIN)/python bench/ui.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
	rm -f src/tradewind/core/*.so src/tradewind/core/*.pyd
	rm -rf web/dist web/node_modules web/.build-stamp
