# The two set-up commands (README): `make demo` runs the main job, `make test` runs every test.
# Both set up what they need first: Debian packages, .venv with the project, the Fabric build (cached
# in ~/.cache/gxlib). A second run reuses all of it.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
GX := $(BIN)/gx
VENV_STAMP := $(VENV)/.installed

.PHONY: help setup test-setup system-packages venv fabric k8s-binaries demo demo-k8s test test-images lint typecheck unit integration down lab clean

help:
	@echo "make demo   set everything up, bring up devnet + chaincode + backend + monitoring, run the five runbooks"
	@echo "make demo-k8s   the same five runbooks with env=devnet on the real single-node cluster (gx k8s deploy first)"
	@echo "make test   set everything up and run the whole test suite (lint, typecheck, unit, integration)"
	@echo "make lab    JupyterLab on the runbooks (loopback only, token; 'gx runbook open NAME' runs one in it)"
	@echo "make test-images   build every container image from source and run each in a private containerd"
	@echo "make down   stop the local network        make clean   remove .venv"

setup: system-packages venv fabric

test-setup: setup k8s-binaries

system-packages:
	@scripts/ensure-system-packages scripts/system-packages.txt

$(VENV_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v[:2] == (3, 11) else "error: Python 3.11 is required, $(PYTHON) is %d.%d (set PYTHON=...)" % v[:2])'
	@echo "==> creating $(VENV) and installing gxlib with its dev dependencies (pip)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@echo "==> registering the project's Jupyter kernel (gxlib) inside $(VENV)"
	@$(BIN)/gx runbook kernel
	@touch $@

venv: $(VENV_STAMP)
	@echo "==> python environment ready ($(VENV))"

fabric: venv
	@echo "==> Hyperledger Fabric binaries (built from source once, then cached)"
	@$(GX) fabric build

k8s-binaries: venv
	@echo "==> Kubernetes binaries: etcd, kube-apiserver, controller-manager, scheduler, kwok, kustomize, kubelet, kube-proxy, kubectl (built once, then cached)"
	@$(GX) k8s build

demo: setup
	@echo "==> gx demo: devnet, chaincode, backend, monitoring, then the five runbooks"
	@$(GX) demo

demo-k8s: test-setup
	@echo "==> gx demo --env devnet: gx k8s deploy (cluster, images, overlay, Fabric on the node IP), then the five runbooks"
	@$(GX) demo --env devnet

lint: venv
	@echo "==> ruff"
	@$(BIN)/ruff check .

typecheck: venv
	@echo "==> mypy"
	@$(BIN)/mypy

unit: venv fabric
	@$(BIN)/pytest tests/unit

integration: setup
	@$(BIN)/pytest tests/integration

# The Kubernetes binaries and images are built by the test session itself, in the background while the tests that
# need neither run (tests/prebuild.py); `make test-setup` builds the binaries up front instead.
test: setup lint typecheck
	@echo "==> pytest (unit, then integration against a real local Fabric network)"
	@$(BIN)/pytest

test-images: setup
	@echo "==> every image of gx k8s images, built from source (cold: ~30 min) and run in a private containerd"
	@GX_TEST_IMAGE_CATALOG=1 $(BIN)/pytest tests/integration/k8simages

lab: setup
	@echo "==> JupyterLab on the runbooks (kernel gxlib; templates read-only: 'gx runbook open NAME -p K V' runs a copy)"
	@$(GX) runbook lab

down: venv
	@$(GX) devnet down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
