#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every layer.
# Installs what it needs (idempotently) through tests/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup.sh

echo "== rustfmt"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== rust tests"
cargo test --workspace --locked
