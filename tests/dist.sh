#!/usr/bin/env bash
# What users install, checked as they would use it (issue #17):
#  1. the wheel built with the distribution profile (pyproject.toml, Cargo.toml
#     [profile.dist]) carries a manylinux tag (`auditwheel show`) and is small;
#  2. installed into a fresh venv, with no Rust toolchain on PATH, it runs
#     `polyrelay demo` (offline: every provider played by the emulator);
#  3. the sdist builds into a wheel that imports.
# The C library's install (ffi/install.sh) is checked by ffi/tests/c_abi.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
out=${CARGO_TARGET_DIR:-$root/target}/dist-check
rm -rf "$out" && mkdir -p "$out"

echo "-- wheel (profile dist)"
unset MATURIN_PEP517_ARGS
PATH="$venv/bin:$PATH" "$venv/bin/maturin" build --locked --out "$out/wheels" 2>&1 | tail -n 2
wheel=$(ls "$out"/wheels/polyrelay-*.whl)
"$venv/bin/auditwheel" show "$wheel" | tee "$out/auditwheel.txt"
grep -q 'consistent with the following platform tag: "manylinux_' "$out/auditwheel.txt" \
    || { echo "dist.sh: $wheel is not manylinux" >&2; exit 1; }
case "$(basename "$wheel")" in
    *manylinux*) ;;
    *) echo "dist.sh: $wheel is not tagged manylinux" >&2; exit 1 ;;
esac
"$venv/bin/python" - "$wheel" <<'PY'
import sys, zipfile
wheel = sys.argv[1]
with zipfile.ZipFile(wheel) as z:
    native = [i for i in z.infolist() if i.filename.startswith("polyrelay/_native")]
    size = sum(i.file_size for i in native)
import os
print(f"wheel {os.path.getsize(wheel) / 1e6:.1f} MB, native library {size / 1e6:.1f} MB unpacked")
# The release profile's library was 96 MB with its debug information.
assert size < 40e6, f"the native library is {size / 1e6:.1f} MB: debug information left in?"
PY

echo "-- a fresh venv, no Rust toolchain on PATH"
fresh=$out/fresh-venv
python=$("$venv/bin/python" -c 'import sys; print(sys._base_executable)')
"$python" -m venv "$fresh"
"$fresh/bin/python" -m pip install -q --disable-pip-version-check --no-index "$wheel"
clean_path="$fresh/bin:/usr/bin:/bin"
if env -i PATH="$clean_path" sh -c 'command -v cargo || command -v rustc' >/dev/null; then
    echo "dist.sh: a Rust toolchain is on $clean_path" >&2
    exit 1
fi
env -i PATH="$clean_path" HOME="$out" "$fresh/bin/polyrelay" demo > "$out/demo.txt"
tail -n 3 "$out/demo.txt"
grep -q "(stale" "$out/demo.txt" || { echo "dist.sh: the demo did not run through" >&2; exit 1; }

echo "-- sdist"
PATH="$venv/bin:$PATH" "$venv/bin/maturin" sdist --out "$out/sdist" 2>&1 | tail -n 1
sdist=$(ls "$out"/sdist/polyrelay-*.tar.gz)
# Built in the dev profile and the suite's target directory: this checks that
# the sdist holds everything a build needs, not the optimiser again.
PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" \
    "$venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
    -w "$out/from-sdist" "$sdist"
from_sdist=$(ls "$out"/from-sdist/polyrelay-*.whl)
"$python" -m venv "$out/sdist-venv"
"$out/sdist-venv/bin/python" -m pip install -q --disable-pip-version-check --no-index "$from_sdist"
"$out/sdist-venv/bin/python" -c 'import polyrelay; print("sdist wheel imports polyrelay", polyrelay.__version__)'
