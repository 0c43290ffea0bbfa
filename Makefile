# The two commands a user needs: `make run` (service on the simulator) and `make test` (whole suite).
# Both bootstrap what they need on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@# Debian's own python3 ships venv/ensurepip separately (python3-venv).
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || scripts/system-deps.sh python3-venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/homemeter --data-dir $(DATA) run --http-port 8080 --modbus-port 5020

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src

test: $(STAMP)
	scripts/system-deps.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/sampling.py
	scripts/system-deps.sh wrk
	$(BIN)/python bench/http.py
	$(BIN)/python bench/modbus/run.py
	$(BIN)/python bench/influxdb.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
