#!/usr/bin/env bash
# Install hookpost from this checkout into a virtual environment at PREFIX:
#
#     deploy/install.sh /opt/hookpost
#
# The one list of build steps: the Dockerfile runs it, a systemd host runs it (docs/deploy.md),
# and CI runs it into a clean directory (.ci/run). It creates PREFIX as a venv, installs the
# runtime lock there (requirements.lock: the dependencies and the postgres extra, never the dev
# tools), builds the wheel from a copy of the sources and installs it without dependencies, then
# checks that the installed command runs and migrates a scratch SQLite database.
#
# Needs python3 (3.11+, with venv and pip) and network access to PyPI (or PIP_INDEX_URL).
set -euo pipefail

prefix=${1:?usage: deploy/install.sh PREFIX   (e.g. /opt/hookpost)}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
pip_flags=(-q --disable-pip-version-check --no-input)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "hookpost install: $src -> $prefix"
"$python" -m venv "$prefix"
"$prefix/bin/python" -m pip install "${pip_flags[@]}" -r "$src/requirements.lock"

# Build from a copy: the checkout stays as it was (no build/ or *.egg-info left in it), and
# only the sources go in (not a developer's .venv or databases).
mkdir "$work/src"
tar -C "$src" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude='__pycache__' --exclude='*.db*' --exclude='*.key' \
    -cf - . | tar -C "$work/src" -xf -
"$prefix/bin/python" -m pip wheel "${pip_flags[@]}" --no-deps -w "$work/dist" "$work/src"
"$prefix/bin/python" -m pip install "${pip_flags[@]}" --no-deps --force-reinstall "$work"/dist/hookpost-*.whl

# The installed command runs, from PREFIX, with its migrations (away from the sources).
(
    cd "$work"
    "$prefix/bin/hookpost" --version
    "$prefix/bin/python" -c 'import hookpost, sys; assert hookpost.__file__.startswith(sys.prefix), hookpost.__file__'
    "$prefix/bin/hookpost" migrate --db "sqlite:///$work/check.db"
)
echo "hookpost install: done ($prefix/bin/hookpost)"
