#!/usr/bin/env sh
# run.sh BUILD_DIR WORK_DIR - the installed-package round trip (a CTest test):
#   1. cmake --install BUILD_DIR into WORK_DIR/prefix;
#   2. configure, build and run tests/install_consumer with find_package(baracuda), linking
#      baracuda::baracuda (the shared library), then baracuda::baracuda_static;
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
cmake -S "$here" -B "$work/cmake-static" -DCMAKE_PREFIX_PATH="$work/prefix" -DCONSUMER_STATIC=ON >/dev/null
cmake --build "$work/cmake-static" >/dev/null
out=$("$work/cmake-static/consumer")
echo "$out" | sed 's/^consumer:/consumer (static):/'
if command -v pkg-config >/dev/null 2>&1; then
  pc=$(find "$work/prefix" -name baracuda.pc)
  export PKG_CONFIG_PATH="$(dirname "$pc")"
  # shellcheck disable=SC2046
  cc -std=c11 -o "$work/consumer_pc" "$here/consumer.c" $(pkg-config --cflags --libs baracuda) \
     -Wl,-rpath,"$(pkg-config --variable=libdir baracuda)"
  out=$("$work/consumer_pc")
  echo "$out" | sed 's/^consumer:/consumer (pkg-config):/'
else
  echo "install_consumer: SKIP pkg-config build (pkg-config not installed)"
fi
