"""Benchmark of baracuda.torch.ring_attention (context parallel over NCCL).

    torchrun --nproc_per_node 2 bench/ring_bench.py [--s-local 16384,32768,65536,131072]

For each row: one sequence of world * S_local tokens (batch 1, D 128, bf16 by default),
each rank holding its shard (zig-zag when causal). Timed with CUDA events after a
barrier, the slowest rank's time, median of --reps after one warm-up:
  - ring fwd, ring fwd+bwd: TFLOP/s per GPU = FLOPs of the whole attention / (time * world)
    (fwd 4 N^2 H D, halved when causal; bwd counted as 2.5x the forward);
  - one GPU: baracuda's own attention over the whole N tokens on rank 0 (the baseline);
  - eff: ring TFLOP/s per GPU / one-GPU TFLOP/s (scaling efficiency);
  - comm: the K/V ring passes alone (world - 1 sends of the shard), to show what the
    overlap has to hide.
Prints a markdown table on rank 0, last.
"""
import argparse
import datetime
import functools
import os
import statistics
import time

import torch
import torch.distributed as dist

import baracuda.torch as bt
from baracuda.ring import _exchange, _ring_peers


def _elapsed(fn, device):
    """Seconds fn() takes on device (CUDA events; the wall clock on the CPU)."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def timed(fn, reps, device, ranks=True):
    """Median over reps (after one warm-up) of fn()'s time, in seconds: the slowest
    rank's when ranks, else this rank's alone."""
    fn()
    times = []
    for _ in range(reps):
        if ranks:
            dist.barrier()
        t = _elapsed(fn, device)
        if ranks:
            t = torch.tensor([t], device=device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            t = t.item()
        times.append(t)
    return statistics.median(times)


def _inputs(b, h, hkv, seq, d, seed, device, dtype):
    """Random q [b, h, seq, d], k and v [b, hkv, seq, d] (requiring grad) and dy like q."""
    g = torch.Generator(device=device).manual_seed(seed)
    q, k, v = (torch.randn(b, heads, seq, d, generator=g, device=device, dtype=dtype).requires_grad_()
               for heads in (h, hkv, hkv))
    return q, k, v, torch.randn_like(q)


def _runs(attn, q, k, v, dy):
    """The forward alone (no grad) and forward + backward of attn(q, k, v), as closures."""
    def fwd():
        with torch.no_grad():
            attn(q, k, v)

    def fwd_bwd():
        q.grad = k.grad = v.grad = None
        attn(q, k, v).backward(dy)
    return fwd, fwd_bwd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--s-local", default="16384,32768,65536,131072")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--causal", default="1,0", help="1, 0 or both (1,0)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "f16", "f32"))
    ap.add_argument("--backend", default="nccl", help="nccl (GPUs), or gloo for a CPU smoke run")
    args = ap.parse_args()
    dist.init_process_group(args.backend, timeout=datetime.timedelta(seconds=900))
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
        gpu = torch.cuda.get_device_name(device)
        comm_lib = "NCCL " + ".".join(map(str, torch.cuda.nccl.version()))
    else:  # a CPU smoke run of this script (tiny sizes, f32)
        device, gpu, comm_lib = torch.device("cpu"), "CPU", args.backend
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[args.dtype]
    h, hkv, d = args.heads, args.kv_heads, args.dim
    rows = []
    for causal in (bool(int(c)) for c in args.causal.split(",")):
        for s_local in (int(s) for s in args.s_local.split(",")):
            n = s_local * world
            reps = args.reps if n <= 131072 else max(2, args.reps - 1)
            fwd_flops = 4.0 * n * n * h * d / (2 if causal else 1)
            q, k, v, dy = _inputs(1, h, hkv, s_local, d, rank, device, dtype)
            ring_fwd, ring_fwd_bwd = _runs(functools.partial(bt.ring_attention, causal=causal), q, k, v, dy)

            def comm():
                _, _, send_to, recv_from = _ring_peers(dist.group.WORLD)
                kk, vv = k.detach(), v.detach()
                for _ in range(world - 1):
                    (kk, vv), reqs = _exchange((kk, vv), dist.group.WORLD, send_to, recv_from)
                    for r in reqs:
                        r.wait()

            t_fwd = timed(ring_fwd, reps, device)
            t_fb = timed(ring_fwd_bwd, reps, device)
            t_comm = timed(comm, reps, device)
            del q, k, v, dy, ring_fwd, ring_fwd_bwd
            one = torch.zeros(2, dtype=torch.float64)
            if rank == 0:  # the baseline: the whole sequence on one GPU
                one_fwd, one_fwd_bwd = _runs(functools.partial(bt.attention, causal=causal),
                                             *_inputs(1, h, hkv, n, d, 99, device, dtype))
                one[0] = timed(one_fwd, reps, device, ranks=False)
                one[1] = timed(one_fwd_bwd, reps, device, ranks=False)
                del one_fwd, one_fwd_bwd
            if device.type == "cuda":
                torch.cuda.empty_cache()
            dist.barrier()
            if rank == 0:
                tf = lambda flops, t, gpus: flops / t / gpus / 1e12  # noqa: E731
                r_fwd, r_fb = tf(fwd_flops, t_fwd, world), tf(3.5 * fwd_flops, t_fb, world)
                o_fwd, o_fb = tf(fwd_flops, one[0].item(), 1), tf(3.5 * fwd_flops, one[1].item(), 1)
                rows.append((causal, s_local, n, r_fwd, o_fwd, r_fwd / o_fwd, r_fb, o_fb, r_fb / o_fb,
                             t_fwd * 1e3, t_fb * 1e3, t_comm * 1e3))
                print("done: causal=%d S_local=%d fwd %.1f ms, fwd+bwd %.1f ms, comm %.1f ms" % (
                    causal, s_local, t_fwd * 1e3, t_fb * 1e3, t_comm * 1e3), flush=True)
    if rank == 0:
        print("\nring_attention, %d x %s, B1 Hq%d Hkv%d D%d %s, %s; TFLOP/s per GPU\n" % (
            world, gpu, h, hkv, d, args.dtype, comm_lib))
        print("| mask | S_local | N | ring fwd | 1 GPU fwd | eff fwd | ring fwd+bwd | 1 GPU fwd+bwd | eff fwd+bwd "
              "| ring fwd ms | ring fwd+bwd ms | K/V comm ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print("| %s | %d | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.1f | %.1f | %.1f |" % (
                ("causal" if r[0] else "full",) + r[1:]))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
