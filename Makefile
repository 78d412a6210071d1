# databourse: `make demo` runs the whole pipeline on embedded defaults, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo exchange test test-fast lint bench stop status clean lock

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

demo: $(STAMP) ## Start the local Prefect server + runner, generate sample drops, run the pipeline
	$(BIN)/bourse demo

exchange: $(STAMP) ## Serve buyers on 127.0.0.1:8780: catalog pages and Delta Sharing (EXCHANGE_ARGS=...)
	$(BIN)/bourse exchange serve $(EXCHANGE_ARGS)

test: $(STAMP) ## Run the whole test suite (two workers, a test file each at a time)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP) ## Unit tests only (no Prefect server, no CLI subprocesses)
	$(BIN)/python -m pytest -q -m "not prefect and not e2e"

lint: $(STAMP) ## ruff, mypy and the import contracts (lint-imports, pyproject's [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) ## Speed and memory benchmarks (figures and ratios against a bare baseline)
	$(BIN)/python benchmarks/ingest.py --rows 1000000 5000000
	$(BIN)/python benchmarks/pipeline.py --rows 1000000 5000000
	$(BIN)/python benchmarks/real_run.py --rows 100 1000000 5000000 20000000
	$(BIN)/python benchmarks/prefect_floor.py
	$(BIN)/python benchmarks/anonymization.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/pii.py
	$(BIN)/python benchmarks/scale_out.py --rows 1000000 --workers 1 2
	$(BIN)/python benchmarks/exchange_scale.py
	$(BIN)/python benchmarks/ranged_reads.py
	$(BIN)/python benchmarks/partitioned_scan.py --rows 5000000 --partition-rows 1000000 --dask 2
	$(BIN)/python benchmarks/partitioned_quality.py --rows 5000000 --partition-rows 1000000 --dask 2
	$(BIN)/python benchmarks/corpus_build.py --docs 2000 20000
	$(BIN)/python benchmarks/partitioned_corpus.py --docs 20000 --partition-docs 2048 --dask 2

stop: ## Stop the background Prefect server and runner started by make demo
	@test -x $(BIN)/bourse && $(BIN)/bourse server stop || echo "nothing installed, nothing running"

status: ## Show the local Prefect server and runner
	$(BIN)/bourse server status

lock: $(STAMP) ## Rewrite constraints.txt from the installed environment
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^databourse' > constraints.txt

clean: stop ## Stop everything and delete state/ (store, catalog, Prefect database)
	rm -rf state
