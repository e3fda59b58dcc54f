"""flashinfer_peers.py - the FlashInfer peer rows for bk_bench's paged_prefill and paged_decode
rows, on the same shapes, the same paged pool and the same rate formulas:

  paged_prefill  BatchPrefillWithPagedKVCacheWrapper, backend "fa3" and "fa2"
                 (TFLOP/s = 4*B*Hq*S*S*D, halved when causal, as bk_bench counts; rows of
                 Q query rows over S keys count the keys each row sees)
  paged_decode   BatchDecodeWithPagedKVCacheWrapper, use_tensor_cores False and True
                 (GB/s = the K and V rows read, 2*B*kv*Hkv*D*2 bytes, as bk_bench counts)

The pool is bk_bench's make_pool (bench/bench_ops.inc): Hq 32, Hkv 8, D 128 (decode also D 64
and 256 at B1 kv32768 and B128 kv8192), pages of 16 tokens, bf16 and f16 (every row in both),
HND pages [num_pages, Hkv, 16, D], ceil(len/16) pages per request, page ids in the same
scattered order (page i of the table is (i * 7919) % num_pages), last_page_len as ours;
prefill queries are B*Q rows with qo_indptr b*Q (Q = S but for the few-rows rows), K/V length S. Every request writes its output
and its LSE into buffers allocated once (bk_bench's rows write both).

Timing as torch_sdpa.py: plan once (FlashInfer JIT-compiles a kernel family on first use, about
10 s each, inside plan and the untimed warm-up), then the median of CUDA-event-timed run() calls.
Before each timed call the stream is kept busy (torch.cuda._sleep) so the start event is not
reached before run() has enqueued its kernels: the time is the GPU's, not run()'s Python
overhead (bk_bench's C launches cost a few microseconds). After timing, request 0's output is
compared with a float32 reference computed from the pages: "rel.err" is the largest
|out - ref| over the largest |ref| (bf16 rounding gives about 0.01; a wrong layout about 1).

Usage: python3 bench/flashinfer_peers.py [filter] [--csv path]
Without flashinfer (or a GPU) it prints one line saying the peer is skipped and exits 0.
"""
import math
import os
import shutil
import sys
import time

import peer_common
from peer_common import first_line, median_ms, skip

# FlashInfer reads its target architectures at import / first JIT build.
os.environ.setdefault("FLASHINFER_CUDA_ARCH_LIST", "9.0a")

PQ_HEADS, PKV_HEADS, PDIM, PPAGE = 32, 8, 128, 16  # bench_ops.inc: enum { PQ_HEADS, ... }; prefill's D
DTYPES = ("bf16", "f16")  # bench_all_ops: every paged row in both
# bench_all_ops: bench_decode (D, batch, kv_len) and bench_prefill (batch, q_len, seq, causal), per dtype
DECODE_ROWS = ([(128, b, kv) for b, kv in ((1, 32768), (16, 4096), (32, 1024), (64, 2048), (128, 8192))]
               + [(d, b, kv) for d in (64, 256) for b, kv in ((1, 32768), (128, 8192))])
PREFILL_ROWS = [(4, 2048, 2048, True), (4, 2048, 2048, False), (16, 512, 512, True), (1, 16384, 16384, True),
                (8, 4096, 4096, True), (64, 8, 4096, True), (16, 64, 8192, True)]
WORKSPACE_BYTES = 128 << 20


def decode_name(dt, d, b, kv):
    return f"paged_decode {dt} B{b} kv{kv} Hq{PQ_HEADS} Hkv{PKV_HEADS} D{d}"


def prefill_name(dt, b, q, s, causal):
    qtext = f"Q{q} " if q != s else ""
    return f"paged_prefill {dt} B{b} {qtext}S{s} Hq{PQ_HEADS} Hkv{PKV_HEADS} D{PDIM}" + (" causal" if causal else "")


def prefill_flops(b, q, s, causal):
    """bench_ops.inc bench_prefill: 4 B Hq D times the keys the rows see."""
    if q == s:
        seen = s * s * (0.5 if causal else 1.0)
    else:
        seen = q * (s - q) + 0.5 * q * (q + 1.0) if causal else float(q) * s
    return 4.0 * b * PQ_HEADS * seen * PDIM


