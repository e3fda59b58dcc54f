#!/usr/bin/env bash
# gpu_check.sh - the Python package on a machine with an NVIDIA GPU and torch, offline:
#   1. pip-installs the package from this working tree with no network
#      (--no-build-isolation --no-deps: scikit-build-core, cmake, nvcc must be there);
#   2. runs python/tests against the INSTALLED package with the GPU required
#      (BK_REQUIRE_GPU=1): CUDA tensors for every op, gradcheck in f64, torch.compile,
#      CUDA graphs;
#   3. prints a summary last. Exit status 0 only when everything passed.
# PYTHON picks the interpreter (default python3), JOBS the build parallelism.
set -u
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
log=${LOG:-build-py/gpu-check}
mkdir -p "$log"
export CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-$(nproc)}
pip_args=(install --no-build-isolation --no-deps --force-reinstall .)
"$py" -m pip "${pip_args[@]}" >"$log/pip.txt" 2>&1 ||
  "$py" -m pip "${pip_args[@]}" --break-system-packages >>"$log/pip.txt" 2>&1
pip_rc=$?
tail -3 "$log/pip.txt"
info=$(cd /tmp && "$py" -c "import baracuda, torch; print('baracuda', baracuda.__file__, '| CUDA backend', \
baracuda.has_cuda(), '| torch', torch.__version__, '|', torch.cuda.get_device_name() if torch.cuda.is_available() \
else 'no CUDA device')" 2>&1)
echo "$info"
# no PYTHONPATH: the tests import the installed package (python/tests is on sys.path for conftest)
env -u PYTHONPATH -u BARACUDA_LIBRARY BK_REQUIRE_GPU=1 "$py" -m pytest python/tests -q -rs -p no:cacheprovider \
  | tee "$log/pytest.txt"
test_rc=${PIPESTATUS[0]}
echo
echo "gpu_check summary"
echo "  pip install (offline)   $([ $pip_rc = 0 ] && echo pass || echo "FAIL (see $log/pip.txt)")"
echo "  installed               $info"
echo "  pytest                  $(tail -1 "$log/pytest.txt" | sed 's/=//g; s/^ *//')"
echo "gpu_check: $([ $pip_rc = 0 ] && [ $test_rc = 0 ] && echo PASSED || echo FAILED)"
[ $pip_rc = 0 ] && [ $test_rc = 0 ]
