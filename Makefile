# One way to run everything. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXPERIMENT ?= bike-sharing-demand
# uv, virtualenv (MLflow's default for a python_env project), or local (this repository's .venv). uv builds a
# cold environment in about half virtualenv's time (python -m bench.envs); with .pyc files written at
# install, as pip writes them, later runs start no slower either.
ENV_MANAGER ?= uv
export UV_COMPILE_BYTECODE ?= 1
# Test processes for `make test`. On 2 cores, two: three ran no faster (14:26 against 14:45 of pytest)
# and slowed the fault tests.
TEST_WORKERS ?= 2
# Extra arguments for `mlflow run`, e.g. ARGS="-P model=rf".
ARGS ?=
# The venv's tools come first, so `mlflow run --env-manager local` runs the steps with them.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install install-spark run rerun test lint format bench ui clean stack stack-down

help: ## Show this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv with the pinned runtime and development packages

$(VENV)/.installed: requirements.txt requirements-stack.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install-spark: $(VENV)/.installed-spark ## Add Apache Spark to .venv, for predict -P engine=spark (~450 MB)

$(VENV)/.installed-spark: $(VENV)/.installed requirements-spark.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-spark.txt
	touch $@

run: install ## Run the whole pipeline: mlflow run . (ENV_MANAGER=..., ARGS="-P model=rf")
	$(BIN)/python -m scripts.preflight $(ARGS)
	$(BIN)/mlflow run . --experiment-name $(EXPERIMENT) --env-manager $(ENV_MANAGER) $(ARGS)

rerun: install ## The scheduled rerun: reuse what did not change, fail fast if the server is down
	scripts/rerun $(ARGS)

test: install ## Run the test suite on TEST_WORKERS processes (a file's tests stay on one)
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: install ## Check lint and formatting with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## Benchmarks, each printing its ratios and targets (docs/benchmarks.md; about 40 minutes)
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.rerun
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.tune
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.envs

stack: install ## Start the team stack: mlflow server + PostgreSQL + S3 (SeaweedFS), logins (STACK_DIR=.stack)
	$(BIN)/python -m scripts.stack up

stack-down: ## Stop the team stack that `make stack` started (its data stays)
	$(BIN)/python -m scripts.stack down

ui: install ## Open the MLflow UI on the local tracking store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean: ## Remove the local tracking store and caches (not .venv)
	rm -rf mlruns mlflow.db .pytest_cache .ruff_cache
