# Every target creates or reuses .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install test lint bench clean demo native native-clean

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

test: lint
	$(BIN)/pytest -n 2 -p no:cacheprovider tests

demo: install
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

clean:
	rm -rf $(VENV) build dist src/*.egg-info
	rm -f src/tradewind/core/*.so src/tradewind/core/*.pyd
