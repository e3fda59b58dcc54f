#!/usr/bin/env bash
# gpu_test.sh - `make gpu-test`: on a machine with an NVIDIA GPU, build for sm_80 and
# sm_90a, run the whole suite with the GPU required, then compute-sanitizer memcheck and
# racecheck over every test binary (BK_TEST_QUICK=1 keeps those runs short). Ends with a
# pass/fail summary; exit status 0 only when everything passed.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
LOG=${LOG:-$BUILD/gpu-test-logs}
cmake -S . -B "$BUILD" -DCMAKE_CUDA_ARCHITECTURES="80;90a" >/dev/null || exit 1
cmake --build "$BUILD" -j "$JOBS" || exit 1
mkdir -p "$LOG"
declare -a rows
fails=0
(cd "$BUILD" && BK_REQUIRE_GPU=1 ctest --output-on-failure -j 4) | tee "$LOG/ctest.txt"
ctest_rc=${PIPESTATUS[0]}
rows+=("ctest (all tests, GPU required)|$([ "$ctest_rc" = 0 ] && echo pass || echo FAIL)")
[ "$ctest_rc" = 0 ] || fails=$((fails + 1))
if command -v compute-sanitizer >/dev/null 2>&1; then
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    for tool in memcheck racecheck; do
      BK_REQUIRE_GPU=1 BK_TEST_QUICK=1 compute-sanitizer --tool "$tool" --error-exitcode 99 "$t" >"$LOG/$name.$tool.txt" 2>&1
      rc=$?
      summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$LOG/$name.$tool.txt" | tail -1 | sed 's/=========//')
      counts=$(grep -E "passed, [0-9]+ failed" "$LOG/$name.$tool.txt" | tail -1 | sed 's/^[^:]*: //')
      if [ "$rc" = 0 ]; then rows+=("$name $tool|pass ($counts;$summary)"); else rows+=("$name $tool|FAIL rc=$rc ($counts;$summary)"); fails=$((fails + 1)); fi
    done
  done
else
  rows+=("compute-sanitizer|not found")
  fails=$((fails + 1))
fi
echo
echo "gpu-test summary ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
for r in "${rows[@]}"; do printf '  %-34s %s\n' "${r%%|*}" "${r#*|}"; done
echo "gpu-test: $([ $fails = 0 ] && echo PASSED || echo "FAILED ($fails)")"
[ $fails = 0 ]
