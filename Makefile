# piadesk: `make run` (demo on SQLite with the PSA sandbox; VENDOR=connectwise|autotask|halopsa),
# `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
VENDOR ?= connectwise

.PHONY: setup run test lint check-migrations bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "piadesk needs Python 3.11 (set PYTHON=/path/to/python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

setup: $(VENV)/.installed

run: setup
	DEBUG=1 PIADESK_SANDBOX=1 $(PY) manage.py demo --port $(PORT) --vendor $(VENDOR)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

# PIADESK_SANDBOX=1: the sandbox app is installed only when it is on, and its migrations are
# checked as well.
check-migrations: setup
	DEBUG=1 PIADESK_SANDBOX=1 $(PY) manage.py makemigrations --check --dry-run

# Ingest vs its floor and dispatch vs W/L on PostgreSQL (bench/run.py; README "Performance").
# QUICK=1: about a minute. BENCH_DATABASE: the server (default the unix socket, user postgres).
bench: setup
	$(PY) bench/run.py $(if $(QUICK),--quick) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
