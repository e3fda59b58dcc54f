"""Every op of the C API through the generic Python wrapper, on every backend, against
the float64 NumPy references of refs.py. Outputs are NaN-poisoned before each run."""
import numpy as np
import pytest

import baracuda
import refs
from conftest import close, tol

FLOATS = ["f64", "f32", "f16", "bf16"]


def _gpu_skip(backend, dtype):
    if backend.device.startswith("cuda") and dtype == "f64":
        pytest.skip("f64 runs on the CPU backend only for this op")


SDPA_CASES = {  # name: (q_heads, kv_heads, q_len, kv_len, options)
    "plain": (4, 4, 5, 7, {}),
    "gqa_causal": (4, 2, 5, 7, {"causal": True}),
    "causal_q_longer": (2, 1, 9, 4, {"causal": True}),
    "window_softcap": (4, 2, 6, 6, {"causal": True, "window_left": 2, "softcap": 3.0}),
    "alibi": (4, 1, 5, 8, {"alibi": True}),
}


def _sdpa_inputs(rng, backend, dtype, hq, hkv, sq, sk, d=64, dv=64, batch=2):
    q64 = rng.standard_normal((batch, hq, sq, d))
    k64 = rng.standard_normal((batch, hkv, sk, d))
    v64 = rng.standard_normal((batch, hkv, sk, dv))
    t = [backend.put(a, dtype) for a in (q64, k64, v64)]
    return t, [backend.get(x) for x in t]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(SDPA_CASES))
def test_sdpa_fwd(backend, rng, dtype, case):
    hq, hkv, sq, sk, opts = SDPA_CASES[case]
    (q, k, v), (q64, k64, v64) = _sdpa_inputs(rng, backend, dtype, hq, hkv, sq, sk)
    slopes = np.array(baracuda.alibi_slopes(hq)) if opts.get("alibi") else None
    plan = baracuda.sdpa_fwd.plan(device=backend.device, batch=2, q_heads=hq, kv_heads=hkv, q_len=sq, kv_len=sk,
                                  head_dim_qk=64, head_dim_v=64, scale=0.125, dtype=dtype, **opts)
    assert plan.sku.startswith("attention/sdpa_fwd/%s/" % dtype) and plan.workspace_size == 0
    y, lse = backend.empty((2, hq, sq, 64), dtype), backend.empty((2, hq, sq), "f32")
    extra = {"alibi_slopes": backend.put(slopes, "f32")} if slopes is not None else {}
    plan.run(q=q, k=k, v=v, y=y, lse=lse, **extra)
    want_y, want_lse = refs.sdpa(q64, k64, v64, 0.125, opts.get("causal", False), opts.get("window_left", -1),
                                 opts.get("softcap", 0.0), slopes)
    close(backend.get(y), want_y, tol(dtype, backend))
    close(backend.get(lse), want_lse, 1e-5)


def test_sdpa_fwd_strided_views(backend, rng):
    """Padded views (outer strides of a larger buffer) are read in place, Dqk != Dv."""
    big = backend.put(rng.standard_normal((2, 3, 10, 48)), "f32")
    q, k, v = big[:, :, 0:10:2, 0:16], big[:, :, 1:8, 16:32], big[:, :, 2:9, 32:40]
    plan = baracuda.sdpa_fwd.plan(device=backend.device, batch=2, q_heads=3, kv_heads=3, q_len=5, kv_len=7,
                                  head_dim_qk=16, head_dim_v=8, scale=0.3, dtype="f32")
    y = backend.empty((2, 3, 5, 8), "f32")
    plan.run(q=q, k=k, v=v, y=y)
    want, _ = refs.sdpa(backend.get(q), backend.get(k), backend.get(v), 0.3)
    close(backend.get(y), want, tol("f32", backend))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", ["gqa_causal", "window_softcap", "alibi"])
