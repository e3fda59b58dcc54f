"""baracuda.torch: the custom ops against PyTorch references, autograd (gradcheck in
f64), torch.library.opcheck, the paged wrappers, torch.compile(fullgraph=True) and, on a
GPU, CUDA-graph capture. Skipped as a whole when torch is not installed."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the baracuda.torch tests need it")
import baracuda  # noqa: E402
import baracuda.torch as bt  # noqa: E402
import refs  # noqa: E402
from conftest import CUDA  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device (torch.cuda.is_available())")


def _sdpa_ref(q, k, v, causal=False, window_left=-1, softcap=0.0, slopes=None, scale=None):
    """Attention in f64 with materialised scores, in torch (differentiable)."""
    q, k, v = q.double(), k.double(), v.double()
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    s = (scale or 1 / math.sqrt(q.shape[-1])) * q @ k.transpose(-1, -2)
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    sq, sk = q.shape[2], k.shape[2]
    i = torch.arange(sq, device=q.device)[:, None] + (sk - sq)
    j = torch.arange(sk, device=q.device)[None, :]
    if slopes is not None:
        s = s + slopes.double()[None, :, None, None] * (j - i)
    mask = torch.ones(sq, sk, dtype=torch.bool, device=q.device)
    if causal:
        mask &= j <= i
    if window_left >= 0:
        mask &= j >= i - window_left
    return torch.softmax(s.masked_fill(~mask, -float("inf")), -1) @ v


OPTIONS = {"causal": dict(causal=True), "window_softcap": dict(causal=True, window_left=3, softcap=2.5),
           "alibi": dict(alibi=True), "plain": dict()}
TOL = {torch.float64: 1e-9, torch.float32: 2e-4, torch.float16: 2e-2, torch.bfloat16: 8e-2}


def _qkv(device, dtype, hq=4, hkv=2, sq=6, sk=9, d=64, grad=True):
    g = torch.Generator().manual_seed(7)
    return [(torch.randn(1, h, s, d, generator=g) * 0.5).to(device=device, dtype=dtype).requires_grad_(grad)
            for h, s in ((hq, sq), (hkv, sk), (hkv, sk))]


def _kw(opts, hq, device):
    kw = {k: v for k, v in opts.items() if k != "alibi"}
    if opts.get("alibi"):
        kw["alibi_slopes"] = torch.tensor(baracuda.alibi_slopes(hq), dtype=torch.float32, device=device)
    return kw


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("opt", sorted(OPTIONS))
def test_attention_forward_backward(device, dtype, opt):
    q, k, v = _qkv(device, dtype)
    kw = _kw(OPTIONS[opt], 4, device)
    y = bt.attention(q, k, v, **kw)
    ref_kw = {("slopes" if n == "alibi_slopes" else n): t for n, t in kw.items()}
    want = _sdpa_ref(q, k, v, **ref_kw)
    torch.testing.assert_close(y.double(), want, atol=TOL[dtype], rtol=TOL[dtype])
    dy = torch.randn_like(y)
    got = torch.autograd.grad(y, (q, k, v), dy)
    ref = torch.autograd.grad(want, (q, k, v), dy.double())
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.double(), b.double(), atol=4 * TOL[dtype], rtol=4 * TOL[dtype])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("opt", sorted(OPTIONS))
def test_attention_gradcheck(device, opt):
    q, k, v = _qkv(device, torch.float64, hq=2, hkv=1, sq=3, sk=5, d=4)
    kw = _kw(OPTIONS[opt], 2, device)
    assert torch.autograd.gradcheck(lambda a, b, c: bt.attention(a, b, c, **kw), (q, k, v))


@pytest.mark.parametrize("device", DEVICES)
def test_attention_matches_torch_sdpa(device):
    q, k, v = _qkv(device, torch.float32, hq=4, hkv=4, sq=8, sk=8, grad=False)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    y, lse = bt.attention(q, k, v, causal=True, return_lse=True)
    torch.testing.assert_close(y, want, atol=2e-4, rtol=2e-4)
    assert lse.dtype == torch.float32 and lse.shape == (1, 4, 8)


def _ssd_inputs(device, dtype, b=1, l=9, h=2, d=3, n=4, grad=True):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(b, l, h, d, generator=g)
    dt = torch.rand(b, l, h, generator=g) * 0.4 + 0.05
    a = -(torch.rand(h, generator=g) + 0.5)
    bb, cc = torch.randn(b, l, h, n, generator=g), torch.randn(b, l, h, n, generator=g)
    return [t.to(device=device, dtype=dtype).requires_grad_(grad) for t in (x, dt, a, bb, cc)]


def test_ssd_gradcheck_cpu():
    assert torch.autograd.gradcheck(lambda *t: bt.ssd_scan(*t, chunk_size=4), _ssd_inputs("cpu", torch.float64))


@pytest.mark.parametrize("device", DEVICES)
def test_ssd_against_f64(device):
    ins = _ssd_inputs(device, torch.float32)
    y = bt.ssd_scan(*ins, chunk_size=4)
    ins64 = [t.detach().double().cpu().numpy() for t in ins]
    torch.testing.assert_close(y.double().cpu(), torch.from_numpy(refs.ssd(*ins64)), atol=1e-4, rtol=1e-4)
    dy = torch.randn_like(y)
    got = torch.autograd.grad(y, ins, dy)
    cpu64 = [t.detach().double().cpu().requires_grad_() for t in ins]
    want = torch.autograd.grad(bt.ssd_scan(*cpu64, chunk_size=4), cpu64, dy.double().cpu())
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double().cpu(), b, atol=1e-3, rtol=1e-3)


def _ssd_options_ref(x, dt, A, B, C, D, z, dt_bias, softplus, limit, init, seq):
    """The scan with mamba_ssm's options, one step at a time in torch (differentiable):
    dt' = clamp(softplus(dt + dt_bias)), the state reset where seq changes, y = (C.h + D x)
    silu(z); returns (y, the state after the last step)."""
    b, L, H, Dh = x.shape
    P = H // B.shape[2]
    dtp = dt + dt_bias if dt_bias is not None else dt
    if softplus:
        dtp = torch.where(dtp <= 20, torch.log1p(torch.exp(dtp)), dtp)
    if limit is not None:
        dtp = dtp.clamp(*limit)
    h = init if init is not None else x.new_zeros(b, H, Dh, B.shape[3])
    ys = []
    for t in range(L):
        if seq is not None and t > 0:
            h = h * (seq[:, t] == seq[:, t - 1]).to(x.dtype)[:, None, None, None]
        Bt, Ct = B[:, t].repeat_interleave(P, 1), C[:, t].repeat_interleave(P, 1)  # [b, H, N]
        d = dtp[:, t, :, None, None]
        h = torch.exp(d * A[None, :, None, None]) * h + d * x[:, t, :, :, None] * Bt[:, :, None, :]
        y = (h * Ct[:, :, None, :]).sum(-1)
        if D is not None:
            y = y + (D[:, None] if D.dim() == 1 else D) * x[:, t]
        if z is not None:
            y = y * torch.nn.functional.silu(z[:, t])
        ys.append(y)
    return torch.stack(ys, 1), h


def _ssd_options_inputs(device, dtype, D_per_channel):
    """x, dt, A, B, C (ngroups 2 of 4 heads), D, z, dt_bias, init; and seq (int32, a reset
    inside the chunks), all seeded."""
    g = torch.Generator().manual_seed(5)
    b, L, H, Dh, G, N = 2, 11, 4, 3, 2, 5
    ts = [torch.randn(b, L, H, Dh, generator=g), torch.rand(b, L, H, generator=g) - 0.5,
          -(torch.rand(H, generator=g) + 0.5), torch.randn(b, L, G, N, generator=g),
          torch.randn(b, L, G, N, generator=g),
          torch.randn(H, Dh, generator=g) if D_per_channel else torch.randn(H, generator=g),
          torch.randn(b, L, H, Dh, generator=g), torch.rand(H, generator=g) * 0.5,
          torch.randn(b, H, Dh, N, generator=g) * 0.5]
    ts = [t.to(device=device, dtype=dtype).requires_grad_() for t in ts]
    seq = torch.tensor([[0] * 5 + [1] * 6, [0] * 2 + [3] * 9], dtype=torch.int32, device=device)
    return ts, seq


@pytest.mark.parametrize("D_per_channel", [False, True])
def test_ssd_options_cpu(D_per_channel):
    """Every scan option at once (ngroups 2 of 4 heads, D, z, dt_bias + softplus + a clamp
    that bites, initial and final states, seq_idx) against the step-by-step reference in
    f64: y, the final states, and the gradients of every tensor input."""
    (x, dt, A, B, C, D, z, bias, init), seq = _ssd_options_inputs("cpu", torch.float64, D_per_channel)
    limit = (0.45, 0.8)
    y, fin = bt.ssd_scan(x, dt, A, B, C, chunk_size=4, D=D, z=z, dt_bias=bias, dt_softplus=True, dt_limit=limit,
                         initial_states=init, seq_idx=seq, return_final_states=True)
    want_y, want_fin = _ssd_options_ref(x, dt, A, B, C, D, z, bias, True, limit, init, seq)
    torch.testing.assert_close(y, want_y, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fin, want_fin, rtol=1e-9, atol=1e-9)
    dy, dfin = torch.randn_like(y), torch.randn_like(fin)
    ins = (x, dt, A, B, C, D, z, bias, init)
    got = torch.autograd.grad((y, fin), ins, (dy, dfin))
    want = torch.autograd.grad((want_y, want_fin), ins, (dy, dfin))
    for name, a, b in zip(("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "init"), got, want):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8, msg=lambda m: name + ": " + m)


def test_ssd_options_gradcheck_cpu():
    """Finite differences of the scan with options (the clamp wide enough not to bite)."""
    (x, dt, A, B, C, D, z, bias, init), seq = _ssd_options_inputs("cpu", torch.float64, True)
    f = lambda *t: bt.ssd_scan(*t[:5], chunk_size=4, D=t[5], z=t[6], dt_bias=t[7], dt_softplus=True,  # noqa: E731
                               dt_limit=(0.01, 5.0), initial_states=t[8], seq_idx=seq, return_final_states=True)
    assert torch.autograd.gradcheck(f, (x, dt, A, B, C, D, z, bias, init))


@needs_cuda
@pytest.mark.parametrize("D_per_channel", [False, True])
def test_ssd_options_cuda(D_per_channel):
    """The CUDA forward and backward with every option (ngroups 2 of 4 heads, D, z, dt_bias +
    softplus + a clamp that bites, initial and final states, seq_idx): y and the final
    states against the f64 reference, the gradients of every tensor input (through y and
    the final states) against the CPU backward in f64 on the same values."""
    (x, dt, A, B, C, D, z, bias, init), seq = _ssd_options_inputs("cuda", torch.float32, D_per_channel)
    limit = (0.45, 0.8)
    y, fin = bt.ssd_scan(x, dt, A, B, C, chunk_size=4, D=D, z=z, dt_bias=bias, dt_softplus=True, dt_limit=limit,
                         initial_states=init, seq_idx=seq, return_final_states=True)
    ins = (x, dt, A, B, C, D, z, bias, init)
    ref = [t.detach().double().cpu().requires_grad_() for t in ins]
    want_y, want_fin = _ssd_options_ref(*ref[:8], True, limit, ref[8], seq.cpu())
    torch.testing.assert_close(y.double().cpu(), want_y.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fin.double().cpu(), want_fin.detach(), rtol=1e-4, atol=1e-4)
    dy, dfin = torch.randn_like(y), torch.randn_like(fin)
    got = torch.autograd.grad((y, fin), ins, (dy, dfin))
    cy, cfin = bt.ssd_scan(*ref[:5], chunk_size=4, D=ref[5], z=ref[6], dt_bias=ref[7], dt_softplus=True,
                           dt_limit=limit, initial_states=ref[8], seq_idx=seq.cpu(), return_final_states=True)
    want = torch.autograd.grad((cy, cfin), ref, (dy.double().cpu(), dfin.double().cpu()))
    for name, a, b in zip(("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "init"), got, want):
        assert a.device.type == "cuda" and a.dtype == torch.float32, name
        torch.testing.assert_close(a.double().cpu(), b, rtol=1e-4, atol=1e-4, msg=lambda m: name + ": " + m)


def _ssd_step_ref(state, x, dt, A, B, C, D, z, dt_bias, softplus, limit, idx):
    """One ssd_step in torch: the new pool (a copy) and y, request r on state[idx[r]]."""
    P = x.shape[1] // B.shape[1]
    dtp = dt + dt_bias if dt_bias is not None else dt
    if softplus:
        dtp = torch.where(dtp <= 20, torch.log1p(torch.exp(dtp)), dtp)
    if limit is not None:
        dtp = dtp.clamp(*limit)
    rows = idx.long() if idx is not None else torch.arange(x.shape[0])
    h = state[rows]
    d = dtp[:, :, None, None]
    Bh, Ch = B.repeat_interleave(P, 1), C.repeat_interleave(P, 1)  # [batch, H, N]
    h = torch.exp(d * A[None, :, None, None]) * h + d * x[..., None] * Bh[:, :, None, :]
    y = (h * Ch[:, :, None, :]).sum(-1)
    if D is not None:
        y = y + (D[:, None] if D.dim() == 1 else D) * x
    if z is not None:
        y = y * torch.nn.functional.silu(z)
    new = state.clone()
    new[rows] = h
    return new, y


def _ssd_step_inputs(device, dtype, D_per_channel):
    """A pool of 7 states, 3 requests on slots 5, 0, 3 (ngroups 2 of 4 heads) with every
    option's tensor, seeded."""
    g = torch.Generator().manual_seed(9)
    b, pool, H, Dh, G, N = 3, 7, 4, 3, 2, 5
    ts = [torch.randn(pool, H, Dh, N, generator=g), torch.randn(b, H, Dh, generator=g),
          torch.rand(b, H, generator=g) - 0.5, -(torch.rand(H, generator=g) + 0.5), torch.randn(b, G, N, generator=g),
          torch.randn(b, G, N, generator=g), torch.randn(H, Dh, generator=g) if D_per_channel else
          torch.randn(H, generator=g), torch.randn(b, H, Dh, generator=g), torch.rand(H, generator=g) * 0.5]
    idx = torch.tensor([5, 0, 3], dtype=torch.int32, device=device)
    return [t.to(device=device, dtype=dtype) for t in ts], idx


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("D_per_channel", [False, True])
def test_ssd_step(device, D_per_channel):
    """One step with every option (ngroups 2 of 4 heads, D, z, dt_bias + softplus + a clamp
    that bites, requests on scattered pool slots) against the torch reference in f64: y, the
    updated slots, and the slots no request names left as they were (f64 on the CPU, f32 on
    CUDA)."""
    dtype = torch.float64 if device == "cpu" else torch.float32
    (state, x, dt, A, B, C, D, z, bias), idx = _ssd_step_inputs(device, dtype, D_per_channel)
    limit = (0.45, 0.8)
    r = [t.double().cpu() for t in (state, x, dt, A, B, C, D, z, bias)]
    want_state, want_y = _ssd_step_ref(*r, True, limit, idx.cpu())
    y = bt.ssd_step(state, x, dt, A, B, C, D=D, z=z, dt_bias=bias, dt_softplus=True, dt_limit=limit,
                    state_indices=idx)
    tol = 1e-10 if device == "cpu" else 1e-5
    torch.testing.assert_close(y.double().cpu(), want_y, rtol=tol, atol=tol)
    torch.testing.assert_close(state.double().cpu(), want_state, rtol=tol, atol=tol)
    untouched = [i for i in range(state.shape[0]) if i not in idx.tolist()]
    assert torch.equal(state[untouched].double().cpu(), r[0][untouched])


