# The two commands a user needs: `make run` (service on the simulator) and `make test` (whole suite).
# Both bootstrap what they need on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
STAMP := $(VENV)/.installed
# pytest-xdist workers for make test: the suite waits (services, brokers, influxd, Chromium) far more
# than it computes, so more workers than cores; 4 measured as fast as 5 or 6 on 2 cores, with the least
# CPU spent on starting workers. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4

WEB_BUILT := src/homemeter/web/static/index.html
WEB_DEPS := web/node_modules/.package-lock.json

.PHONY: install web run demo test lint bench soak fuzz clean

$(STAMP): pyproject.toml constraints.txt
	@# Debian's own python3 ships venv/ensurepip separately (python3-venv).
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || scripts/system-deps.sh python3-venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The web UI: Node and npm only here, at build time (Debian's, installed as root when missing). The
# built files are package data; without npm the service still runs, with the API only.
$(WEB_DEPS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || scripts/system-deps.sh nodejs npm
	@if command -v npm >/dev/null; then cd web && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "web: npm is missing, the web UI is not built (install nodejs and npm)" >&2; fi

$(WEB_BUILT): $(WEB_DEPS) web/build.mjs $(shell find web/src -type f)
	@if [ -d web/node_modules ]; then node web/build.mjs; fi

web: $(WEB_BUILT)

install: $(STAMP) web

run: $(STAMP) web
	$(BIN)/homemeter --data-dir $(DATA) run --http-port 8080 --modbus-port 5020

# The service on 30 simulated days of history (regenerated each time, in its own data directory).
DEMO_DATA ?= data-demo
demo: $(STAMP) web
	$(BIN)/homemeter --data-dir $(DEMO_DATA) simulate --days 30 --replace
	$(BIN)/homemeter --data-dir $(DEMO_DATA) run --http-port 8080 --modbus-port 5020

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports --no-cache

test: $(STAMP) web
	scripts/system-deps.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

bench: $(STAMP)
	$(BIN)/python bench/sampling.py
	$(BIN)/python bench/history.py
	scripts/system-deps.sh wrk
	$(BIN)/python bench/http.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/modbus/run.py
	$(BIN)/python bench/mqtt.py
	$(BIN)/python bench/influxdb.py

# Reliability (README "Reliability"): long versions of tests/reliability and tests/fuzz, each printing
# a table of what was tried and what held. Disk-full and read-only checks need root (tmpfs mounts).
soak: $(STAMP) web
	$(BIN)/python -m tests.reliability.soak

fuzz: $(STAMP) web
	$(BIN)/python -m tests.fuzz.run
	$(BIN)/python bench/sources.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -rf web/node_modules src/homemeter/web/static test-output
