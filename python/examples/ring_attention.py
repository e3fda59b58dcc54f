"""Context-parallel attention across GPUs with baracuda.torch.ring_attention, checked.

    torchrun --nproc_per_node 2 python/examples/ring_attention.py

Every rank builds the same seeded sequence, keeps its shard (zig-zag chunks r and
2 * world - 1 - r when causal, the r-th slice otherwise), runs ring_attention over NCCL
and calls backward. The shards of the output and of dq, dk, dv are gathered on rank 0
and compared with attention over the whole gathered sequence on one GPU:
  - ref: torch SDPA in f32 on the same (bf16/f16-rounded) inputs, autograd for grads;
  - one: baracuda's single-GPU attention in the ring's dtype (its own rounding error).
A case passes when the ring's largest error against ref is at most twice the one-GPU
kernel's plus 2e-3: the ring may add the merge's rounding, not more. Prints one line a
case; exit status 0 only when every case passes. Needs the NCCL backend and one GPU a
rank (BK_RING_BACKEND=gloo runs the small cases on the CPU instead); the package finds
libbaracuda.so as usual ($BARACUDA_LIBRARY or baracuda/lib).
"""
import datetime
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

import baracuda.torch as bt

# (dtype, causal, Hq, Hkv, S_local, D): GQA 1/4/8, odd non-causal shards, D 64/128/256
CASES = [
    (torch.bfloat16, True, 8, 2, 1000, 128),
    (torch.bfloat16, False, 8, 8, 777, 64),
    (torch.float16, True, 8, 1, 512, 64),
    (torch.float16, False, 4, 1, 301, 128),
    (torch.bfloat16, True, 4, 4, 256, 256),
    (torch.bfloat16, True, 32, 8, 4096, 128),
]


def shard_index(rank, world, n, causal, device):
    """Positions of the whole sequence that rank holds."""
    if not causal:
        s = n // world
        return torch.arange(rank * s, (rank + 1) * s, device=device)
    c = n // (2 * world)
    return torch.cat([torch.arange(i * c, (i + 1) * c, device=device) for i in (rank, 2 * world - 1 - rank)])


def run_case(case, rank, world, device):
    dtype, causal, hq, hkv, s_local, d = case
    n = s_local * world
    g = torch.Generator(device=device).manual_seed(1234)
    full = [torch.randn(1, h, n, d, generator=g, device=device).to(dtype)
            for h in (hq, hkv, hkv, hq)]  # q, k, v, dO: the same on every rank
    idx = shard_index(rank, world, n, causal, device)
    q, k, v = (t[:, :, idx].clone().requires_grad_() for t in full[:3])
    y = bt.ring_attention(q, k, v, causal=causal)
    y.backward(full[3][:, :, idx])
    mine = [y.detach(), q.grad, k.grad, v.grad]
    gathered = [[torch.empty_like(t) for _ in range(world)] for t in mine]
    for parts, t in zip(gathered, mine):
        dist.all_gather(parts, t.contiguous())
    if rank != 0:
        return None
    ring = []
    for parts in gathered:
        whole = torch.empty(parts[0].shape[:2] + (n, parts[0].shape[3]), dtype=dtype, device=device)
        for r, p in enumerate(parts):
            whole[:, :, shard_index(r, world, n, causal, device)] = p
        ring.append(whole)
    # the reference in f32 on the rounded inputs
    q32, k32, v32 = (t.float().requires_grad_() for t in full[:3])
    y32 = F.scaled_dot_product_attention(q32, k32, v32, is_causal=causal, enable_gqa=hq != hkv)
    y32.backward(full[3].float())
    ref = [y32.detach(), q32.grad, k32.grad, v32.grad]
    # baracuda on one GPU, in the ring's dtype
    q1, k1, v1 = (t.clone().requires_grad_() for t in full[:3])
    y1 = bt.attention(q1, k1, v1, causal=causal)
    y1.backward(full[3])
    one = [y1.detach(), q1.grad, k1.grad, v1.grad]
    ok, cols = True, []
    for name, a, b, r in zip(("y", "dq", "dk", "dv"), ring, one, ref):
        e_ring = (a.float() - r).abs().max().item()
        e_one = (b.float() - r).abs().max().item()
        good = e_ring <= 2 * e_one + 2e-3
        ok &= good
        cols.append("%s %.2e (1 GPU %.2e)%s" % (name, e_ring, e_one, "" if good else " FAIL"))
    print("%-4s %-6s Hq%-2d Hkv%-2d S_local %-5d D%-3d | %s | %s" % (
        {torch.bfloat16: "bf16", torch.float16: "f16"}[dtype], "causal" if causal else "full", hq, hkv, s_local, d, " | ".join(cols),
        "ok" if ok else "FAIL"), flush=True)
    return ok


def main():
    backend = os.environ.get("BK_RING_BACKEND", "nccl")
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=300))
    rank, world = dist.get_rank(), dist.get_world_size()
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
        where = "NCCL %s, %s" % (".".join(map(str, torch.cuda.nccl.version())), torch.cuda.get_device_name(device))
        cases = CASES
    else:  # BK_RING_BACKEND=gloo: a CPU smoke run of this script on the small cases
        device, where, cases = torch.device("cpu"), backend + " on the CPU", [c for c in CASES if c[4] <= 1000]
    if rank == 0:
        print("ring_attention check: %d ranks, %s" % (world, where), flush=True)
    failed = 0
    for case in cases:
        ok = run_case(case, rank, world, device)
        failed += ok is False
    flag = torch.tensor([failed], device=device)
    dist.broadcast(flag, 0)
    dist.destroy_process_group()
    if rank == 0:
        print("ring_attention check: %s" % ("PASSED" if not failed else "%d case(s) FAILED" % failed))
    sys.exit(1 if flag.item() else 0)


if __name__ == "__main__":
    main()
