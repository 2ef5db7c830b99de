#!/usr/bin/env bash
# Tests the Python binding (bindings/python) against the built library, in a fresh virtual
# environment: build/venv-python is deleted and re-created on every run, then numpy, pytest,
# faiss-cpu (for the on-disk interoperability tests) and the package itself are installed and
# pytest runs with PATCHCORE_LIBRARY pointing at build/lib/libpatchcore.so.
# Run by `make test-python` (after `make lib`). Environment: PYTHON (default python3),
# BUILD (default <repo>/build), PATCHCORE_LIBRARY (default $BUILD/lib/libpatchcore.so),
# PYTEST_ARGS (extra pytest arguments).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PYTHON=${PYTHON:-python3}
VENV=$BUILD/venv-python
LIB=${PATCHCORE_LIBRARY:-$BUILD/lib/libpatchcore.so}

if [ ! -e "$LIB" ]; then
  echo "test-python: $LIB does not exist; run 'make lib' first" >&2
  exit 1
fi
command -v "$PYTHON" >/dev/null || { echo "test-python: $PYTHON not found" >&2; exit 1; }

rm -rf "$VENV"
# Debian and Ubuntu ship venv's pip bootstrap in a separate package (python3-venv /
# python3.X-venv). Install it only when creating the environment fails.
if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
  rm -rf "$VENV"
  pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "test-python: installing python3-venv / python$pyver-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "python$pyver-venv" python3-venv >/dev/null ||
      { apt-get update -q >/dev/null && apt-get install -y -q "python$pyver-venv" python3-venv >/dev/null; }
    "$PYTHON" -m venv "$VENV"
  else
    echo "test-python: '$PYTHON -m venv' failed; install python$pyver-venv (Debian/Ubuntu)" >&2
    exit 1
  fi
fi
PY=$VENV/bin/python

"$PY" -m pip install --quiet --disable-pip-version-check numpy pytest "setuptools>=61" wheel
if ! "$PY" -m pip install --quiet --disable-pip-version-check faiss-cpu; then
  echo "test-python: faiss-cpu could not be installed; the FAISS interoperability tests will be skipped" >&2
fi

# Build from a copy so that no build/ or *.egg-info lands in the source tree. No build
# isolation: setuptools (installed above) is the only build dependency.
SRC=$BUILD/python-src
rm -rf "$SRC"
mkdir -p "$SRC"
cp -R "$ROOT/bindings/python/pyproject.toml" "$ROOT/bindings/python/README.md" "$ROOT/bindings/python/src" "$SRC/"
"$PY" -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps "$SRC"

# Run from outside the source tree, so that the installed package is the one under test.
cd "$BUILD"
export PATCHCORE_LIBRARY="$LIB"
export PYTHONDONTWRITEBYTECODE=1
# shellcheck disable=SC2086
"$PY" -m pytest -q -p no:cacheprovider --rootdir "$ROOT/bindings/python" \
  -c "$ROOT/bindings/python/pyproject.toml" ${PYTEST_ARGS:-} "$ROOT/bindings/python/tests"
