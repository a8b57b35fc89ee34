# Every target creates the virtualenv it needs (in a cache outside the clone, linked as .venv).
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: venv lint test unit e2e demo up inventory clean

venv:
	@hack/venv.sh >/dev/null

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	.venv/bin/lint-imports

## The README's test command: lint and type-check, then the unit, integration and e2e tests.
test: lint
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests

## The README's demo command.
demo: venv
	@hack/demo.sh

## The demo's cluster kept running until Ctrl-C: prints the kubeconfig and commands to try.
up: venv
	@hack/up.sh

## Print the devices a fake node would publish, e.g. make inventory GPUS=fake:2xH100-80GB,1xL4
GPUS ?= fake:8xA100-40GB
inventory: venv
	$(PY) -m dra_driver.inventory --gpus $(GPUS)

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis
