# piadesk: `make run` (demo on SQLite with the PSA sandbox; VENDOR=connectwise|autotask|halopsa),
# `make test` (the whole suite).
# Python 3.11, 3.12 or 3.13: python3.11 when present, else python3; choose another with e.g.
# `PYTHON=python3.13 make test`. A pyenv shim for a version that pyenv does not have selected
# (it prints "command exists in these Python versions") is resolved to that version's binary.
PYTHON ?= $(shell python3.11 -c '' 2>/dev/null && echo python3.11 || echo python3)
PYTHON_BIN := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || \
	(v=$$(pyenv whence $(PYTHON) 2>/dev/null | tail -n 1) && [ -n "$$v" ] && \
	 echo "$$(pyenv root)/versions/$$v/bin/$(PYTHON)") || echo $(PYTHON))
PYTHON_VERSION := $(shell $(PYTHON_BIN) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# One virtualenv per checkout (VENV=.venv313 keeps a second one beside it, as .ci/run does);
# switching PYTHON rebuilds it for that version.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
VENDOR ?= connectwise

.PHONY: setup run test lint check-migrations bench clean python-version manage

$(VENV)/.installed-$(PYTHON_VERSION): pyproject.toml
	@$(PYTHON_BIN) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else "piadesk needs Python 3.11, 3.12 or 3.13 (set PYTHON=python3.13 or a path)")' \
		|| { echo "PYTHON=$(PYTHON) is not a usable Python interpreter"; exit 1; }
	rm -f $(VENV)/.installed*
	$(PYTHON_BIN) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

setup: $(VENV)/.installed-$(PYTHON_VERSION)

run: setup
	DEBUG=1 PIADESK_SANDBOX=1 $(PY) manage.py demo --port $(PORT) --vendor $(VENDOR)

# Any management command on the laptop database, e.g. make manage ARGS='grant_role jane ...'.
# DEBUG=1 and the sandbox, as make run: development defaults (no SECRET_KEY or encryption keys
# needed). Not for production: deploy/piadesk-manage runs manage.py with its environment.
manage: setup
	DEBUG=1 PIADESK_SANDBOX=1 $(PY) manage.py $(ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff, then mypy (configured in pyproject.toml: strict on psa/ and timelogging/services/).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

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

# Prints the interpreter's version; fails when PYTHON is not a usable interpreter (.ci/run).
python-version:
	@test -n "$(PYTHON_VERSION)" && echo $(PYTHON_VERSION)
