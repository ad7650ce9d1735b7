#!/usr/bin/env bash
# Installs polyrelay's C library: include/polyrelay.h, the shared and static
# libraries and their pkg-config files (polyrelay.pc, polyrelay-static.pc).
#
#   bash ffi/install.sh [--prefix DIR] [--profile NAME] [--lib-dir DIR]
#
#   --prefix DIR    where to install (default /usr/local): DIR/include,
#                   DIR/lib, DIR/lib/pkgconfig
#   --profile NAME  the Cargo profile to build (default dist: stripped, LTO;
#                   see Cargo.toml)
#   --lib-dir DIR   install libraries already built in DIR instead of building
#
# Then: cc app.c $(pkg-config --cflags --libs polyrelay) with
# PKG_CONFIG_PATH=DIR/lib/pkgconfig when DIR is not a system prefix.
# Linux and macOS; on Windows, link target/<profile>/polyrelay_ffi.dll.lib.
set -euo pipefail

prefix=/usr/local
profile=dist
lib_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --profile) profile=${2:?--profile needs a name}; shift 2 ;;
        --lib-dir) lib_dir=${2:?--lib-dir needs a directory}; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."

if [ -z "$lib_dir" ]; then
    cargo build -p polyrelay-ffi --profile "$profile" --locked
    case "$profile" in dev|test) out=debug ;; *) out=$profile ;; esac
    lib_dir=${CARGO_TARGET_DIR:-target}/$out
fi
# build.rs writes the pkg-config files beside the libraries (in <profile>/,
# while a test's libraries are in <profile>/deps/).
templates=$lib_dir/pkgconfig
[ -d "$templates" ] || templates=$lib_dir/../pkgconfig
shared=$lib_dir/libpolyrelay_ffi.so
[ -e "$shared" ] || shared=$lib_dir/libpolyrelay_ffi.dylib
for file in "$shared" "$lib_dir/libpolyrelay_ffi.a" "$templates/polyrelay.pc" "$templates/polyrelay-static.pc"; do
    [ -e "$file" ] || { echo "install.sh: $file is missing: build polyrelay-ffi first" >&2; exit 1; }
done

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
prefix=$(cd "$prefix" && pwd)
install -m 644 include/polyrelay.h "$prefix/include/"
install -m 755 "$shared" "$prefix/lib/"
install -m 644 "$lib_dir/libpolyrelay_ffi.a" "$prefix/lib/"
# The same files as build.rs's, pointed at the installed copies.
for name in polyrelay polyrelay-static; do
    {
        echo "prefix=$prefix"
        sed -e 's|^libdir=.*|libdir=${prefix}/lib|' \
            -e 's|^includedir=.*|includedir=${prefix}/include|' "$templates/$name.pc"
    } > "$prefix/lib/pkgconfig/$name.pc"
done
echo "installed polyrelay's C library under $prefix"