def test_sdpa_bwd(backend, rng, dtype, case):
    hq, hkv, sq, sk, opts = SDPA_CASES[case]
    d = 64 if backend.device.startswith("cuda") and dtype in ("f16", "bf16") else 8
    (q, k, v), (q64, k64, v64) = _sdpa_inputs(rng, backend, dtype, hq, hkv, sq, sk, d, d, batch=1)
    slopes = np.array(baracuda.alibi_slopes(hq)) if opts.get("alibi") else None
    args = dict(causal=opts.get("causal", False), window_left=opts.get("window_left", -1),
                softcap=opts.get("softcap", 0.0), slopes=slopes)
    desc = dict(batch=1, q_heads=hq, kv_heads=hkv, q_len=sq, kv_len=sk, head_dim_qk=d, head_dim_v=d, scale=0.3,
                dtype=dtype, **opts)
    y64, lse64 = refs.sdpa(q64, k64, v64, 0.3, **args)
    dy64 = rng.standard_normal(y64.shape)
    y, dy = backend.put(y64, dtype), backend.put(dy64, dtype)
    lse = backend.put(lse64, "f32")
    plan = baracuda.sdpa_bwd.plan(device=backend.device, **desc)
    out = {n: backend.empty(s, dtype) for n, s in (("dq", q64.shape), ("dk", k64.shape), ("dv", v64.shape))}
    extra = {"alibi_slopes": backend.put(slopes, "f32")} if slopes is not None else {}
    plan.run(q=q, k=k, v=v, y=y, dy=dy, lse=lse, **out, **extra)
    want = refs.fd_grads(lambda a, b, c: refs.sdpa(a, b, c, 0.3, **args)[0], [q64, k64, v64], backend.get(dy))
    t = max(tol(dtype, backend) * (4 if dtype in ("f16", "bf16") else 10), 1e-7)  # FD error floor
    for name, w in zip(("dq", "dk", "dv"), want):
        close(backend.get(out[name]), w, t)


@pytest.mark.parametrize("dtype", FLOATS)
def test_kv_append(backend, rng, dtype):
    b, h, new, cap, dk, dv = 3, 2, 4, 9, 5, 3
    kc64, vc64 = rng.standard_normal((b, h, cap, dk)), rng.standard_normal((b, h, cap, dv))
    kn64, vn64 = rng.standard_normal((b, h, new, dk)), rng.standard_normal((b, h, new, dv))
    offsets = np.array([0, 5, 2])
    kc, vc = backend.put(kc64, dtype), backend.put(vc64, dtype)
    kn, vn = backend.put(kn64, dtype), backend.put(vn64, dtype)
    want_k, want_v = backend.get(kc).copy(), backend.get(vc).copy()
    for i, off in enumerate(offsets):
        want_k[i, :, off:off + new] = backend.get(kn)[i]
        want_v[i, :, off:off + new] = backend.get(vn)[i]
    plan = baracuda.kv_append.plan(device=backend.device, batch=b, heads=h, new_len=new, max_cache_len=cap,
                                   head_dim_k=dk, head_dim_v=dv, dtype=dtype)
    plan.run(k_new=kn, v_new=vn, cache_offsets=backend.put(offsets, "i64"), k_cache=kc, v_cache=vc)
    np.testing.assert_array_equal(backend.get(kc), want_k)
    np.testing.assert_array_equal(backend.get(vc), want_v)


