#!/usr/bin/env bash
# Checks that a plain build of the core (default features, no `emulator`)
# carries none of the providers' fixture bodies: builds the library and looks
# in it for the opening of every fixture file.
#
#   bash tests/no_fixtures_in_build.sh            # dev profile (cheap)
#   bash tests/no_fixtures_in_build.sh --release  # the release rlib
set -euo pipefail
cd "$(dirname "$0")/.."

rlib=$(cargo build -p polyrelay --lib --message-format=json "$@" \
    | sed -n 's/.*"filenames":\["\([^"]*\.rlib\)".*/\1/p' | tail -n 1)
[ -f "$rlib" ] || { echo "no rlib found" >&2; exit 1; }

found=0
checked=0
for fixture in core/src/providers/fixtures/*/*.*; do
    # 40 bytes of the body's first long line are distinctive enough.
    marker=$(grep -m 1 -aE '.{24,}' "$fixture" | head -c 40)
    checked=$((checked + 1))
    if grep -qaF -- "$marker" "$rlib"; then
        echo "fixture text in a plain build: $fixture" >&2
        found=$((found + 1))
    fi
done
[ "$checked" -gt 0 ] || { echo "no fixture files found" >&2; exit 1; }
if [ "$found" -gt 0 ]; then
    exit 1
fi
echo "$(basename "$rlib"): none of $checked fixtures"