@pytest.mark.parametrize("device", DEVICES)
def test_ssd_prefill_then_steps(device):
    """ssd_scan over the first 7 tokens with return_final_states, then ssd_step token by
    token from those states: the steps' outputs equal the scan over the whole sequence."""
    dtype = torch.float64 if device == "cpu" else torch.float32
    (x, dt, A, B, C, D, z, bias, _), _ = _ssd_options_inputs(device, dtype, True)
    x, dt, A, B, C, D, z, bias = (t.detach() for t in (x, dt, A, B, C, D, z, bias))
    opts = dict(D=D, z=z, dt_bias=bias, dt_softplus=True, dt_limit=(0.05, 2.0))
    full = bt.ssd_scan(x, dt, A, B, C, chunk_size=4, **opts)
    L0 = 7
    _, state = bt.ssd_scan(x[:, :L0], dt[:, :L0], A, B[:, :L0], C[:, :L0], chunk_size=4, z=z[:, :L0], D=D,
                           dt_bias=bias, dt_softplus=True, dt_limit=(0.05, 2.0), return_final_states=True)
    state = state.contiguous()
    tol = 1e-10 if device == "cpu" else 1e-4
    for t in range(L0, x.shape[1]):
        y = bt.ssd_step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D=D, z=z[:, t], dt_bias=bias,
                        dt_softplus=True, dt_limit=(0.05, 2.0))
        torch.testing.assert_close(y, full[:, t], rtol=tol, atol=tol, msg=lambda m: "token %d: %s" % (t, m))