def _paged_setup(rng, backend, dtype, kv_lens, hkv=2, d=64, page_size=4, num_pages=9):
    kv_indices, kv_indptr, last = refs.page_table(rng, kv_lens, page_size, num_pages)
    kp64 = rng.standard_normal((num_pages, hkv, page_size, d))
    vp64 = rng.standard_normal((num_pages, hkv, page_size, d))
    kp, vp = backend.put(kp64, dtype), backend.put(vp64, dtype)
    table = dict(kv_indices=backend.put(kv_indices, "i32"), kv_indptr=backend.put(kv_indptr, "i32"),
                 last_page_len=backend.put(last, "i32"))
    pool = dict(num_pages=num_pages, kv_heads=hkv, page_size=page_size, head_dim=d, dtype=dtype)
    per_request = [(refs.gather_pages(backend.get(kp), kv_indices, kv_indptr, last, page_size, b)[None],
                    refs.gather_pages(backend.get(vp), kv_indices, kv_indptr, last, page_size, b)[None])
                   for b in range(len(kv_lens))]
    return kp, vp, table, pool, per_request


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_paged_decode(backend, rng, dtype):
    kv_lens, hq = [5, 1, 9], 4
    kp, vp, table, pool, per_request = _paged_setup(rng, backend, dtype, kv_lens)
    q = backend.put(rng.standard_normal((3, hq, 64)), dtype)
    o, lse = backend.empty((3, hq, 64), dtype), backend.empty((3, hq), "f32")
    plan = baracuda.paged_decode.plan(device=backend.device, batch=3, q_heads=hq, scale=0.125, **pool)
    plan.run(q=q, k_pages=kp, v_pages=vp, o=o, lse=lse, **table)
    for b, (k64, v64) in enumerate(per_request):
        want_o, want_lse = refs.sdpa(backend.get(q)[b][None, :, None], k64, v64, 0.125)
        close(backend.get(o)[b], want_o[0, :, 0], tol(dtype, backend))
        close(backend.get(lse)[b], want_lse[0, :, 0], 1e-5)


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("rows", [2, 3])
def test_paged_decode_rows(backend, rng, dtype, rows):
    """R query rows per request, q [batch, R, Hq, D], causal among themselves (bottom-right):
    a request of 1 key leaves its first R - 1 rows empty (o 0, lse -inf), one of no page
    (kv_indptr repeated) all of them."""
    kv_lens, hq = [5, 1, 9], 4
    kp, vp, table, pool, per_request = _paged_setup(rng, backend, dtype, kv_lens)
    # a fourth request that owns no page
    indptr = backend.get(table["kv_indptr"]).astype(np.int64)
    table["kv_indptr"] = backend.put(np.concatenate([indptr, indptr[-1:]]), "i32")
    table["last_page_len"] = backend.put(np.concatenate([backend.get(table["last_page_len"]), [0]]), "i32")
    q = backend.put(rng.standard_normal((4, rows, hq, 64)), dtype)
    o, lse = backend.empty((4, rows, hq, 64), dtype), backend.empty((4, rows, hq), "f32")
    plan = baracuda.paged_decode.plan(device=backend.device, batch=4, q_heads=hq, scale=0.125,
                                      q_rows_per_request=rows, **pool)
    plan.run(q=q, k_pages=kp, v_pages=vp, o=o, lse=lse, **table)
    for b, (k64, v64) in enumerate(per_request):
        want_o, want_lse = refs.sdpa(backend.get(q)[b].transpose(1, 0, 2)[None], k64, v64, 0.125, causal=True)
        close(backend.get(o)[b], want_o[0].transpose(1, 0, 2), tol(dtype, backend))
        close(backend.get(lse)[b], want_lse[0].T, 1e-5)
    assert np.all(backend.get(o)[1, :rows - 1] == 0) and np.all(backend.get(lse)[1, :rows - 1] == -np.inf)
    assert np.all(backend.get(o)[3] == 0) and np.all(backend.get(lse)[3] == -np.inf)
    with pytest.raises(baracuda.Unsupported, match="q_rows_per_request is 9"):
        baracuda.paged_decode.plan(device=backend.device, batch=4, q_heads=hq, scale=0.125, q_rows_per_request=9,
                                   **pool)
    with pytest.raises(baracuda.InvalidProblem, match="q.rank is 3, expected 4"):
        plan.run(q=backend.put(rng.standard_normal((4, hq, 64)), dtype), k_pages=kp, v_pages=vp, o=o, lse=lse,
                 **table)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
