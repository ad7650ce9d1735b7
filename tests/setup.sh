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

# cbindgen, at the version include/polyrelay.h is generated with (pinned in
# ffi/tests/c_abi.rs, whose header_is_up_to_date test runs it).
cbindgen_version=$(sed -n 's/^const CBINDGEN_VERSION: &str = "\(.*\)";$/\1/p' \
    "$(dirname "$0")/../ffi/tests/c_abi.rs")
if [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $cbindgen_version" ]; then
    cargo install cbindgen --version "$cbindgen_version" --locked
fi
