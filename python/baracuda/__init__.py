"""baracuda: attention and sequence-mixing kernels (flash attention, paged KV, ALiBi,
Mamba-2 SSD) from Python, over the C library's plan API.

    import baracuda
    plan = baracuda.sdpa_fwd.plan(batch=1, q_heads=8, kv_heads=2, q_len=128, kv_len=128,
                                  head_dim_qk=64, head_dim_v=64, scale=0.125, causal=True,
                                  dtype="bf16", device="cuda")
    plan.sku, plan.precision, plan.workspace_size
    plan.run(q=q, k=k, v=v, y=y, lse=lse)     # any DLPack tensors, read in place

Every op of the C API is an attribute (sdpa_fwd, sdpa_bwd, kv_append, paged_kv_append,
paged_decode, paged_prefill, attention_merge, alibi_fwd, alibi_bwd, ssd_fwd, ssd_bwd,
ssd_step);
every failure raises a subclass of baracuda.Error with the library's sentence.
`baracuda.torch` (imported on demand) registers torch.library custom ops with autograd.
The shared library is loaded from baracuda/lib, or from $BARACUDA_LIBRARY when set.
"""
import ctypes as _C

from . import _capi
from ._plan import Op, Plan, Precision, target, target_cuda_cc
from ._tensor import View, view
from .errors import (BufferTooSmall, DeviceError, Error, InvalidProblem, NoDevice, OutOfRange, Unsupported,
                     WorkspaceTooSmall, check as _check)

__version__ = "0.1.0"

sdpa_fwd = Op("sdpa_fwd")
sdpa_bwd = Op("sdpa_bwd")
kv_append = Op("kv_append")
paged_kv_append = Op("paged_kv_append")
paged_decode = Op("paged_decode")
paged_prefill = Op("paged_prefill")
attention_merge = Op("attention_merge")
alibi_fwd = Op("alibi_fwd")
alibi_bwd = Op("alibi_bwd")
ssd_fwd = Op("ssd_fwd")
ssd_bwd = Op("ssd_bwd")
ssd_step = Op("ssd_step")
OPS = {name: globals()[name] for name in _capi.OPS}


def has_cuda():
    """True when the loaded library was built with its CUDA backend."""
    return bool(_capi.lib.bk_has_cuda())


def library_path():
    """The path of the shared library this process loaded."""
    return _capi.library_path()


def alibi_slopes(num_heads, max_bias=8.0):
    """The ALiBi paper's head slopes for `num_heads` heads (bk_alibi_slopes), a list of
    floats. Raises InvalidProblem for num_heads < 1 or a bad max_bias."""
    out = (_C.c_double * max(int(num_heads), 1))()
    _check(_capi.lib.bk_alibi_slopes(int(num_heads), float(max_bias), out), _capi.lib)
    return list(out)


__all__ = ["Error", "InvalidProblem", "Unsupported", "BufferTooSmall", "WorkspaceTooSmall", "OutOfRange",
           "DeviceError", "NoDevice", "Op", "Plan", "Precision", "View", "view", "target", "target_cuda_cc",
           "has_cuda", "library_path", "alibi_slopes", "OPS"] + list(_capi.OPS)
