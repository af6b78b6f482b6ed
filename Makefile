# store-monitor — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
# uv lives in a private venv of its own, pinned: nothing is installed into the system Python,
# which may refuse it anyway (PEP 668, "externally-managed-environment", Debian 12, Ubuntu 24.04).
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# `install` syncs .venv once per target; `uv run` would sync (and recompile) again on every command.
RUN := $(UV) run --no-sync
# Installed libraries come with their bytecode: else every command compiles them again where
# PYTHONDONTWRITEBYTECODE is set (a second or so per CLI run).
export UV_COMPILE_BYTECODE := 1

.PHONY: help install run test lint format bench openapi screenshot

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(UV) ## Install the project and its dev tools into .venv, exactly as uv.lock says
	@$(UV) sync --frozen --quiet

# Remade when the pin changes: the stamp names the version.
$(UV): $(TOOLS)/uv-$(UV_VERSION)
$(TOOLS)/uv-$(UV_VERSION):
	@rm -rf $(TOOLS)
	@$(PYTHON) -m venv $(TOOLS) || { echo "error: '$(PYTHON) -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2; exit 1; }
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@touch $@

run: install ## Run the service: the dashboard on http://127.0.0.1:8000/, the API at /docs (embedded PostgreSQL + in-process jobs unless configured)
	$(RUN) store-monitor serve

test: install ## Run the tests (needs PostgreSQL and Redis on localhost, see README)
	$(RUN) pytest

lint: install ## ruff, formatting, mypy (strict) and the import layers
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks
	$(RUN) mypy
	$(RUN) lint-imports

format: install ## Apply ruff's fixes and formatting
	$(RUN) ruff check --fix src tests benchmarks
	$(RUN) ruff format src tests benchmarks

bench: install ## Benchmarks: report vs plain CSV read, scaling, service, live, trends, upload memory, load, scale-out (prints tables)
	$(RUN) python -m benchmarks

screenshot: install ## Rewrite the README's picture, docs/dashboard-store.png, from the browser tests
	DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard-store.png $(RUN) pytest tests/browser/test_pages_at_two_widths.py -k desktop -q -p no:randomly

openapi: install ## Rewrite the committed openapi.json from the app
	$(RUN) store-monitor openapi > openapi.json
