# The two commands of the README: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(shell $(PYTHON) scripts/venv_path.py)
LW := $(VENV)/bin/lightwire
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: setup models demo compare test test-unit test-integration stack-up stack-down bench

setup:  ## the cached virtualenv, lightwire installed into it, generated protobuf code
	@bash scripts/bootstrap.sh > /dev/null

models: setup  ## convert SmolLM2-135M-Instruct once and build the tiny test model (cached)
	@$(LW) model prepare

demo: setup models  ## the local stack and the main job (TASK=sql: the SQL task with its LangGraph agent)
	@$(LW) demo $(if $(TASK),--task $(TASK))

compare: setup models  ## every trainer algorithm from the same base model on the demo task, head to head
	@$(LW) compare

test: setup  ## everything the tests need is started by the test session itself and stopped after it
	@$(LW) model prepare --name tiny-llama
	@$(PYTEST) -q -m "not gpu" $(PYTEST_ARGS)

test-unit: setup
	@$(PYTEST) -q tests/unit $(PYTEST_ARGS)

test-integration: setup
	@$(PYTEST) -q -m "integration and not gpu" $(PYTEST_ARGS)

stack-up: setup
	@$(LW) stack up

stack-down: setup
	@$(LW) stack down

bench: setup
	@for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done
