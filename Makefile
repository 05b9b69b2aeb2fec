# The two commands: `make up` runs the demo eco-system, `make test` runs every test.
# Both install what is missing first (Debian packages as root, then .venv), and do
# nothing more when nothing changed.

SHELL := /bin/sh
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: up down status test lint unit integration performance bench deps system-packages clean

up: deps
	$(BIN)/league up

down: deps
	$(BIN)/league down

status: deps
	$(BIN)/league status

test: deps lint unit integration performance

lint: deps
	$(BIN)/ruff check src apps tests benchmarks
	$(BIN)/mypy src apps/hello/src

# Each kind runs on its own, so a kind with no tests fails (pytest exits 5).
unit: deps
	$(PYTEST) tests/unit apps/hello/tests/unit

integration: deps
	PYTEST="$(PYTEST)" scripts/run-integration.sh

performance: deps
	$(PYTEST) tests/performance apps/hello/tests/performance

bench: deps
	@PYTHON=$(PYTHON) LEAGUE_DEBIAN_PACKAGES=valgrind scripts/install-system-packages.sh
	cd benchmarks && ../$(BIN)/python bench_hello.py
	cd benchmarks && ../$(BIN)/python bench_kit_instructions.py
	cd benchmarks && ../$(BIN)/python bench_kit_auth.py
	cd benchmarks && ../$(BIN)/python bench_secure_edge.py
	cd benchmarks && ../$(BIN)/python bench_cli.py
	cd benchmarks && ../$(BIN)/python bench_build.py
	cd benchmarks && ../$(BIN)/python bench_deploy.py
	cd benchmarks && ../$(BIN)/python bench_logs.py

deps: system-packages $(INSTALLED)
	@$(BIN)/python -m compileall -q src apps/hello/src >/dev/null

system-packages:
	@PYTHON=$(PYTHON) scripts/install-system-packages.sh

$(INSTALLED): pyproject.toml apps/hello/pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "sevenleague needs Python 3.11 or newer (PYTHON=$(PYTHON))" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]' -e apps/hello
	touch $(INSTALLED)

clean:
	-test -x $(BIN)/league && $(BIN)/league down
	rm -rf $(VENV) .league build dist *.egg-info src/*.egg-info apps/hello/src/*.egg-info
