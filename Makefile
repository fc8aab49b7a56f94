# seedkit developer tasks. Quick start: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.seedkit-installed
PYTEST_ARGS ?= -n 2

.PHONY: demo test test-pg16 lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools notes on every editable install that a same-named folder could shadow it: known, not shown.
$(STAMP): export PYTHONWARNINGS = ignore:Editable installation
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: render a project from the template on SQLite, migrate, seed twice (the second run changes nothing)
demo: $(STAMP)
	$(BIN)/python examples/demo.py $(DEMO_ARGS)

## test: the whole suite against a real PostgreSQL (started here unless SEEDKIT_TEST_DATABASE_URL is set)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-pg16: the database tests again on PostgreSQL 16 from the pgserver wheel
## (its build has no contrib extensions: tests that need them ran on the local server in `make test`)
test-pg16: $(STAMP)
	$(BIN)/python -m pip install --quiet 'pgserver>=0.1.4,<0.2'
	SEEDKIT_TEST_PG_BINDIR=pgserver SEEDKIT_TEST_PG_MAJOR=16 $(BIN)/python -m pytest -m "postgres and not contrib" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check seedkit tests bench examples

bench: $(STAMP)
	$(BIN)/python bench/all.py --rows $${ROWS:-1000000}
	$(BIN)/python bench/plugin_bench.py
	$(BIN)/python bench/refs_bench.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
