"""mamba_peers.py - the mamba_ssm peer rows (label "mamba_ssm") for bk_bench's ssd_fwd, ssd_bwd
and ssd_step rows, on the same shapes, the same dtypes, the same input ranges and the same
rate formulas (GB/s: every tensor read or written once, as bk_bench counts):

  ssd_fwd   mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size=64) (mamba_ssm.ops.triton.
            ssd_combined), the forward alone, no autograd graph; GB/s = esize*(2*x + dt + 2*B)
            (x and B sizes in elements: x read and y written, dt, B and C read)
  ssd_bwd   the backward alone: the forward runs once with inputs that require grad, then
            torch.autograd.grad(y, (x, dt, A, B, C), dy, retain_graph=True) is timed (mamba's
            Triton backward; its Python glue and the gradients' allocations included);
            GB/s = esize*(4*x + 2*dt + 4*B) (x, dt, B, C, dy read; dx, ddt, dB, dC written)
  ssd_step  selective_state_update (mamba_ssm.ops.triton.selective_state_update) with
            state_batch_indices, called as Mamba-2's step calls it (A, dt, dt_bias and D
            broadcast over head_dim with stride 0, so the kernel ties them per head);
            GB/s = 2*(2*R*H*D*N + 3*R*H*D + 2*R*N) (the requests' states read and written,
            x, z, y, B, C once)

Shapes (bench/bench_ops.inc, bench_ssd and bench_ssd_step): ssd B 4, L 4096, H 32, D 64, N 128,
chunk 64, B/C [B, L, G, N] for G = 1, 8, 32 (32 = heads: per-head B/C), bf16 and f32, every tensor
(A included) in the row's dtype; x, B, C, dy uniform in [-1, 1], dt uniform in [0.001, 0.1] (no
softplus, no bias), A uniform in [-2, -0.1]. ssd_step: bf16, 256 requests on a pool of 512
states, H 80, D 64, N 128, one group, D skip per head, z gate, dt_bias + softplus, dt uniform in
[-2, 0], request r on pool state 511 - 2r.

Note: mamba_ssm's Triton kernels compute the f32 rows' dot products (tl.dot) in TF32 (Triton's
default precision for f32 operands), while bk_bench's f32 rows run in full f32 on CUDA cores:
the f32 rows compare different precisions. bk_bench's tf32 rows (f32 tensors, its opt-in TF32
plan) are the like-for-like ones: each f32 measurement here is reported twice, under its f32
name and under the tf32 name ("ssd_fwd tf32 B4 ..."). The bf16 rows keep mamba_ssm's default
of bf16 states between chunks (state_dtype = C's dtype).

Timing as flashinfer_peers.py: Triton compiles and autotunes each kernel on first use (inside
the untimed warm-up calls), then the median of CUDA-event-timed calls. Before each timed call
the stream is kept busy (torch.cuda._sleep) so the start event is not reached before the call
has enqueued its kernels: the time is the GPU's, not the Python overhead's.

Correctness, lightly, against a float64 torch reference (the quadratic form of the scan,
y_t = sum_{s <= t} (C_t . B_s) exp(cum_t - cum_s) dt_s x_s, cum the running sum of dt*A):
  ssd_fwd   the timed output's first 256 positions of batch 0 (causal: they depend on nothing
            later);
  ssd_bwd   a small problem (batch 1, 256 positions, the row's heads, groups and dtype): every
            gradient against autograd through the reference, the worst of the five;
  ssd_step  the first 8 requests' y of one call against the step's float64 formula.
"rel.err" is the largest |out - ref| over the largest |ref| (bf16 rounding gives about 0.01,
TF32 about 0.001; a wrong layout about 1).

Usage: python3 bench/mamba_peers.py [filter] [--csv path]
Without mamba_ssm, triton (or a GPU) it prints one line saying the peer is skipped and exits 0.
"""
import sys

import peer_common
from peer_common import first_line, median_ms, skip

LABEL = "mamba_ssm"
SSD_B, SSD_L, SSD_H, SSD_D, SSD_N, SSD_CHUNK = 4, 4096, 32, 64, 128, 64  # bench_ops.inc: bench_ssd
SSD_DTYPES = ("bf16", "f32")  # bench_all_ops: ssd_dtypes
SSD_GROUPS = (1, 8, 32)  # bench_all_ops: ssd_groups
STEP_R, STEP_POOL, STEP_H, STEP_D, STEP_N = 256, 512, 80, 64, 128  # bench_ops.inc: bench_ssd_step
CHECK_LEN = 256  # positions of the correctness checks (4 chunks)
CHECK_REQUESTS = 8  # ssd_step requests checked


def ssd_name(backward, dtype, ngroups):
    return (f"ssd_{'bwd' if backward else 'fwd'} {dtype} B{SSD_B} L{SSD_L} H{SSD_H} D{SSD_D} N{SSD_N}"
            f" G{ngroups}")


