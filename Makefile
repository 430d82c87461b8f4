# The front door: every command the README mentions is a target here.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# sam build needs a python3.13 on PATH; pyenv machines provide it this way.
SAM_PYENV ?= 3.11.7:3.13.0
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION ?= 1.170.0

.DEFAULT_GOAL := help
.PHONY: help dev lint format typecheck test unit integration template-tests reliability conformance demo sandbox invoke build validate bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

DEV_LOCK := requirements-dev.lock
LAYER_LOCK := layers/shared/requirements.lock
# Both locks carry every wheel's hash for each pinned version (any platform), so the layer's lock
# serves an arm64 and an x86_64 build alike. The dev lock is constrained by the layer's: the
# tests run on the versions the layer ships (tests/unit/test_dependency_locks.py).
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --universal --custom-compile-command 'make lock' \
	$(if $(UPGRADE),--upgrade)

# Everything from the hashed lock; the project itself editable, built by the locked setuptools.
$(STAMP): pyproject.toml $(DEV_LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

.PHONY: lock
lock: $(STAMP) ## re-resolve the hashed lock files (layer for Python 3.13, then dev); UPGRADE=1 to move pins
	$(UV_COMPILE) --python-version 3.13 layers/shared/requirements.txt -o $(LAYER_LOCK)
	$(UV_COMPILE) --python-version 3.11 --extra dev --constraint $(LAYER_LOCK) pyproject.toml -o $(DEV_LOCK)

dev: $(STAMP) ## create .venv and install the project with its dev extras

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) lint typecheck ## lint, type-check, then the whole test suite
	$(BIN)/pytest -q

typecheck: $(STAMP) ## mypy on the layer and bridge_cli ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy

unit: $(STAMP) ## unit tests only
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) ## handler tests against moto and the sandbox
	$(BIN)/pytest -q tests/integration

template-tests: $(STAMP) ## tests on the SAM template
	$(BIN)/pytest -q tests/template

reliability: $(STAMP) ## failure-semantics tests
	$(BIN)/pytest -q tests/reliability

conformance: $(STAMP) ## our requests and the sandbox's replies against SALESmanago's own samples
	$(BIN)/pytest -q tests/conformance

demo: $(STAMP) ## run every sample event through its handler against the sandbox
	$(BIN)/python -m local.demo

sandbox: $(STAMP) ## serve the SALESmanago sandbox on :8090 (Ctrl-C to stop)
	$(BIN)/python -m local.sandbox --port 8090 --groups-file local/groups.sample.json

invoke: $(STAMP) ## run one event through one handler: make invoke FN=sqs_consumer EVENT=events/sqs_contact_upsert.json
	SALESMANAGO_ALLOW_LOOPBACK=true $(BIN)/python -m local.runner $(FN) $(EVENT)

$(SAM):
	$(PY) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --upgrade pip
	$(SAM_VENV)/bin/pip install -q aws-sam-cli==$(SAM_CLI_VERSION)

# ARCH: the layer's wheels (arm64, as deployed; x86_64 for make e2e on an x86_64 machine). Another
# architecture builds into a directory and cache of its own, so the arm64 build is never mixed up.
ARCH ?= arm64
BUILD_DIRS = $(if $(filter arm64,$(ARCH)),,--build-dir .aws-sam/$(ARCH)/build --cache-dir .aws-sam/$(ARCH)/cache)

build: $(SAM) ## sam build (SAM CLI in its own environment under .tools/); ARCH=x86_64 for this machine
	ARCH=$(ARCH) PYENV_VERSION=$(SAM_PYENV) SAM_CLI_TELEMETRY=0 $(SAM) build $(BUILD_DIRS)

# cfn-lint 1.54+ (as bundled with the SAM CLI) no longer translates SAM and misses real errors:
# the pinned one in .venv is the check that counts; sam validate --lint is a second opinion.
validate: $(SAM) lint-template ## lint-template, then sam validate --lint
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region eu-central-1

.PHONY: lint-template
lint-template: $(STAMP) ## cfn-lint (pinned, translates SAM) with the serverless rules on template.yaml
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

clean: ## remove build output and caches
	rm -rf .aws-sam .pytest_cache .ruff_cache

