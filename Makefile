# rebalancerd — developer entry points. Every target creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
CONFIG ?= config/rebalancerd.example.toml
export TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run demo test lint fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## run: the daemon on the example config (SQLite in var/ + the simulated broker); Ctrl-C stops it
run: $(STAMP)
	$(BIN)/rebalancerd --config $(CONFIG) --log-format console run

## demo: the guards, review and execution of the demo accounts, once each, replayed in Thanksgiving week
## (state in var/; `rm -rf var` to replay it afresh)
DEMO_GUARD ?= 2026-11-25T16:30
DEMO_NOW ?= 2026-11-28T12:00
DEMO_EXEC ?= 2026-11-30T09:30
demo: $(STAMP)
	$(BIN)/rebalancerd --config $(CONFIG) migrate
	$(BIN)/rebalancerd --config $(CONFIG) --log-level warning --now $(DEMO_GUARD) guard
	$(BIN)/rebalancerd --config $(CONFIG) --log-level warning --now $(DEMO_NOW) review
	$(BIN)/rebalancerd --config $(CONFIG) --log-level warning --now $(DEMO_EXEC) execute
	$(BIN)/rebalancerd --config $(CONFIG) --now $(DEMO_EXEC) caps

## test: lint, types and the whole test suite (PostgreSQL tests use TEST_DATABASE_URL)
test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff format --check rebalancerd tests migrations bench
	$(BIN)/ruff check rebalancerd tests migrations bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format rebalancerd tests migrations bench
	$(BIN)/ruff check --fix rebalancerd tests migrations bench

## bench: rules/s, decisions persisted/s, Alpaca requests per run, daemon start-up, backtest speed
bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.alpaca_requests
	$(BIN)/python -m bench.daemon
	$(BIN)/python -m bench.backtest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
