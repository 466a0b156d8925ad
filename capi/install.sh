#!/usr/bin/env bash
# Installs kingpin's C and C++ API from a finished cargo build:
#   capi/install.sh PREFIX [PROFILE]        (PROFILE: release, the default, or debug)
# PREFIX/include/kingpin.h, kingpin.hpp; PREFIX/lib/libkingpin.so.0.1.0 (+ .so.0, .so links),
# libkingpin.a; PREFIX/lib/cmake/kingpin/ (find_package(kingpin) → kingpin::kingpin);
# PREFIX/lib/pkgconfig/kingpin.pc. `make install PREFIX=…` builds the release library first.
# KINGPIN_LIB_DIR names the directory holding libkingpin_capi.so/.a when it is not
# $CARGO_TARGET_DIR/PROFILE (`cargo test` leaves them in PROFILE/deps: the tests use that).
set -euo pipefail

prefix=${1:?usage: capi/install.sh PREFIX [release|debug]}
profile=${2:-release}
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../target}
from=${KINGPIN_LIB_DIR:-$target/$profile}
version=0.1.0
major=${version%%.*}

for f in libkingpin_capi.so libkingpin_capi.a; do
    [ -f "$from/$f" ] || { echo "capi/install.sh: $from/$f is missing: build it first (cargo build -p kingpin-capi, with --release for release)" >&2; exit 1; }
done

mkdir -p "$prefix/include" "$prefix/lib/cmake/kingpin" "$prefix/lib/pkgconfig"
install -m 644 "$here/include/kingpin.h" "$here/include/kingpin.hpp" "$prefix/include/"
install -m 755 "$from/libkingpin_capi.so" "$prefix/lib/libkingpin.so.$version"
ln -sf "libkingpin.so.$version" "$prefix/lib/libkingpin.so.$major"
ln -sf "libkingpin.so.$major" "$prefix/lib/libkingpin.so"
install -m 644 "$from/libkingpin_capi.a" "$prefix/lib/libkingpin.a"
install -m 644 "$here/cmake/kingpinConfig.cmake" "$prefix/lib/cmake/kingpin/"
sed "s/@VERSION@/$version/g" "$here/cmake/kingpinConfigVersion.cmake.in" > "$prefix/lib/cmake/kingpin/kingpinConfigVersion.cmake"
sed -e "s|@PREFIX@|$prefix|g" -e "s/@VERSION@/$version/g" "$here/cmake/kingpin.pc.in" > "$prefix/lib/pkgconfig/kingpin.pc"
echo "installed kingpin $version ($profile) under $prefix"
