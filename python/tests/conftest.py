"""Shared test fixtures: the backends every op test runs on (NumPy arrays on the CPU
always; torch CPU tensors when torch is installed; torch CUDA tensors when a GPU and a
CUDA build are present), and per-dtype tolerances."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import baracuda  # noqa: E402

try:
    import torch
except ImportError:  # the torch-dependent tests skip
    torch = None

CUDA = bool(torch is not None and torch.cuda.is_available() and baracuda.has_cuda())
REQUIRE_GPU = os.environ.get("BK_REQUIRE_GPU") == "1"


def _bf16_bits(a):
    """float64 -> bfloat16 bit patterns (uint16), round to nearest even via f32."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


class NumpyBackend:
    """NumPy arrays on the CPU; bf16 as uint16 bit patterns viewed with baracuda.view."""

    name, device, torch = "numpy", "cpu", False

    def put(self, a, dtype):
        a = np.asarray(a, np.float64)
        if dtype == "bf16":
            return baracuda.view(_bf16_bits(a), dtype="bf16")
        return np.ascontiguousarray(a.astype({"f32": np.float32, "f64": np.float64, "f16": np.float16,
                                              "i32": np.int32, "i64": np.int64}[dtype]))

    def get(self, t):
        if isinstance(t, baracuda.View):
            return (t.owner.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        return np.asarray(t, np.float64)

    def empty(self, shape, dtype):
        return self.put(np.full(shape, np.nan), dtype)


class TorchBackend:
    """torch tensors on `device`."""

    torch = True

    def __init__(self, device):
        self.device, self.name = device, "torch-" + device.split(":")[0]

    def put(self, a, dtype):
        t = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
             "i32": torch.int32, "i64": torch.int64}[dtype]
        return torch.tensor(np.asarray(a, np.float64)).to(t).to(self.device)

    def get(self, t):
        return t.detach().to(torch.float64).cpu().numpy()

    def empty(self, shape, dtype):
        return self.put(np.full(shape, np.nan), dtype)


BACKENDS = [NumpyBackend()]
if torch is not None:
    BACKENDS.append(TorchBackend("cpu"))
if CUDA:
    BACKENDS.append(TorchBackend("cuda:0"))


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request):
    """Each backend in turn."""
    return request.param


@pytest.fixture
def rng():
    """A seeded generator (the seed is in the test id's order, fixed for reruns)."""
    return np.random.default_rng(1234)


def tol(dtype, backend):
    """Absolute/relative tolerance of a dtype on a backend (CPU kernels compute in f64 and
    round once; CUDA kernels compute in f32 with 16-bit operands on tensor cores)."""
    gpu = backend.device.startswith("cuda")
    return {"f64": 1e-9 if gpu else 1e-10, "f32": 2e-4 if gpu else 2e-5,
            "f16": 1.5e-2 if gpu else 3e-3, "bf16": 6e-2 if gpu else 2e-2}[dtype]


def close(got, want, t):
    """Asserts every element of got is within t (absolute + relative) of want."""
    np.testing.assert_allclose(got, want, rtol=t, atol=t)


def pytest_report_header(config):
    return "baracuda: %s (CUDA backend %s); torch: %s; GPU tests: %s" % (
        baracuda.library_path(), baracuda.has_cuda(), getattr(torch, "__version__", "not installed"),
        "run" if CUDA else "skipped (no CUDA device or no torch)")