def main():
    opt, torch = peer_common.start("flashinfer", "FlashInfer peers of bk_bench's paged rows")
    try:
        import flashinfer
    except Exception as e:  # noqa: BLE001
        skip("flashinfer", f"flashinfer not importable ({first_line(e)}); "
             "install it from .peers/ (see /work/shared/peers/README.md)", opt.csv)

    # FlashInfer's JIT runs `ninja` from PATH; the PyPI package ninja ships one
    if shutil.which("ninja") is None:
        try:
            import ninja
            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except Exception:  # noqa: BLE001
            pass
    if shutil.which("ninja") is None:
        skip("flashinfer", "FlashInfer's JIT needs a `ninja` executable on PATH (none found)", opt.csv)

    names = ([prefill_name(dt, *r) for dt in DTYPES for r in PREFILL_ROWS]
             + [decode_name(dt, *r) for dt in DTYPES for r in DECODE_ROWS])
    if not any(opt.filter in n for n in names):
        print(f"flashinfer peer: no paged row matches filter {opt.filter!r}")
        if opt.csv:
            open(opt.csv, "w").close()
        return

    csv = open(opt.csv, "w") if opt.csv else None
    dev = torch.device("cuda")
    print(f"flashinfer {flashinfer.__version__} (torch {torch.__version__}, "
          f"FLASHINFER_CUDA_ARCH_LIST={os.environ['FLASHINFER_CUDA_ARCH_LIST']}) on {torch.cuda.get_device_name()}")
    sys.stdout.flush()

    # one wrapper (and one zeroed 128 MB workspace) per peer, re-planned per row
    def workspace():
        return torch.zeros(WORKSPACE_BYTES, dtype=torch.uint8, device=dev)

    PW, DW = flashinfer.BatchPrefillWithPagedKVCacheWrapper, flashinfer.BatchDecodeWithPagedKVCacheWrapper
    factories = {  # label -> wrapper; built on first use, so a filter builds only what it needs
        "flashinfer/fa3": lambda: PW(workspace(), kv_layout="HND", backend="fa3"),
        "flashinfer/fa2": lambda: PW(workspace(), kv_layout="HND", backend="fa2"),
        "flashinfer/decode": lambda: DW(workspace(), kv_layout="HND", use_tensor_cores=False),
        "flashinfer/decode-tc": lambda: DW(workspace(), kv_layout="HND", use_tensor_cores=True),
    }
    peers = {}  # label -> its wrapper
    failed = {}  # label -> its JIT build's error (a failed build is not retried row after row)
    built = set()  # labels that have run once

    def is_build_error(e):
        text = f"{type(e).__name__} {e}".lower()
        return isinstance(e, (ImportError, OSError)) or any(
            w in text for w in ("ninja", "nvcc", "compil", "build", "jit"))

    def wrapper(label):
        if label not in peers:
            peers[label] = factories[label]()
        return peers[label]

    torch_dtypes = {"bf16": torch.bfloat16, "f16": torch.float16}

    def urand(dt, *shape):  # bk_bench's drand(dtype, n, -1, 1): uniform in [-1, 1]
        return torch.empty(*shape, dtype=torch_dtypes[dt], device=dev).uniform_(-1.0, 1.0)

    def make_pool(dt, d, batch, kv_len):
        """bench_ops.inc make_pool: same pages per request, same page size, same page order."""
        pages_per = (kv_len + PPAGE - 1) // PPAGE
        num_pages = batch * pages_per
        k = urand(dt, num_pages, PKV_HEADS, PPAGE, d)
        v = urand(dt, num_pages, PKV_HEADS, PPAGE, d)
        if num_pages % 7919 == 0:
            idx = torch.arange(num_pages, dtype=torch.int64)
        else:
            idx = (torch.arange(num_pages, dtype=torch.int64) * 7919) % num_pages
        indices = idx.to(torch.int32).to(dev)
        indptr = (torch.arange(batch + 1, dtype=torch.int32) * pages_per).to(dev)
        last = torch.full((batch,), kv_len - (pages_per - 1) * PPAGE, dtype=torch.int32, device=dev)
        return k, v, indptr, indices, last

    def gather_kv(k, v, indices, pages_per, b, kv_len):
        """Request b's K and V as [Hkv, kv_len, D] float32 (for the reference check)."""
        ids = indices[b * pages_per:(b + 1) * pages_per].long()
        d = k.shape[3]
        kk = k[ids].permute(1, 0, 2, 3).reshape(PKV_HEADS, pages_per * PPAGE, d)[:, :kv_len]
        vv = v[ids].permute(1, 0, 2, 3).reshape(PKV_HEADS, pages_per * PPAGE, d)[:, :kv_len]
        return kk.float(), vv.float()

    def reference(q, kk, vv, causal):
        """q [rows, Hq, D]; kk, vv [Hkv, L, D] -> [rows, Hq, D] float32; causal aligned bottom-right."""
        g = PQ_HEADS // PKV_HEADS  # q head h reads kv head h // g
        qf = q.float().permute(1, 0, 2)  # [Hq, rows, D]
        kf, vf = kk.repeat_interleave(g, dim=0), vv.repeat_interleave(g, dim=0)
        s = torch.matmul(qf, kf.transpose(1, 2)) / math.sqrt(q.shape[-1])
        if causal:
            rows, L = q.shape[0], kk.shape[1]
            qpos = torch.arange(rows, device=dev)[:, None] + (L - rows)
            s.masked_fill_(torch.arange(L, device=dev)[None, :] > qpos, float("-inf"))
        return torch.matmul(torch.softmax(s, dim=-1), vf).permute(1, 0, 2)

    def report(name, label, ms, rate, unit, err):
        peer_common.report(csv, name, label, ms, rate, unit, err)

    def refuse(name, label, e):
        print(f"{name:<46} {label:<40} unsupported: {first_line(e)[:120]}")

    def time_peers(name, labels, plan, q, k, v, o, lse, check_rows, ref, rate_of, unit):
        """Plan each peer, time its run(), check the first check_rows output rows against ref."""
        for label in labels:
            if label in failed:
                refuse(name, label, failed[label])
                continue
            try:
                w = wrapper(label)
                t0 = time.perf_counter()
                plan(w)
                plan_s = time.perf_counter() - t0
                ms = median_ms(lambda: w.run(q, (k, v), out=o, lse=lse, return_lse=True))
                # relative to the reference's largest entry: outputs of near-uniform softmax are small
                err = ((o[:check_rows].float() - ref).abs().max() / ref.abs().max().clamp_min(1e-6)).item()
                built.add(label)
                report(name, label, ms, rate_of(ms), unit, err)
                if plan_s > 5:
                    print(f"  ({label}: plan took {plan_s:.0f} s, JIT build included; not timed)")
            except Exception as e:  # noqa: BLE001 - a backend that refuses a shape or fails to build
                if label not in built and is_build_error(e):
                    failed[label] = e
                refuse(name, label, e)
            sys.stdout.flush()

    def prefill_row(dt, batch, qlen, seq, causal):
        name = prefill_name(dt, batch, qlen, seq, causal)
        pages_per = (seq + PPAGE - 1) // PPAGE
        k, v, indptr, indices, last = make_pool(dt, PDIM, batch, seq)
        rows = batch * qlen
        q = urand(dt, rows, PQ_HEADS, PDIM)
        qo_indptr = (torch.arange(batch + 1, dtype=torch.int32) * qlen).to(dev)
        o = torch.empty(rows, PQ_HEADS, PDIM, dtype=torch_dtypes[dt], device=dev)
        lse = torch.empty(rows, PQ_HEADS, dtype=torch.float32, device=dev)
        kk, vv = gather_kv(k, v, indices, pages_per, 0, seq)
        ref = reference(q[:qlen], kk, vv, causal)  # request 0
        del kk, vv
        flops = prefill_flops(batch, qlen, seq, causal)

        def plan(w):
            tdt = torch_dtypes[dt]
            w.plan(qo_indptr, indptr, indices, last, PQ_HEADS, PKV_HEADS, PDIM, PPAGE, causal=causal,
                   sm_scale=1.0 / math.sqrt(PDIM), q_data_type=tdt, kv_data_type=tdt, o_data_type=tdt)

        time_peers(name, ("flashinfer/fa3", "flashinfer/fa2"), plan, q, k, v, o, lse, qlen, ref,
                   lambda ms: flops / ms * 1e-9, "TFLOP/s")

    def decode_row(dt, d, batch, kv_len):
        name = decode_name(dt, d, batch, kv_len)
        pages_per = (kv_len + PPAGE - 1) // PPAGE
        k, v, indptr, indices, last = make_pool(dt, d, batch, kv_len)
        q = urand(dt, batch, PQ_HEADS, d)
        o = torch.empty(batch, PQ_HEADS, d, dtype=torch_dtypes[dt], device=dev)
        lse = torch.empty(batch, PQ_HEADS, dtype=torch.float32, device=dev)
        kk, vv = gather_kv(k, v, indices, pages_per, 0, kv_len)
        ref = reference(q[:1], kk, vv, False)  # request 0
        del kk, vv
        nbytes = 2.0 * batch * kv_len * PKV_HEADS * d * 2

        def plan(w):
            tdt = torch_dtypes[dt]
            w.plan(indptr, indices, last, PQ_HEADS, PKV_HEADS, d, PPAGE, pos_encoding_mode="NONE",
                   sm_scale=1.0 / math.sqrt(d), q_data_type=tdt, kv_data_type=tdt, o_data_type=tdt)

        time_peers(name, ("flashinfer/decode", "flashinfer/decode-tc"), plan, q, k, v, o, lse, 1, ref,
                   lambda ms: nbytes / ms * 1e-6, "GB/s")

    for dt in DTYPES:
        for batch, qlen, seq, causal in PREFILL_ROWS:
            if opt.filter in prefill_name(dt, batch, qlen, seq, causal):
                torch.manual_seed(0)
                prefill_row(dt, batch, qlen, seq, causal)
                torch.cuda.empty_cache()
    for dt in DTYPES:
        for d, batch, kv_len in DECODE_ROWS:
            if opt.filter in decode_name(dt, d, batch, kv_len):
                torch.manual_seed(0)
                decode_row(dt, d, batch, kv_len)
                torch.cuda.empty_cache()

    if csv:
        csv.close()


if __name__ == "__main__":
    main()
