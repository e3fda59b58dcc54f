#!/usr/bin/env bash
# run_tests.sh BUILD [PYTHON] - the Python half of `make test`: the pytest suite in
# python/tests over the package in python/ and the libbaracuda.so just built in BUILD
# (BARACUDA_LIBRARY), so it tests this tree, not an older install. Needs numpy and
# pytest in PYTHON (default python3); without them it prints SKIP and succeeds, unless
# BK_REQUIRE_PYTHON=1 (CI), which makes that a failure. torch-dependent tests skip with
# their reason when torch is missing; GPU tests skip without a CUDA device.
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
py=${2:-python3}
lib=$(ls "$build"/libbaracuda.so.[0-9]* 2>/dev/null | head -1)
if [ -z "$lib" ]; then
  echo "python tests: FAIL, no libbaracuda.so in $build"
  exit 1
fi
if ! "$py" -c "import numpy, pytest" >/dev/null 2>&1; then
  if [ "${BK_REQUIRE_PYTHON:-0}" = 1 ]; then
    echo "python tests: FAIL, $py lacks numpy or pytest (pip install numpy pytest)"
    exit 1
  fi
  echo "python tests: SKIP ($py lacks numpy or pytest: pip install numpy pytest)"
  exit 0
fi
echo "python tests: $("$py" --version 2>&1), library $lib"
BARACUDA_LIBRARY=$lib PYTHONPATH=python${PYTHONPATH:+:$PYTHONPATH} "$py" -m pytest python/tests -q -rs -p no:cacheprovider
