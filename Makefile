# hookpost developer tasks. Everything runs from the project venv in .venv/.
#
#   make run         start the service (SQLite by default); installs the runtime only
#   make test        THE test command (what CI and the README use)
#   make test-quick  in-process tests on SQLite: no processes, browser, PostgreSQL or slow ones (~1.5 min)
#   make lint        ruff check, ruff format --check, mypy, import-linter
#   make install     create/refresh .venv with the runtime and the dev tools (idempotent)
#   make lock        regenerate both lock files from pyproject.toml
#   make clean       remove the venv, caches and build artefacts
#
# Two lock files (docs/decisions/0040-packaging-and-deployment.md):
#   requirements.lock      the runtime: the dependencies and the postgres extra (make run,
#                          the container, systemd installs: deploy/install.sh)
#   requirements-dev.lock  every extra (dev, postgres, redis, verify, ...): make test/lint, CI
# The runtime lock pins the same versions as the dev lock: it is compiled with the dev lock as
# its constraints.
#
# Extra arguments: make test ARGS="-k claim -x", make run ARGS="--port 9000".

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON        ?= python3
VENV          := .venv
BIN           := $(VENV)/bin
UV_VERSION    := 0.13.9
RUNTIME_LOCK  := requirements.lock
DEV_LOCK      := requirements-dev.lock
RUNTIME_STAMP := $(VENV)/.install-stamp-runtime
DEV_STAMP     := $(VENV)/.install-stamp-dev
UV_PIP        := $(BIN)/uv pip install --python $(BIN)/python
ARGS          ?=
# Keep ARGS=... (a command-line variable) out of MAKEFLAGS: a test that runs `make` itself (the
# README quickstart test) would otherwise inherit it through the environment.
MAKEOVERRIDES :=

.PHONY: help run install install-runtime test test-quick lint lock clean

help:
	@echo "targets: run install test test-quick lint lock clean   (e.g. make test ARGS='-k store -x')"

# A stamp is newer than its inputs after a successful install; any change to a lock file,
# pyproject.toml or this Makefile (e.g. UV_VERSION) re-runs the install.
install-runtime: $(RUNTIME_STAMP)
install: $(DEV_STAMP)

$(RUNTIME_STAMP): $(RUNTIME_LOCK) pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV_PIP) -r $(RUNTIME_LOCK)
	$(UV_PIP) --no-deps -e .
	touch $@

$(DEV_STAMP): $(DEV_LOCK) $(RUNTIME_STAMP)
	$(UV_PIP) -r $(DEV_LOCK)
	touch $@

run: install-runtime
	$(BIN)/hookpost serve $(ARGS)

# pytest exit codes: 0 ok, 1 failures, 2 interrupted, 3 internal error, 4 usage, 5 no tests.
# Exit 5 is a failure here too (make turns every non-zero status into a failure).
PYTEST = @rc=0; $(BIN)/python -m pytest $(1) $(ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected NO tests (exit 5) - treated as a failure" >&2; fi; \
	exit $$rc

test: install
	$(call PYTEST,)

# No test that starts processes (tests/multiprocess) and none marked slow.
test-quick: install
	$(call PYTEST,-m "not slow and not browser and not postgres" --ignore=tests/multiprocess)

# Runs every linter even if an earlier one fails, then fails if any did.
lint: install
	@failed=""; \
	for cmd in "ruff check ." "ruff format --check ." "mypy hookpost" "lint-imports"; do \
	  echo "--- $$cmd"; \
	  $(BIN)/$$cmd || failed="$$failed [$$cmd]"; \
	done; \
	if [ -n "$$failed" ]; then echo "make lint: FAILED:$$failed" >&2; exit 1; fi; \
	echo "make lint: all checks passed"

# Needs only uv (bootstraps the venv if absent, without installing the locks it is about to
# rewrite). The dev lock resolves every extra; the runtime lock takes its versions from it.
# Keeps existing pins where possible; make lock ARGS=--upgrade to bump everything.
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --python-version 3.11 --quiet
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV_COMPILE) --all-extras -o $(DEV_LOCK) $(ARGS)
	$(UV_COMPILE) --extra postgres -c $(DEV_LOCK) -o $(RUNTIME_LOCK)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