def test_ssd_step_out_of_pool_cpu():
    """A state index outside the pool: OutOfRange on the CPU, nothing written."""
    (state, x, dt, A, B, C, _, _, _), _ = _ssd_step_inputs("cpu", torch.float64, False)
    before = state.clone()
    with pytest.raises(baracuda.OutOfRange):
        bt.ssd_step(state, x, dt, A, B, C, state_indices=torch.tensor([1, 7, 2], dtype=torch.int32))
    assert torch.equal(state, before)


def _opcheck_cases(device):
    """(op, args) for every custom op of baracuda.torch, small problems on `device`."""
    q, k, v = _qkv(device, torch.float32, hq=2, hkv=1, sq=3, sk=5, d=8)
    y, lse = bt.attention(q, k, v, causal=True, return_lse=True)
    opts = (0.3, True, -1, 0.0, False)
    ssd = _ssd_inputs(device, torch.float32)
    opt, seq = _ssd_options_inputs(device, torch.float32, False)
    (*step_t, _, _, _), step_idx = _ssd_step_inputs(device, torch.float32, False)
    step = (*step_t, None)
    (kp, vp), indices, indptr, last = _paged(device, torch.float16)
    table = [torch.from_numpy(t).to(device) for t in (indices, indptr, last)]
    q_indptr = torch.tensor([0, 1, 1, 3], dtype=torch.int32, device=device)
    new = torch.randn(3, 2, 64, device=device, dtype=torch.float16)
    ops = torch.ops.baracuda
    return {
        "sdpa_fwd": (ops.sdpa_fwd.default, (q, k, v, None, 0.3, True, -1, 0.0, False)),
        "sdpa_bwd": (ops.sdpa_bwd.default, (torch.randn_like(y), q.detach(), k.detach(), v.detach(), y.detach(),
                                            lse, None, *opts)),
        "ssd_fwd": (ops.ssd_fwd.default, (*ssd, 4, None, None, None, None, None, False, 0.0, math.inf, False)),
        "ssd_bwd": (ops.ssd_bwd.default, (torch.randn_like(ssd[0]), *[t.detach() for t in ssd], 4, None, None, None,
                                          None, None, False, 0.0, math.inf, None)),
        "ssd_fwd_options": (ops.ssd_fwd.default, (*opt[:5], 4, *opt[5:], seq, True, 0.1, 2.0, True)),
        "ssd_bwd_options": (ops.ssd_bwd.default, (torch.randn_like(opt[0]), *[t.detach() for t in opt[:5]], 4,
                                                  *[t.detach() for t in opt[5:]], seq, True, 0.1, 2.0,
                                                  torch.randn_like(opt[8]).detach())),
        "ssd_step": (ops.ssd_step.default, (*step, None, None, step_idx, True, 0.1, 2.0)),
        "paged_decode": (ops.paged_decode.default, (torch.randn(3, 4, 64, device=device, dtype=torch.float16), kp,
                                                    vp, *table, 0.125, 0)),
        "paged_decode_rows": (ops.paged_decode.default, (torch.randn(3, 2, 4, 64, device=device,
                                                                     dtype=torch.float16), kp, vp, *table, 0.125, 0)),
        "paged_prefill": (ops.paged_prefill.default, (torch.randn(3, 4, 64, device=device, dtype=torch.float16),
                                                      q_indptr, kp, vp, *table, 0.125, True)),
        "paged_kv_append": (ops.paged_kv_append.default, (new, new.clone(), q_indptr, kp, vp, *table)),
        "attention_merge": (ops.attention_merge.default, (torch.randn(3, 2, 2, 8, device=device),
                                                          torch.randn(3, 2, 2, device=device))),
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["sdpa_fwd", "sdpa_bwd", "ssd_fwd", "ssd_bwd", "ssd_fwd_options", "ssd_bwd_options",
                                  "ssd_step", "paged_decode", "paged_decode_rows", "paged_prefill", "paged_kv_append",
                                  "attention_merge"])
