# hookpost developer tasks. Everything runs from the project venv in .venv/.
#
#   make run      start the service (SQLite by default)
#   make test     THE test command (what CI and the README use)
#   make lint     ruff check, ruff format --check, mypy, import-linter
#   make install  create/refresh .venv from requirements.lock (idempotent)
#   make lock     regenerate requirements.lock from pyproject.toml
#   make clean    remove the venv, caches and build artefacts
#
# Extra arguments: make test ARGS="-k claim -x", make run ARGS="--port 9000".

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
UV_VERSION := 0.13.9
LOCKFILE   := requirements.lock
STAMP      := $(VENV)/.install-stamp
UV_PIP     := $(BIN)/uv pip install --python $(BIN)/python
ARGS       ?=

.PHONY: help run install test lint lock clean

help:
	@echo "targets: run install test lint lock clean   (e.g. make test ARGS='-k store -x')"

# The stamp is newer than its inputs after a successful install; any change to the
# lock file, pyproject.toml or this Makefile (e.g. UV_VERSION) re-runs the install.
install: $(STAMP)

$(STAMP): $(LOCKFILE) pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV_PIP) -r $(LOCKFILE)
	$(UV_PIP) --no-deps -e .
	touch $@

run: install
	$(BIN)/hookpost serve $(ARGS)

# pytest exit codes: 0 ok, 1 failures, 2 interrupted, 3 internal error, 4 usage, 5 no tests.
# Exit 5 is a failure here too (make turns every non-zero status into a failure).
test: install
	@rc=0; $(BIN)/python -m pytest $(ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected NO tests (exit 5) - treated as a failure" >&2; fi; \
	exit $$rc

# Runs every linter even if an earlier one fails, then fails if any did.
lint: install
	@failed=""; \
	for cmd in "ruff check ." "ruff format --check ." "mypy hookpost" "lint-imports"; do \
	  echo "--- $$cmd"; \
	  $(BIN)/$$cmd || failed="$$failed [$$cmd]"; \
	done; \
	if [ -n "$$failed" ]; then echo "make lint: FAILED:$$failed" >&2; exit 1; fi; \
	echo "make lint: all checks passed"

# Needs only uv (bootstraps the venv if absent, without installing the lock it is about to
# rewrite). Keeps existing pins where possible; make lock ARGS=--upgrade to bump everything.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o $(LOCKFILE) $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
