"""same_tensors.py - baracuda's attention and torch's SDPA backends (cuDNN, FlashAttention-2)
timed on the very same torch tensors in one process: q, k, v (and dy) drawn once per row with
torch.randn, [B, H, S, D], then each implementation in turn. bk_bench and torch_sdpa.py draw
their inputs separately (uniform [-1, 1] against randn); this script removes that difference.

The shapes are bk_bench's sdpa rows (hidden 2048, batch * S = 16384, D 64/128/256, causal and
not); the forward in bf16 and f16, the backward (autograd.grad over a retained graph, as in
torch_sdpa.py) in bf16, ours in its fast and its deterministic plan. Every time is
peer_common.median_ms's: the GPU's time of one call, the host's work of either side hidden
behind a busy stream.

Usage: BARACUDA_LIBRARY=build-gpu/libbaracuda.so PYTHONPATH=python \\
       python3 bench/same_tensors.py [filter]   (filter: '|'-separated alternatives, as bk_bench)
Prints one line per row: TFLOP/s of each implementation and ours / cuDNN.
"""
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import baracuda.torch as bkt
from peer_common import median_ms, sdpa_rows

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16}


def row_fns(direction, q, k, v, causal):
    """(label, fn) of every implementation for one row."""
    fns = []
    if direction == "fwd":
        fns.append(("baracuda", lambda: bkt.attention(q, k, v, causal=causal)))
        for label, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash2", SDPBackend.FLASH_ATTENTION)):
            def f(backend=backend):
                with sdpa_kernel([backend]):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            fns.append((label, f))
        return fns
    dy = torch.randn(q.shape, device=q.device, dtype=q.dtype)
    for det in (False, True):
        out = bkt.attention(q, k, v, causal=causal, deterministic=det)
        fns.append(("baracuda det" if det else "baracuda",
                    lambda out=out: torch.autograd.grad(out, (q, k, v), dy, retain_graph=True)))
    for label, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash2", SDPBackend.FLASH_ATTENTION)):
        with sdpa_kernel([backend]):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        fns.append((label, lambda out=out: torch.autograd.grad(out, (q, k, v), dy, retain_graph=True)))
    return fns


def main():
    filt = sys.argv[1] if len(sys.argv) > 1 else ""
    torch.manual_seed(0)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    for name, direction, dname, causal, b, h, s, d, flops in sdpa_rows(filt):
        q, k, v = (torch.randn(b, h, s, d, device="cuda", dtype=DTYPES[dname], requires_grad=direction == "bwd")
                   for _ in range(3))
        tf = {}
        for label, fn in row_fns(direction, q, k, v, causal):
            try:
                tf[label] = flops / median_ms(fn) * 1e-9
            except Exception as e:  # a backend that refuses a shape
                print(f"  {label}: unsupported: {str(e).splitlines()[0][:60]}")
        cells = " ".join(f"{k_} {v_:6.1f}" for k_, v_ in tf.items())
        ratio = (f" | ours/cudnn {tf['baracuda'] / tf['cudnn']:.2f}"
                 if "baracuda" in tf and "cudnn" in tf else "")
        print(f"{name:<42} TFLOP/s: {cells}{ratio}")
        sys.stdout.flush()
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