.PHONY: api openapi
api: $(STAMP) ## serve the HTTP API on http://127.0.0.1:3000 (sandbox; real accounts with SALESMANAGO_GROUPS_FILE)
	SALESMANAGO_ALLOW_LOOPBACK=true $(BIN)/python -m local.api_server --port 3000

openapi: $(STAMP) ## regenerate docs/openapi.json from the API routes
	$(BIN)/python -m local.openapi

.PHONY: cli-demo
cli-demo: $(STAMP) ## the `bridge` CLI end to end on moto's server: 50,000-contact backfill, dead letters, redrive
	bench/cli_backfill_demo.sh

bench: $(STAMP) ## benchmark: requests, throughput, CPU, memory, cold start, hostile input (a few minutes; not in test)
	PYENV_VERSION=$(SAM_PYENV) $(BIN)/python -m bench.run
	$(BIN)/python -m bench.hostile

.PHONY: bench-stock
bench-stock: $(STAMP) ## benchmark: 20,000 stock and price updates vs the same products upserted whole (requests, bytes)
	$(BIN)/python -m bench.stock

.PHONY: bench-hostile
bench-hostile: $(STAMP) ## benchmark: CPU per KB of the worst hostile input of each class, 10 KB vs 100 KB (seconds)
	$(BIN)/python -m bench.hostile

# make e2e: the stack built for this machine, deployed with sam deploy on ministack (IAM enforced, no
# Docker) and driven end to end (tests/e2e/README.md). The emulator runs in a Python 3.13 venv of its
# own; the functions run in another that holds only what the Lambda runtime provides (boto3).
MINISTACK_VERSION ?= 1.5.33
MINISTACK_VENV := .tools/ministack
MINISTACK := $(MINISTACK_VENV)/.installed-$(MINISTACK_VERSION)
RUNTIME_VENV := .tools/lambda-runtime
RUNTIME := $(RUNTIME_VENV)/.installed
E2E_PYTHON ?= 3.13.0
E2E_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
E2E_BUILD_DIR := $(if $(filter arm64,$(E2E_ARCH)),.aws-sam/build,.aws-sam/$(E2E_ARCH)/build)

$(MINISTACK):
	rm -rf $(MINISTACK_VENV)
	PYENV_VERSION=$(E2E_PYTHON) python3.13 -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install -q --upgrade pip
	$(MINISTACK_VENV)/bin/pip install -q ministack==$(MINISTACK_VERSION) boto3 aws-sam-translator
	touch $@

$(RUNTIME):
	rm -rf $(RUNTIME_VENV)
	PYENV_VERSION=$(E2E_PYTHON) python3.13 -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install -q --upgrade pip
	$(RUNTIME_VENV)/bin/pip install -q boto3
	touch $@

.PHONY: e2e
e2e: $(STAMP) $(MINISTACK) $(RUNTIME) ## the built stack on ministack with IAM enforced, every path driven (~2 min from cache)
	$(MAKE) --no-print-directory build ARCH=$(E2E_ARCH)
	$(BIN)/python -m tests.e2e.run --build-dir $(E2E_BUILD_DIR)

.PHONY: keys-demo
keys-demo: $(STAMP) ## `bridge keys` create, rotate, expire, revoke on moto, and the API's answer to each key
	$(BIN)/python -m local.keys_demo

.PHONY: bench-deployed
bench-deployed: $(STAMP) ## cold start as deployed, priming off and on: make bench-deployed [SAMPLES=5] [PROFILE=dir]
	PYENV_VERSION=$(SAM_PYENV) $(BIN)/python -m bench.deployed --samples $(or $(SAMPLES),3) \
		$(if $(PROFILE),--profile $(PROFILE))

.PHONY: chaos fuzz
chaos: $(STAMP) ## the chaos run with its summary table: make chaos N=100000 RATE=0.3 AWS_RATE=0.1 [SEED=7]
	$(BIN)/python -m tests.reliability.chaos --commands $(or $(N),10000) --fault-rate $(or $(RATE),0.3) \
		--aws-fault-rate $(or $(AWS_RATE),0.1) $(if $(SEED),--seed $(SEED))

fuzz: $(STAMP) ## hostile payloads against every handler (1,000 examples per main property)
	FUZZ_PROFILE=fuzz $(BIN)/pytest -q --hypothesis-show-statistics tests/reliability/test_fuzz.py
