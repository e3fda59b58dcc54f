#!/usr/bin/env sh
# run.sh BUILD_DIR WORK_DIR - the installed-package round trip (a CTest test):
#   1. cmake --install BUILD_DIR into WORK_DIR/prefix;
#   2. configure, build and run tests/install_consumer with find_package(baracuda);
#   3. compile the same program with `pkg-config --cflags --libs baracuda` and run it.
set -eu
build=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"
if command -v pkg-config >/dev/null 2>&1; then
  pc=$(find "$work/prefix" -name baracuda.pc)
  export PKG_CONFIG_PATH="$(dirname "$pc")"
  # shellcheck disable=SC2046
  cc -std=c11 -o "$work/consumer_pc" "$here/consumer.c" $(pkg-config --cflags --libs baracuda) \
     -Wl,-rpath,"$(pkg-config --variable=libdir baracuda)"
  "$work/consumer_pc" | sed 's/^consumer:/consumer (pkg-config):/'
else
  echo "install_consumer: SKIP pkg-config build (pkg-config not installed)"
fi
