# store-monitor — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

.PHONY: help install run test lint format bench openapi

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install the project and its dev tools into .venv, exactly as uv.lock says
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: install ## Run the service on http://127.0.0.1:8000/docs (SQLite + in-process jobs unless configured)
	$(UV) run store-monitor serve

test: install ## Run the tests (needs PostgreSQL and Redis on localhost, see README)
	$(UV) run pytest

lint: install ## ruff, formatting, mypy (strict) and the import layers
	$(UV) run ruff check src tests
	$(UV) run ruff format --check src tests
	$(UV) run mypy
	$(UV) run lint-imports

format: install ## Apply ruff's fixes and formatting
	$(UV) run ruff check --fix src tests
	$(UV) run ruff format src tests

bench: install ## Benchmarks: report vs plain CSV read, scaling, service (prints tables)
	$(UV) run python -m benchmarks

openapi: install ## Rewrite the committed openapi.json from the app
	$(UV) run store-monitor openapi > openapi.json
