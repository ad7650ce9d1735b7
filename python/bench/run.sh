#!/usr/bin/env bash
# The Python clients benchmark (issue #4), in its own venv (.venv-bench,
# git-ignored): installs the contenders' libraries (python/bench/requirements.txt),
# builds and installs polyrelay from this checkout as pip does, then runs
# python/bench/clients.py with the arguments given (e.g. --quick), or, with
# --streaming first, python/bench/streaming.py (issue #14) with the rest. Safe
# to run again: pip skips what is installed and cargo rebuilds only what changed.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-bench"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/python/bench/requirements.txt"

# The build users get from pip (pyproject.toml: Cargo's `dist` profile): a dev
# build would measure the wrong thing.
unset MATURIN_PEP517_ARGS
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    --no-build-isolation --no-deps --force-reinstall "$root"

bench="$root/python/bench/clients.py"
if [ "${1:-}" = "--streaming" ]; then
    shift
    bench="$root/python/bench/streaming.py"
fi
exec "$venv/bin/python" "$bench" "$@"
