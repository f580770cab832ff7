#!/usr/bin/env bash
# Create .venv and install the pinned requirements when they changed since the last install.
# Idempotent and quick when nothing changed, so `make run` and `make test` both call it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON=$candidate; break; fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "bootstrap: no python3 found; install Python 3.11 first." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "bootstrap: $PYTHON is $("$PYTHON" --version 2>&1); Python 3.11 or newer is needed." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi

stamp=$(cat requirements.txt requirements-dev.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.requirements-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "bootstrap: installing requirements (first time: about 2 minutes, ~6 GB with CUDA torch)"
  start=$(date +%s)
  .venv/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt
  # Second step without dependency resolution: face-recognition declares `dlib`, which dlib-bin
  # already provides (building dlib from source takes 10 minutes); XStatic-Bootstrap needs the
  # venv's pinned setuptools to build.
  .venv/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -r requirements-nodeps.txt
  echo "$stamp" > .venv/.requirements-stamp
  echo "bootstrap: installed in $(( $(date +%s) - start )) s"
fi