def test_opcheck(device, name):
    """torch.library.opcheck: schema (mutations declared), fake tensors, autograd
    registration and AOT dispatch of every custom op."""
    op, args = _opcheck_cases(device)[name]
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_attention_merge_of_split_keys(device, dtype):
    """Attention over keys split in three ranges, merged, equals attention over all keys;
    a part that saw no key (lse -inf) is skipped even when its o_parts row is NaN; the
    parts may be a strided view (parts stacked on another axis)."""
    q, k, v = _qkv(device, dtype, hq=4, hkv=2, sq=5, sk=13, d=16, grad=False)
    cuts = [(0, 4), (4, 9), (9, 13)]
    ys, ls = zip(*(bt.attention(q, k[:, :, a:b], v[:, :, a:b], return_lse=True) for a, b in cuts))
    # [B=1, H, S, P, D] stacked on axis 3, viewed as rows S, parts P, heads H
    o_parts = torch.stack(ys, 3)[0].permute(1, 2, 0, 3)
    lse_parts = torch.stack(ls, 3)[0].permute(1, 2, 0).contiguous()
    nan_row = torch.full_like(o_parts[:, :1], float("nan"))
    o_parts = torch.cat([o_parts, nan_row], 1)  # a fourth part that saw no key
    lse_parts = torch.cat([lse_parts, torch.full_like(lse_parts[:, :1], -float("inf"))], 1)
    o, lse = bt.attention_merge(o_parts, lse_parts)
    want_y, want_lse = bt.attention(q, k, v, return_lse=True)
    tol = max(TOL[dtype], 1e-6)  # the parts' lse are f32: f64 merges to about 1e-7
    torch.testing.assert_close(o.permute(1, 0, 2)[None].double(), _sdpa_ref(q, k, v).to(device), rtol=tol, atol=tol)
    torch.testing.assert_close(o.permute(1, 0, 2)[None], want_y, rtol=tol, atol=tol)
    torch.testing.assert_close(lse.permute(1, 0)[None], want_lse, rtol=1e-5, atol=1e-5)