def ssd_names(backward, dtype, ngroups):
    """The bk_bench rows one measurement is reported under: f32 also as bk_bench's tf32 row
    (mamba's f32 is TF32 math)."""
    return [ssd_name(backward, d, ngroups) for d in ((dtype, "tf32") if dtype == "f32" else (dtype,))]


def step_name():
    return f"ssd_step bf16 R{STEP_R} pool{STEP_POOL} H{STEP_H} D{STEP_D} N{STEP_N}"


def main():
    opt, torch = peer_common.start("mamba_ssm", "mamba_ssm peers of bk_bench's ssd rows")
    try:
        import triton
    except Exception as e:  # noqa: BLE001
        skip("mamba_ssm", f"triton not importable ({first_line(e)})", opt.csv)
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    except Exception as e:  # noqa: BLE001
        skip("mamba_ssm", f"mamba_ssm not importable ({first_line(e)}); "
             "install it from .peers/ (see /work/shared/peers/README.md)", opt.csv)

    rows = [(bwd, dt, g) for bwd in (False, True) for dt in SSD_DTYPES for g in SSD_GROUPS]
    names = [n for r in rows for n in ssd_names(*r)] + [step_name()]
    if not any(opt.filter in n for n in names):
        print(f"mamba_ssm peer: no ssd row matches filter {opt.filter!r}")
        if opt.csv:
            open(opt.csv, "w").close()
        return

    csv = open(opt.csv, "w") if opt.csv else None
    dev = torch.device("cuda")
    print(f"mamba_ssm (Triton kernels; triton {triton.__version__}, torch {torch.__version__}) "
          f"on {torch.cuda.get_device_name()}")
    sys.stdout.flush()
    dtypes = {"bf16": torch.bfloat16, "f32": torch.float32}

    def urand(shape, dtype, lo, hi):  # bk_bench's drand(dtype, n, lo, hi): uniform in [lo, hi]
        return torch.empty(*shape, dtype=dtype, device=dev).uniform_(lo, hi)

    def report(name, ms, rate, unit, err):
        peer_common.report(csv, name, LABEL, ms, rate, unit, err)

    def refuse(name, e):
        print(f"{name:<46} {LABEL:<40} unsupported: {first_line(e)[:120]}")

    def rel_err(out, ref):
        return ((out.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()

    def ssd_reference(x, dt, A, B, C):
        """float64 y [b, T, H, D] of the scan from a zero state; x [b, T, H, D], dt [b, T, H],
        A [H], B and C [b, T, G, N] (any float dtype; differentiable)."""
        x, dt, A, B, C = (t.double() for t in (x, dt, A, B, C))
        T, H = x.shape[1], x.shape[2]
        rep = H // B.shape[2]  # head h reads group h // rep
        Bh, Ch = B.repeat_interleave(rep, dim=2), C.repeat_interleave(rep, dim=2)
        cum = torch.cumsum(dt * A, dim=1).permute(0, 2, 1)  # [b, H, T]
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        seg = (cum[..., :, None] - cum[..., None, :]).masked_fill(~causal, float("-inf"))
        cb = torch.einsum("bthn,bshn->bhts", Ch, Bh) * torch.exp(seg)
        return torch.einsum("bhts,bsh,bshd->bthd", cb, dt, x)

    def ssd_inputs(batch, seq, ngroups, dtype, requires_grad=False):
        """bench_ssd's inputs: x, dt, A, B, C in dtype, bk_bench's ranges."""
        t = (urand((batch, seq, SSD_H, SSD_D), dtype, -1.0, 1.0),
             urand((batch, seq, SSD_H), dtype, 0.001, 0.1),
             urand((SSD_H,), dtype, -2.0, -0.1),
             urand((batch, seq, ngroups, SSD_N), dtype, -1.0, 1.0),
             urand((batch, seq, ngroups, SSD_N), dtype, -1.0, 1.0))
        for v in t:
            v.requires_grad_(requires_grad)
        return t

    def ssd_row(backward, dtype_name, ngroups):
        """Times mamba's forward or backward at bench_ssd's shape, checks it, reports the row
        (f32: under the f32 and the tf32 names)."""
        names = ssd_names(backward, dtype_name, ngroups)
        dtype = dtypes[dtype_name]
        esize = torch.empty((), dtype=dtype).element_size()
        nx, nt = SSD_B * SSD_L * SSD_H * SSD_D, SSD_B * SSD_L * SSD_H
        nb = SSD_B * SSD_L * ngroups * SSD_N
        try:
            if not backward:
                x, dt, A, B, C = ssd_inputs(SSD_B, SSD_L, ngroups, dtype)
                out = {}

                def forward():
                    out["y"] = mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size=SSD_CHUNK)

                with torch.no_grad():
                    ms = median_ms(forward)
                    T = CHECK_LEN
                    ref = ssd_reference(x[:1, :T], dt[:1, :T], A, B[:1, :T], C[:1, :T])
                    err = rel_err(out["y"][:1, :T], ref)
                nbytes = esize * (2 * nx + nt + 2 * nb)
            else:
                ins = ssd_inputs(SSD_B, SSD_L, ngroups, dtype, requires_grad=True)
                y = mamba_chunk_scan_combined(*ins, chunk_size=SSD_CHUNK)
                dy = urand(y.shape, dtype, -1.0, 1.0)
                ms = median_ms(lambda: torch.autograd.grad(y, ins, dy, retain_graph=True))
                del y, ins, dy
                # the check: a small problem's five gradients against autograd through the reference
                small = ssd_inputs(1, CHECK_LEN, ngroups, dtype, requires_grad=True)
                y = mamba_chunk_scan_combined(*small, chunk_size=SSD_CHUNK)
                dy = urand(y.shape, dtype, -1.0, 1.0)
                grads = torch.autograd.grad(y, small, dy)
                small64 = [t.detach().double().requires_grad_(True) for t in small]
                refs = torch.autograd.grad(ssd_reference(*small64), small64, dy.double())
                err = max(rel_err(g, r) for g, r in zip(grads, refs))
                nbytes = esize * (4 * nx + 2 * nt + 4 * nb)
            for n in names:
                report(n, ms, nbytes / ms * 1e-6, "GB/s", err)
        except Exception as e:  # noqa: BLE001 - a kernel that refuses the shape or fails to build
            for n in names:
                refuse(n, e)
        sys.stdout.flush()

    def step_row():
        """Times selective_state_update at bench_ssd_step's shape, checks it, reports the row."""
        name = step_name()
        R, P, H, D, N = STEP_R, STEP_POOL, STEP_H, STEP_D, STEP_N
        bf16 = torch.bfloat16
        try:
            state = urand((P, H, D, N), bf16, -1.0, 1.0)
            x, z = urand((R, H, D), bf16, -1.0, 1.0), urand((R, H, D), bf16, -1.0, 1.0)
            dt = urand((R, H), bf16, -2.0, 0.0)
            A = urand((H,), bf16, -2.0, -0.1)
            skip_d = urand((H,), bf16, -1.0, 1.0)
            dt_bias = urand((H,), bf16, -1.0, 1.0)
            B, C = urand((R, 1, N), bf16, -1.0, 1.0), urand((R, 1, N), bf16, -1.0, 1.0)
            idx = torch.tensor([P - 1 - 2 * r for r in range(R)], dtype=torch.int32, device=dev)
            # Mamba-2's step: per-head values broadcast over head_dim (and state_dim) with stride 0
            dt_e, A_e = dt[:, :, None].expand(R, H, D), A[:, None, None].expand(H, D, N)
            skip_e, bias_e = skip_d[:, None].expand(H, D), dt_bias[:, None].expand(H, D)

            def step():
                return selective_state_update(state, x, dt_e, A_e, B, C, D=skip_e, z=z, dt_bias=bias_e,
                                              dt_softplus=True, state_batch_indices=idx)

            # the check first (the timed calls keep updating the pool): the first requests' y
            k = CHECK_REQUESTS
            s0 = state[idx[:k].long()].double()  # [k, H, D, N]
            y = step()[:k]
            d = dt[:k].double() + dt_bias.double()  # [k, H]
            d = torch.where(d <= 20.0, torch.nn.functional.softplus(d), d)
            s1 = (torch.exp(d * A.double())[:, :, None, None] * s0
                  + (d[:, :, None] * x[:k].double())[..., None] * B[:k].double()[:, :, None, :])
            u = torch.einsum("khdn,kn->khd", s1, C[:k, 0].double()) + skip_d.double()[None, :, None] * x[:k].double()
            zk = z[:k].double()
            err = rel_err(y, u * zk * torch.sigmoid(zk))
            ms = median_ms(step)
            nbytes = 2.0 * (2.0 * R * H * D * N + 3.0 * R * H * D + 2.0 * R * N)
            report(name, ms, nbytes / ms * 1e-6, "GB/s", err)
        except Exception as e:  # noqa: BLE001
            refuse(name, e)
        sys.stdout.flush()

    for r in rows:
        if any(opt.filter in n for n in ssd_names(*r)):
            torch.manual_seed(0)
            ssd_row(*r)
            torch.cuda.empty_cache()
    if opt.filter in step_name():
        torch.manual_seed(0)
        step_row()
        torch.cuda.empty_cache()

    if csv:
        csv.close()


if __name__ == "__main__":
    main()
