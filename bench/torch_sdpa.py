"""torch_sdpa.py - the peer rows for bk_bench: torch's scaled_dot_product_attention with its
cuDNN and FlashAttention-2 backends, on the same sdpa shapes as bk_bench (hidden 2048,
batch*S = 16384, D 64/128/256, causal and not; the forward in bf16 and f16, the backward in
bf16), timed as the other peers (peer_common.median_ms: the GPU's time of a call, the host's
work hidden behind a busy stream). Backward is timed alone
(autograd.grad over a retained graph).

Usage: python3 bench/torch_sdpa.py [filter] [--csv path]   (filter: '|'-separated alternatives, as bk_bench)
"""
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from peer_common import median_ms

BACKENDS = [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash2", SDPBackend.FLASH_ATTENTION)]
DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    filt = args[0] if args else ""
    csv = None
    if "--csv" in sys.argv:
        csv = open(sys.argv[sys.argv.index("--csv") + 1], "w")
    torch.manual_seed(0)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    for direction in ("fwd", "bwd"):
        for dname in (("bf16", "f16") if direction == "fwd" else ("bf16",)):
            dtype = DTYPES[dname]
            for causal in (False, True):
                for d in (64, 128, 256):
                    for s in (512, 1024, 2048, 4096, 8192, 16384):
                        b, h = 16384 // s, 2048 // d
                        name = f"sdpa_{direction} {dname} B{b} H{h} S{s} D{d}" + (" causal" if causal else "")
                        if not any(f in name for f in filt.split("|")):
                            continue
                        flops = 4.0 * b * h * s * s * d * (0.5 if causal else 1.0) * (2.5 if direction == "bwd" else 1.0)
                        q, k, v = (torch.randn(b, h, s, d, device="cuda", dtype=dtype,
                                               requires_grad=direction == "bwd") for _ in range(3))
                        for label, backend in BACKENDS:
                            try:
                                with sdpa_kernel([backend]):
                                    if direction == "fwd":
                                        fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                                    else:
                                        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                                        dy = torch.randn_like(out)
                                        fn = lambda: torch.autograd.grad(out, (q, k, v), dy, retain_graph=True)
                                    ms = median_ms(fn)
                                tf = flops / ms * 1e-9
                                print(f"{name:<46} torch/{label:<34} {ms:9.3f} ms {tf:8.1f} TFLOP/s")
                                if csv:
                                    csv.write(f"{name},torch/{label},{ms:.4f},{tf:.2f},TFLOP/s,\n")
                            except Exception as e:  # a backend that refuses a shape
                                print(f"{name:<46} torch/{label:<34} unsupported: {str(e).splitlines()[0][:60]}")
                            sys.stdout.flush()
                        del q, k, v
                        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