def _paged(device, dtype, kv_lens=(5, 1, 9), hq=4, hkv=2, d=64, page_size=4, num_pages=9):
    rng = np.random.default_rng(5)
    indices, indptr, last = refs.page_table(rng, list(kv_lens), page_size, num_pages)
    g = torch.Generator().manual_seed(11)
    kp, vp = (torch.randn(num_pages, hkv, page_size, d, generator=g).to(device=device, dtype=dtype)
              for _ in range(2))
    return (kp, vp), indices, indptr, last


def _paged_ref(q_rows, kp, vp, indices, indptr, last, b, causal=False):
    k = refs.gather_pages(kp.double().cpu().numpy(), indices, indptr, last, kp.shape[2], b)
    v = refs.gather_pages(vp.double().cpu().numpy(), indices, indptr, last, kp.shape[2], b)
    y, _ = refs.sdpa(q_rows.double().cpu().numpy().transpose(1, 0, 2)[None], k[None], v[None],
                     1 / math.sqrt(kp.shape[3]), causal)
    return torch.from_numpy(y[0].transpose(1, 0, 2))


@pytest.mark.parametrize("device", DEVICES)
def test_batch_paged_decode(device):
    cache, indices, indptr, last = _paged(device, torch.float16)
    dec = bt.BatchPagedDecode()
    dec.plan(torch.from_numpy(indptr), torch.from_numpy(indices), torch.from_numpy(last), 4, 2, 64, 4,
             dtype=torch.float16, device=device)
    q = torch.randn(3, 4, 64, device=device, dtype=torch.float16)
    o, lse = dec.run(q, cache, return_lse=True)
    for b in range(3):
        torch.testing.assert_close(o[b].double().cpu(), _paged_ref(q[b:b + 1], *cache, indices, indptr, last, b)[0],
                                   atol=2e-2, rtol=2e-2)
    assert lse.shape == (3, 4) and lse.dtype == torch.float32


