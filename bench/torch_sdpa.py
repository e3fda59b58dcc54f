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

from peer_common import median_ms, sdpa_rows

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
    for name, direction, dname, causal, b, h, s, d, flops in sdpa_rows(filt):
        q, k, v = (torch.randn(b, h, s, d, device="cuda", dtype=DTYPES[dname], requires_grad=direction == "bwd")
                   for _ in range(3))
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
