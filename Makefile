# CMS: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
UI := gateway/ui
PYTEST_ARGS ?=

.PHONY: install ui run provision test lint format bench fuzz chaos clean

$(BIN)/cms: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(BIN)/cms

install: $(BIN)/cms ui ## the Python environment and the built web UI

UI_SOURCES := $(shell find $(UI)/src $(UI)/public $(UI)/index.html $(UI)/package.json $(UI)/package-lock.json $(UI)/vite.config.js -type f 2>/dev/null)

ui: $(UI)/dist/index.html ## build the web UI (Vue + Element Plus, bundled by Vite: no CDN)

$(UI)/dist/index.html: $(UI_SOURCES)
	cd $(UI) && npm ci --no-audit --no-fund --loglevel=error && npm run build

run: install ## create database, roles, schemas; migrate; start every service and the gateway
	$(BIN)/cms run

provision: $(BIN)/cms ## only create/migrate the database and declare the queues
	$(BIN)/cms provision

lint: $(BIN)/cms ## ruff, as CI runs it
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/cms
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install lint ## the whole suite: lint, unit, integration, end-to-end and browser tests
	$(BIN)/python -m tests.parallel -q $(PYTEST_ARGS)

QUICK ?=
BENCH_ARGS ?=

bench: install ## performance figures (docs/performance.md): make bench [QUICK=1] [BENCH_ARGS=...]
	$(BIN)/python -m bench $(if $(filter-out 0 no false,$(QUICK)),--quick) $(BENCH_ARGS)

FUZZ_EXAMPLES ?= 50

fuzz: $(BIN)/cms ## longer API fuzzing: every schemathesis phase, FUZZ_EXAMPLES per operation
	CMS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CMS_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
		$(BIN)/pytest -q -s tests/security/test_fuzz.py

FAULTS ?= real

chaos: $(BIN)/cms ## orders and payments under faults; FAULTS=real restarts this machine's RabbitMQ and PostgreSQL, FAULTS=proxy cuts only this run's connections
	$(BIN)/python -m chaos --faults $(FAULTS)

clean:
	rm -rf $(VENV) $(UI)/node_modules $(UI)/dist
