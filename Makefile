# Haven: `make run` brings everything up on loopback; `make test` runs the suite on the real stack.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
REPLICAS ?= 1
SPLIT ?=
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The test stack runs beside a `make run` stack: other ports, another run directory. Every port is below
# Linux's ephemeral range (32768-60999), so no outgoing connection can be holding one when a server binds it.
TEST_ENV := HAVEN_RUN_DIR=.run/test HAVEN_KAFKA_PORT=19092 HAVEN_KAFKA_CONTROLLER_PORT=19093 HAVEN_PG_PORT=15432 \
            HAVEN_GATEWAY_PORT=18000
# The benchmark gets a fresh stack of its own each run: every figure starts from empty topics and tables.
BENCH_ENV := HAVEN_RUN_DIR=.run/bench HAVEN_KAFKA_PORT=26092 HAVEN_KAFKA_CONTROLLER_PORT=26093 HAVEN_PG_PORT=26432 \
             HAVEN_GATEWAY_PORT=26000
# make chaos (and its smoke run in make test) too: its processes' probes count up from 27100.
CHAOS_ENV := HAVEN_RUN_DIR=.run/chaos HAVEN_KAFKA_PORT=27092 HAVEN_KAFKA_CONTROLLER_PORT=27093 HAVEN_PG_PORT=27432 \
             HAVEN_GATEWAY_PORT=27000 HAVEN_HEALTH_BASE_PORT=27100

.PHONY: help install lint fmt chart asyncapi messages infra-up infra-down infra-status clean clean-stack run test test-unit bench bench-relay chaos chaos-smoke

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv with the pinned dependencies

lint: $(STAMP) ## ruff, mypy --strict, and the dependency floors (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

fmt: $(STAMP) ## format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

chart: $(STAMP) ## helm lint, helm template (defaults and helm/haven/ci/*), every object checked against Kubernetes
	$(PY) -m infra.chart

asyncapi: $(STAMP) ## regenerate events/asyncapi.json, graphql/schema.graphql and the generated docs/
	$(PY) -m events.asyncapi
	$(PY) -m gateway.schema --write
	$(PY) -m infra.docs --write
	$(PY) -m infra.chart --write

messages: $(STAMP) ## extract the console's messages and merge them into its catalogs (then translate what is new)
	cd graphql/gateway/console && ../../../$(VENV)/bin/pybabel -q extract -F babel.cfg --no-location --sort-output \
	  -o locale/messages.pot . && ../../../$(VENV)/bin/pybabel -q update -i locale/messages.pot -d locale --ignore-obsolete --width 120

infra-up: $(STAMP) ## install, start and prepare Kafka and PostgreSQL (idempotent)
	$(PY) -m infra.stack up

infra-down: $(STAMP) ## stop Kafka and PostgreSQL by pid
	$(PY) -m infra.stack down

infra-status: $(STAMP)
	$(PY) -m infra.stack status

clean: $(STAMP) ## stop everything and wipe the data of both stacks (the download cache stays)
	$(PY) -m infra.stack clean
	$(TEST_ENV) $(PY) -m infra.stack clean
	$(BENCH_ENV) $(PY) -m infra.stack clean

clean-stack: $(STAMP) # stop and wipe the stack the HAVEN_* environment names
	$(PY) -m infra.stack clean

run: infra-up ## bring up the stack: every service in one process (SPLIT=1: one each; REPLICAS=2: two); Ctrl-C stops
	bin/haven seed-demo --quiet
	HAVEN_WEBHOOKS_ALLOW_LOOPBACK=true HAVEN_REPLICAS=$(REPLICAS) HAVEN_SPLIT=$(SPLIT) $(PY) -m services.kernel.launcher

bench: $(STAMP) ## benchmarks against their ceilings, on a fresh stack of their own; JSON and PNG in bench/results/
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(BENCH_ENV) $(PY) -m infra.stack clean
	$(BENCH_ENV) $(PY) -m infra.stack up
	set -o pipefail; $(BENCH_ENV) $(PY) -m bench.run $(BENCH_ARGS); rc=$$?; \
	  $(BENCH_ENV) $(PY) -m infra.stack down; exit $$rc

bench-relay: $(STAMP) ## outbox relay throughput vs the raw producer, same broker, same run
	$(BENCH_ENV) $(PY) -m infra.stack up
	$(BENCH_ENV) $(PY) -m bench.relay --out bench/results/relay.json

test-unit: $(STAMP) ## the tests that need no infrastructure
	$(PY) -m pytest -m "not integration and not e2e" -q

test: $(STAMP) ## lint, then every test on a real Kafka and PostgreSQL (started, then stopped)
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory chart
	$(TEST_ENV) $(PY) -m infra.stack up
	set -o pipefail; $(TEST_ENV) $(PY) -m pytest -q -p no:cacheprovider --durations=10; rc=$$?; \
	  $(TEST_ENV) $(PY) -m infra.stack down; exit $$rc
	$(MAKE) --no-print-directory chaos-smoke

chaos: $(STAMP) ## the platform under load and faults, checked after (CHAOS_ARGS=--referrals N); chaos/results/
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(CHAOS_ENV) $(PY) -m infra.stack clean
	$(CHAOS_ENV) $(PY) -m infra.stack up
	set -o pipefail; $(CHAOS_ENV) $(PY) -m chaos.run $(CHAOS_ARGS); rc=$$?; \
	  $(CHAOS_ENV) $(PY) -m infra.stack down; exit $$rc

chaos-smoke: $(STAMP) ## make chaos, short: 150 referrals, one fault of each kind (part of make test)
	$(CHAOS_ENV) $(PY) -m infra.stack clean
	$(CHAOS_ENV) $(PY) -m infra.stack up
	set -o pipefail; $(CHAOS_ENV) $(PY) -m chaos.run --smoke --no-plot; rc=$$?; \
	  $(CHAOS_ENV) $(PY) -m infra.stack down; exit $$rc