@pytest.mark.parametrize("device", DEVICES)
def test_batch_paged_decode_rows(device):
    """q [batch, R, Hq, D]: R rows per request, causal among themselves; request 1 holds one
    key, so its first R - 1 rows see none (o 0, lse -inf)."""
    cache, indices, indptr, last = _paged(device, torch.bfloat16)
    dec = bt.BatchPagedDecode()
    dec.plan(torch.from_numpy(indptr), torch.from_numpy(indices), torch.from_numpy(last), 4, 2, 64, 4,
             dtype=torch.bfloat16, device=device)
    q = torch.randn(3, 3, 4, 64, device=device, dtype=torch.bfloat16)
    o, lse = dec.run(q, cache, return_lse=True)
    assert o.shape == q.shape and lse.shape == (3, 3, 4) and lse.dtype == torch.float32
    for b in range(3):
        want = _paged_ref(q[b], *cache, indices, indptr, last, b, causal=True)
        torch.testing.assert_close(o[b].double().cpu(), want, atol=3e-2, rtol=3e-2)
    assert torch.all(o[1, :2] == 0) and torch.all(lse[1, :2] == -math.inf)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_paged_prefill_and_append(device):
    kv_lens, q_lens = (5, 3, 9), (2, 3, 4)
    cache, indices, indptr, last = _paged(device, torch.bfloat16, kv_lens)
    q_indptr = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    # the newest q_lens tokens of each request are appended first (FlashInfer's order)
    k_new, v_new = (torch.randn(int(q_indptr[-1]), 2, 64, device=device, dtype=torch.bfloat16) for _ in range(2))
    table = [torch.from_numpy(t).to(device) for t in (indices, indptr, last)]
    bt.paged_kv_append(k_new, v_new, torch.from_numpy(q_indptr).to(device), cache, *table)
    pre = bt.BatchPagedPrefill()
    pre.plan(q_indptr, indptr, indices, last, 4, 2, 64, 4, dtype=torch.bfloat16, causal=True, device=device)
    q = torch.randn(int(q_indptr[-1]), 4, 64, device=device, dtype=torch.bfloat16)
    o = pre.run(q, cache)
    for b in range(3):
        r0, r1 = q_indptr[b], q_indptr[b + 1]
        t = kv_lens[b] - q_lens[b] + 0
        page = indices[indptr[b] + t // 4]
        torch.testing.assert_close(cache[0][page, :, t % 4], k_new[r0])
        torch.testing.assert_close(o[r0:r1].double().cpu(),
                                   _paged_ref(q[r0:r1], *cache, indices, indptr, last, b, causal=True),
                                   atol=6e-2, rtol=6e-2)


def test_paged_plan_rejects_early():
    with pytest.raises(baracuda.Unsupported, match="head_dim"):
        bt.BatchPagedDecode().plan([0, 1], [0], [1], 4, 2, 48, 4, dtype=torch.float16)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    """Attention forward + backward, an SSD scan and a paged decode step in one compiled
    graph by inductor, forward and backward, against eager mode."""
    q, k, v = _qkv(device, torch.float32, hq=4, hkv=2, sq=5, sk=5, d=64)
    ssd_in = _ssd_inputs(device, torch.float32)
    cache, indices, indptr, last = _paged(device, torch.float32)
    dec = bt.BatchPagedDecode()
    dec.plan(indptr, indices, last, 4, 2, 64, 4, dtype=torch.float32, device=device)
    qd = torch.randn(3, 4, 64, device=device)

    def step(q, k, v, x, dt, a, b, c, qd):
        y = bt.attention(q, k, v, causal=True)
        s = bt.ssd_scan(x, dt, a, b, c, chunk_size=4)
        o = dec.run(qd, cache)
        return y.square().sum() + s.sum() + o.sum()

    compiled = torch.compile(step, fullgraph=True, backend="inductor")
    args = (q, k, v, *ssd_in, qd)
    got = compiled(*args)
    want = step(*args)
    torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-4)
    g_got = torch.autograd.grad(got, (q, k, v, ssd_in[0]))
    g_want = torch.autograd.grad(want, (q, k, v, ssd_in[0]))
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@needs_cuda
def test_cuda_graph():
    """Attention fwd/bwd, an SSD scan and a paged decode captured into one CUDA graph and
    replayed on new inputs: the same results as eager mode."""
    q, k, v = _qkv("cuda", torch.bfloat16, hq=8, hkv=2, sq=128, sk=128, d=128)
    ssd_in = _ssd_inputs("cuda", torch.float32, l=130, d=64, n=64)
    cache, indices, indptr, last = _paged("cuda", torch.bfloat16)
    dec = bt.BatchPagedDecode()
    dec.plan(indptr, indices, last, 4, 2, 64, 4, dtype=torch.bfloat16, device="cuda")
    qd = torch.randn(3, 4, 64, device="cuda", dtype=torch.bfloat16)
    dy = torch.randn(1, 8, 128, 128, device="cuda", dtype=torch.bfloat16)

    def step():
        y = bt.attention(q, k, v, causal=True)
        dq, dk, dv = torch.autograd.grad(y, (q, k, v), dy)
        return y, dq, dk, dv, bt.ssd_scan(*ssd_in), dec.run(qd, cache)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = step()
    for t in (q, k, v, qd, dy, ssd_in[0]):
        with torch.no_grad():
            t.copy_(torch.randn_like(t))
    graph.replay()
    torch.cuda.synchronize()
    want = step()
    for a, b in zip(outs, want):
        torch.testing.assert_close(a, b, atol=0, rtol=0) if a.dtype == torch.float32 else \
            torch.testing.assert_close(a.float(), b.float(), atol=1e-2, rtol=1e-2)