@pytest.mark.parametrize("causal", [False, True])
def test_paged_prefill(backend, rng, dtype, causal):
    kv_lens, q_lens, hq = [5, 3, 9], [2, 0, 4], 4
    kp, vp, table, pool, per_request = _paged_setup(rng, backend, dtype, kv_lens)
    q_indptr = np.concatenate([[0], np.cumsum(q_lens)])
    rows = int(q_indptr[-1])
    q = backend.put(rng.standard_normal((rows, hq, 64)), dtype)
    o, lse = backend.empty((rows, hq, 64), dtype), backend.empty((rows, hq), "f32")
    plan = baracuda.paged_prefill.plan(device=backend.device, batch=3, total_rows=rows, q_heads=hq, scale=0.125,
                                       causal=causal, **pool)
    plan.run(q=q, q_indptr=backend.put(q_indptr, "i32"), k_pages=kp, v_pages=vp, o=o, lse=lse, **table)
    for b, (k64, v64) in enumerate(per_request):
        r0, r1 = q_indptr[b], q_indptr[b + 1]
        if r0 == r1:
            continue
        want_o, want_lse = refs.sdpa(backend.get(q)[r0:r1].transpose(1, 0, 2)[None], k64, v64, 0.125, causal)
        close(backend.get(o)[r0:r1], want_o[0].transpose(1, 0, 2), tol(dtype, backend))
        close(backend.get(lse)[r0:r1], want_lse[0].T, 1e-5)


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_paged_kv_append(backend, rng, dtype):
    kv_lens, new = [5, 1, 9], [2, 1, 3]  # the table describes the cache after the append
    kp, vp, table, pool, _ = _paged_setup(rng, backend, dtype, kv_lens)
    kv_indices, kv_indptr, last = (backend.get(table[n]).astype(int) for n in ("kv_indices", "kv_indptr",
                                                                               "last_page_len"))
    append_indptr = np.concatenate([[0], np.cumsum(new)])
    kn, vn = (backend.put(rng.standard_normal((int(append_indptr[-1]), 2, 64)), dtype) for _ in range(2))
    want_k, want_v = backend.get(kp).copy(), backend.get(vp).copy()
    for b in range(3):
        for r in range(new[b]):
            t = kv_lens[b] - new[b] + r
            page = kv_indices[kv_indptr[b] + t // 4]
            want_k[page, :, t % 4] = backend.get(kn)[append_indptr[b] + r]
            want_v[page, :, t % 4] = backend.get(vn)[append_indptr[b] + r]
    plan = baracuda.paged_kv_append.plan(device=backend.device, batch=3, nnz=int(append_indptr[-1]), **pool)
    plan.run(k_new=kn, v_new=vn, append_indptr=backend.put(append_indptr, "i32"), k_pages=kp, v_pages=vp, **table)
    np.testing.assert_array_equal(backend.get(kp), want_k)
    np.testing.assert_array_equal(backend.get(vp), want_v)


@pytest.mark.parametrize("dtype", FLOATS)
def test_attention_merge(backend, rng, dtype):
    rows, parts, heads, d = 5, 3, 2, 6
    o_parts = backend.put(rng.standard_normal((rows, parts, heads, d)), dtype)
    lse64 = rng.standard_normal((rows, parts, heads))
    lse64[0, 1, 0] = -np.inf
    lse64[1, :, 1] = -np.inf
    o, lse = backend.empty((rows, heads, d), dtype), backend.empty((rows, heads), "f32")
    plan = baracuda.attention_merge.plan(device=backend.device, rows=rows, parts=parts, heads=heads, head_dim=d,
                                         dtype=dtype)
    plan.run(o_parts=o_parts, lse_parts=backend.put(lse64, "f32"), o=o, lse=lse)
    lse32 = lse64.astype(np.float32).astype(np.float64)
    m = lse32.max(1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    w = np.exp(lse32 - m)
    total = w.sum(1)
    want_o = np.einsum("rph,rphd->rhd", w, np.nan_to_num(backend.get(o_parts))) / np.where(total > 0, total, 1)[..., None]
    with np.errstate(divide="ignore"):
        want_lse = np.log(total) + m[:, 0]
    close(backend.get(o), want_o, tol(dtype, backend))
    close(backend.get(lse), want_lse, 1e-5)


@pytest.mark.parametrize("dtype", FLOATS)
def test_alibi(backend, rng, dtype):
    b, h, qn, kn = 2, 3, 4, 5
    scores = backend.put(rng.standard_normal((b, h, qn, kn)), dtype)
    slopes = backend.put(baracuda.alibi_slopes(h), dtype)
    y = backend.empty((b, h, qn, kn), dtype)
    desc = dict(batch=b, heads=h, query_len=qn, key_len=kn, dtype=dtype)
    baracuda.alibi_fwd.plan(device=backend.device, **desc).run(scores=scores, slopes=slopes, y=y)
    rel = (np.arange(kn)[None, :] - np.arange(qn)[:, None]).astype(np.float64)
    close(backend.get(y), backend.get(scores) + backend.get(slopes)[None, :, None, None] * rel, tol(dtype, backend))
    dy = backend.put(rng.standard_normal((b, h, qn, kn)), dtype)
    dscores, dslopes = backend.empty((b, h, qn, kn), dtype), backend.empty((h,), dtype)
    plan = baracuda.alibi_bwd.plan(device=backend.device, **desc)
    plan.run(dy=dy, dscores=dscores, dslopes=dslopes)
    np.testing.assert_array_equal(backend.get(dscores), backend.get(dy))
    close(backend.get(dslopes), (backend.get(dy) * rel).sum(axis=(0, 2, 3)), tol(dtype, backend) * 4)


def _ssd_inputs(rng, backend, dtype, b=2, l=11, h=3, d=4, n=5):
    x = rng.standard_normal((b, l, h, d))
    dt = rng.uniform(0.05, 0.5, (b, l, h))
    a = -rng.uniform(0.5, 2.0, (h,))
    bb, cc = rng.standard_normal((b, l, h, n)), rng.standard_normal((b, l, h, n))
    ts = [backend.put(t, dtype) for t in (x, dt, a, bb, cc)]
    return ts, [backend.get(t) for t in ts]


@pytest.mark.parametrize("dtype", FLOATS)
def test_ssd_fwd(backend, rng, dtype):
    _gpu_skip(backend, dtype)
    (x, dt, a, b, c), ins64 = _ssd_inputs(rng, backend, dtype)
    y = backend.empty(ins64[0].shape, dtype)
    plan = baracuda.ssd_fwd.plan(device=backend.device, batch=2, seq_len=11, heads=3, head_dim=4, state_dim=5,
                                 chunk_size=4, dtype=dtype)
    plan.run(x=x, dt=dt, a=a, b=b, c=c, y=y)  # the workspace is allocated for the caller
    close(backend.get(y), refs.ssd(*ins64), tol(dtype, backend) * 4)


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_ssd_bwd(backend, rng, dtype):
    _gpu_skip(backend, dtype)
    (x, dt, a, b, c), ins64 = _ssd_inputs(rng, backend, dtype, b=1, l=7, h=2, d=3, n=2)
    dy64 = rng.standard_normal(ins64[0].shape)
    dy = backend.put(dy64, dtype)
    out = {n: backend.empty(t.shape, dtype) for n, t in zip(("dx", "ddt", "da", "db", "dc"), ins64)}
    plan = baracuda.ssd_bwd.plan(device=backend.device, batch=1, seq_len=7, heads=2, head_dim=3, state_dim=2,
                                 chunk_size=3, dtype=dtype)
    plan.run(x=x, dt=dt, a=a, b=b, c=c, dy=dy, **out)
    want = refs.fd_grads(refs.ssd, [t.copy() for t in ins64], backend.get(dy))
    for name, w in zip(("dx", "ddt", "da", "db", "dc"), want):
        close(backend.get(out[name]), w, 1e-6 if dtype == "f64" else 1e-3)


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_ssd_step(backend, rng, dtype):
    """One token per request on a pool of states picked by state_indices, with the D skip,
    the z gate, dt_bias + softplus and B/C shared by groups of heads (mamba_ssm's
    selective_state_update), against a float64 NumPy step."""
    r, pool, h, d, n, g = 3, 5, 4, 3, 6, 2
    idx = np.array([4, 0, 2], dtype=np.int32)
    st64 = rng.standard_normal((pool, h, d, n))
    x, dt, a = rng.standard_normal((r, h, d)), rng.uniform(-1, 1, (r, h)), -rng.uniform(0.5, 2, (h,))
    bb, cc = rng.standard_normal((r, g, n)), rng.standard_normal((r, g, n))
    skip, z, bias = rng.standard_normal((h,)), rng.standard_normal((r, h, d)), rng.uniform(0, 0.5, (h,))
    ts = {k: backend.put(v, dtype) for k, v in dict(state=st64, x=x, dt=dt, a=a, b=bb, c=cc, skip=skip, z=z,
                                                       dt_bias=bias).items()}
    ins = {k: backend.get(v) for k, v in ts.items()}  # the rounded inputs, in f64
    y = backend.empty((r, h, d), dtype)
    plan = baracuda.ssd_step.plan(device=backend.device, batch=r, pool=pool, heads=h, head_dim=d, state_dim=n,
                                  dtype=dtype, ngroups=g, skip=1, has_z=True, has_dt_bias=True, dt_softplus=True,
                                  has_state_indices=True)
    plan.run(y=y, state_indices=backend.put(idx, "i32"), **ts)
    want_state, want_y = ins["state"].copy(), np.zeros((r, h, d))
    for ri in range(r):
        for hi in range(h):
            gi = hi // (h // g)
            dtv = ins["dt"][ri, hi] + ins["dt_bias"][hi]
            dtv = dtv if dtv > 20 else np.log1p(np.exp(dtv))
            s = want_state[idx[ri], hi]
            s[:] = np.exp(dtv * ins["a"][hi]) * s + dtv * np.outer(ins["x"][ri, hi], ins["b"][ri, gi])
            out = s @ ins["c"][ri, gi] + ins["skip"][hi] * ins["x"][ri, hi]
            zz = ins["z"][ri, hi]
            want_y[ri, hi] = out * zz / (1 + np.exp(-zz))
    close(backend.get(y), want_y, tol(dtype, backend) * 4)
    close(backend.get(ts["state"]), want_state, tol(dtype, backend) * 4)


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_ssd_fwd_groups_final_states(backend, rng, dtype):
    """ngroups = 1 (B/C shared by every head) and the final states, against the sequential
    NumPy recurrence."""
    bs, l, h, d, n = 2, 9, 3, 4, 5
    x, dt, a = rng.standard_normal((bs, l, h, d)), rng.uniform(0.05, 0.5, (bs, l, h)), -rng.uniform(0.5, 2, (h,))
    bb, cc = rng.standard_normal((bs, l, 1, n)), rng.standard_normal((bs, l, 1, n))
    ts = [backend.put(t, dtype) for t in (x, dt, a, bb, cc)]
    x64, dt64, a64, b64, c64 = [backend.get(t) for t in ts]
    y, fin = backend.empty((bs, l, h, d), dtype), backend.empty((bs, h, d, n), dtype)
    plan = baracuda.ssd_fwd.plan(device=backend.device, batch=bs, seq_len=l, heads=h, head_dim=d, state_dim=n,
                                 chunk_size=4, dtype=dtype, ngroups=1, has_final_states=True)
    plan.run(x=ts[0], dt=ts[1], a=ts[2], b=ts[3], c=ts[4], y=y, final_states=fin)
    want_y, want_fin = np.zeros((bs, l, h, d)), np.zeros((bs, h, d, n))
    for bi in range(bs):
        for hi in range(h):
            s = np.zeros((d, n))
            for t in range(l):
                s = np.exp(dt64[bi, t, hi] * a64[hi]) * s + dt64[bi, t, hi] * np.outer(x64[bi, t, hi], b64[bi, t, 0])
                want_y[bi, t, hi] = s @ c64[bi, t, 0]
            want_fin[bi, hi] = s
    close(backend.get(y), want_y, tol(dtype, backend) * 4)
    close(backend.get(fin), want_fin, tol(dtype, backend) * 4)


class _DLPackOnly:
    """A producer seen only through the DLPack protocol (as CuPy or JAX arrays are)."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, stream=None):
        return self.a.__dlpack__()

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_dlpack_producer(rng):
    """Tensors read through __dlpack__ (the capsule kept alive for the call), strided."""
    big = rng.standard_normal((1, 2, 6, 16)).astype(np.float32)
    q, k = big[:, :, :3, :8], big[:, :, 2:, 8:]
    y = np.full((1, 2, 3, 8), np.nan, np.float32)
    plan = baracuda.sdpa_fwd.plan(batch=1, q_heads=2, kv_heads=2, q_len=3, kv_len=4, head_dim_qk=8, head_dim_v=8,
                                  scale=0.4, dtype="f32")
    plan.run(q=_DLPackOnly(q), k=_DLPackOnly(k), v=_DLPackOnly(k), y=_DLPackOnly(y))
    want, _ = refs.sdpa(q.astype(np.float64), k.astype(np.float64), k.astype(np.float64), 0.4)
    close(y, want, 2e-5)
