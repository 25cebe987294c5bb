# GMV Backend — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
PYTEST_ARGS ?=
PACKAGES := gmv_common gmv_sandbox gmv_cli gmv_gateway gmv_metadata_sync gmv_product_sync gmv_options_cache

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) is required (Python 3.11)"; exit 1; }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(TOOLS) uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## Create the virtual environment from the lock file

.PHONY: lock
lock: $(UV) ## Re-resolve dependencies into uv.lock
	$(UV) lock

.PHONY: run
run: venv ## Start the whole system on its embedded default (SQLite, in-memory bus, sandbox)
	$(VENV)/bin/gmv dev

.PHONY: up
up: ## Start the local MariaDB and Kafka (installed or built on first use)
	deploy/local/up

.PHONY: down
down: ## Stop the local MariaDB and Kafka
	deploy/local/down

.PHONY: test
test: venv up ## Run the full suite against real MariaDB and Kafka
	eval "$$(deploy/local/env)" && $(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff format check, ruff, mypy
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(addprefix -p ,$(PACKAGES))
	$(VENV)/bin/mypy bench

.PHONY: format
format: venv ## Format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: bench
bench: venv up ## Run every benchmark in bench/ and write bench/results/ and the report
	eval "$$(deploy/local/env)" && $(VENV)/bin/python bench/run_all.py

.PHONY: clean
clean: ## Remove the virtual environment, tool cache and local server data
	-deploy/local/down
	rm -rf $(VENV) $(TOOLS) .local
