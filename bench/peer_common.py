"""peer_common.py - what the peer scripts (flashinfer_peers.py, mamba_peers.py, torch_sdpa.py,
same_tensors.py) share: the skip line of a peer that cannot run, the first line of an
exception, the GPU timing of a call, bk_bench's sdpa rows and the output row (stdout and CSV `name,label,ms,rate,unit,`, as results_table.py reads)."""
import statistics
import sys
import time


def skip(peer, why, csv_path):
    """Prints why `peer` does not run, leaves an empty CSV (no stale rows), exits 0."""
    print(f"{peer} peer skipped: {why}")
    if csv_path:
        open(csv_path, "w").close()
    sys.exit(0)


def first_line(e):
    """`Type: first line of the message` of an exception."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"


def median_ms(fn, target_ms=400.0):
    """Median GPU time of fn() in ms, CUDA events around it after two warm-up calls (JIT
    builds and autotuning happen there). Before each timed call the stream is kept busy
    (torch.cuda._sleep) long enough to cover fn's host work, so the start event is not
    reached before fn has enqueued its kernels: the time is the GPU's, not the caller's."""
    import torch
    fn()
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    host_us = (time.perf_counter() - t0) * 1e6
    torch.cuda.synchronize()
    sleep = hasattr(torch.cuda, "_sleep")
    cycles = int(2000 * max(200.0, 3.0 * host_us))  # cycles at <= 2 GHz; a slower clock spins longer
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed():
        if sleep:
            torch.cuda._sleep(cycles)
        a.record()
        fn()
        b.record()
        b.synchronize()
        return a.elapsed_time(b)

    one = max(timed(), 1e-3)
    reps = max(5, min(50, int(target_ms / one)))
    return statistics.median(timed() for _ in range(reps))


def sdpa_rows(filt):
    """bk_bench's sdpa rows whose names contain one of filt's '|'-separated alternatives:
    hidden 2048 (H = 2048 / D), B x S = 16384, D 64/128/256, causal and not; the forward in
    bf16 and f16, the backward in bf16. Yields (name, direction, dtype name, causal, B, H, S,
    D, FLOPs): 4 B H S^2 D, halved when causal, x2.5 for the backward."""
    for direction in ("fwd", "bwd"):
        for dname in (("bf16", "f16") if direction == "fwd" else ("bf16",)):
            for causal in (False, True):
                for d in (64, 128, 256):
                    for s in (512, 1024, 2048, 4096, 8192, 16384):
                        b, h = 16384 // s, 2048 // d
                        name = f"sdpa_{direction} {dname} B{b} H{h} S{s} D{d}" + (" causal" if causal else "")
                        if not any(f in name for f in filt.split("|")):
                            continue
                        flops = 4.0 * b * h * s * s * d * (0.5 if causal else 1.0) * (2.5 if direction == "bwd" else 1.0)
                        yield name, direction, dname, causal, b, h, s, d, flops


def report(csv, name, label, ms, rate, unit, err):
    """One peer row on stdout (with its relative error against the script's reference,
    flagged above 0.05) and, when csv is open, in the CSV."""
    print(f"{name:<46} {label:<40} {ms:9.3f} ms {rate:8.1f} {unit:<7} rel.err {err:.4f}"
          + ("  (CHECK: output differs from the reference)" if err > 0.05 else ""))
    sys.stdout.flush()
    if csv:
        csv.write(f"{name},{label},{ms:.4f},{rate:.2f},{unit},\n")
        csv.flush()


def start(peer, description):
    """The peer scripts' command line (`[filter] [--csv path]`) and their first check:
    returns (options, torch) when torch imports and sees a CUDA device, else skips."""
    import argparse
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("filter", nargs="?", default="", help="run the rows whose name contains this")
    ap.add_argument("--csv", default=None, help="also write the rows as CSV here")
    opt = ap.parse_args()
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means: no peer
        skip(peer, f"torch not importable ({first_line(e)})", opt.csv)
    if not torch.cuda.is_available():
        skip(peer, "no CUDA device", opt.csv)
    return opt, torch
