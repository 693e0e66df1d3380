# The two commands of the README: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
APP_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test setup lint bench

run: $(APP_STAMP)
	$(VENV)/bin/voxloop serve

test: $(TEST_STAMP) lint
	$(VENV)/bin/pytest

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(APP_STAMP)
	$(VENV)/bin/voxloop bench

setup: $(APP_STAMP)

$(APP_STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

$(TEST_STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh --test
	touch $@ $(APP_STAMP)
