# KubeGlobe. The two commands people need: `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
KG := $(BIN)/kubeglobe
export KUBEGLOBE_CACHE ?= $(HOME)/.cache/kubeglobe

.PHONY: up test down deps venv k8s lint unit component integration status clean

## up: start the all-in-one local platform (HA global + 2 workload clusters)
up: deps venv k8s
	$(KG) local up

## test: lint, type-check, unit tests, component tests (our built binaries, no
## environment), then integration tests against real clusters
test: deps venv k8s lint unit component integration

## down: stop the local platform (keeps its state; `make clean` also deletes it)
down: venv
	$(KG) local down

status: venv
	$(KG) local status

deps:
	bash scripts/install-system-deps.sh

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/activate
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'

k8s: venv
	$(KG) local build

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest -q tests/unit

# the project's built binaries (HAProxy from `kubeglobe local build`), no environment
component: venv k8s
	$(BIN)/pytest -q tests/component

integration: venv k8s
	$(BIN)/pytest -q tests/integration

clean: venv
	$(KG) local down --purge
