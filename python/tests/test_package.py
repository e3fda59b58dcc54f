"""The package as a user gets it: the pip-installed copy imports and runs from anywhere
with its own bundled library, and BARACUDA_LIBRARY overrides the library."""
import os
import subprocess
import sys

import pytest

import baracuda
from conftest import CUDA, REQUIRE_GPU

_PROBE = ("import baracuda, numpy as np; p = baracuda.attention_merge.plan(rows=1, parts=1, heads=1, head_dim=2, "
          "dtype='f32'); o = np.zeros((1, 1, 2), np.float32); "
          "p.run(o_parts=np.ones((1, 1, 1, 2), np.float32), lse_parts=np.zeros((1, 1, 1), np.float32), o=o); "
          "assert (o == 1).all(); print(baracuda.__file__); print(baracuda.library_path()); print(p.sku)")


def _clean_env():
    env = dict(os.environ)
    for name in ("PYTHONPATH", "BARACUDA_LIBRARY"):
        env.pop(name, None)
    return env


def test_installed_package(tmp_path):
    """`pip install .` round trip: outside the repository, without PYTHONPATH or
    BARACUDA_LIBRARY, the installed package finds its own libbaracuda.so."""
    found = subprocess.run([sys.executable, "-c", "import baracuda"], cwd=tmp_path, env=_clean_env(),
                           capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip("baracuda is not pip-installed in this Python (pip install . from the repository)")
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=_clean_env(), capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    module, lib, sku = out.stdout.split()
    pkg = os.path.dirname(module)
    assert lib.startswith(os.path.join(pkg, "lib", "libbaracuda.so")), (module, lib)
    assert sku == "attention/attention_merge/f32/cpu/reference"


def test_library_override(tmp_path):
    env = _clean_env()
    env["BARACUDA_LIBRARY"] = str(tmp_path / "missing.so")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(baracuda.__file__))
    out = subprocess.run([sys.executable, "-c", "import baracuda"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode != 0 and "missing.so" in out.stderr


def test_plan_object():
    plan = baracuda.sdpa_bwd.plan(batch=1, q_heads=2, kv_heads=1, q_len=3, kv_len=4, head_dim_qk=8, head_dim_v=8,
                                  scale=0.5, dtype="bf16", preference="deterministic")
    assert plan.sku == "attention/sdpa_bwd/bf16/cpu/reference"
    assert plan.precision.deterministic and plan.precision.accumulator == "f64"
    assert plan.workspace_size > 0 and plan.device == "cpu"
    assert plan.desc["q_heads"] == 2 and plan.desc["dtype"] == "bf16"
    assert plan is baracuda.sdpa_bwd.plan(batch=1, q_heads=2, kv_heads=1, q_len=3, kv_len=4, head_dim_qk=8,
                                          head_dim_v=8, scale=0.5, dtype="bf16", preference="deterministic")
    assert "sdpa_bwd" in repr(plan) and set(baracuda.OPS) >= {"sdpa_fwd", "ssd_bwd", "paged_decode"}


def test_plan_for_a_gpu_without_one():
    if not baracuda.has_cuda():
        pytest.skip("library built without its CUDA backend")
    plan = baracuda.sdpa_fwd.plan(device=baracuda.target_cuda_cc(9, 0), batch=1, q_heads=8, kv_heads=2, q_len=128,
                                  kv_len=128, head_dim_qk=128, head_dim_v=128, scale=0.1, dtype="bf16")
    assert plan.sku == "attention/sdpa_fwd/bf16/sm90/bespoke"
    assert plan.precision.math == "f16_bf16_tensor"


def test_tf32_is_opt_in():
    # ssd_fwd / ssd_bwd in f32: the exact plan by default, the TF32 one under "allow_tf32"
    desc = dict(batch=2, seq_len=130, heads=4, head_dim=64, state_dim=128, chunk_size=64, dtype="f32")
    assert baracuda.ssd_fwd.plan(**desc).precision.math == "f64"  # the CPU ignores it
    assert baracuda.ssd_fwd.plan(preference="allow_tf32", **desc).precision.math == "f64"
    if not baracuda.has_cuda():
        pytest.skip("built without CUDA")
    gpu = baracuda.target_cuda_cc(9, 0)
    for op in (baracuda.ssd_fwd, baracuda.ssd_bwd):
        for pref in ("fastest", "deterministic", "reference"):
            assert op.plan(device=gpu, preference=pref, **desc).precision.math == "f32"
        plan = op.plan(device=gpu, preference="allow_tf32", **desc)
        assert plan.precision.math == "tf32" and plan.precision.accumulator == "f32"
        assert plan.precision.deterministic and plan.sku.endswith("/f32/sm80/bespoke")
        bf16 = dict(desc, dtype="bf16")
        assert op.plan(device=gpu, preference="allow_tf32", **bf16).precision.math == "f16_bf16_tensor"


def test_gpu_present_when_required():
    if REQUIRE_GPU:
        assert CUDA, "BK_REQUIRE_GPU=1 but torch.cuda.is_available() / baracuda.has_cuda() is false"
