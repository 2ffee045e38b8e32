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

## run: the review, guards and execution of the demo accounts, once (SQLite + simulated broker)
run: $(STAMP)
	$(BIN)/rebalancerd --config $(CONFIG) migrate
	$(BIN)/rebalancerd --config $(CONFIG) --log-format console review
	$(BIN)/rebalancerd --config $(CONFIG) --log-format console guard
	$(BIN)/rebalancerd --config $(CONFIG) --log-format console execute
	$(BIN)/rebalancerd --config $(CONFIG) caps

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

## bench: rule evaluations/s and decisions persisted/s (SQLite and PostgreSQL)
bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
