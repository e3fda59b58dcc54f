"""Independent float64 NumPy references for the tests: materialised attention scores,
the sequential SSD recurrence, plain loops for the cache ops, and central finite
differences for every backward. None of this calls baracuda."""
import numpy as np


def sdpa(q, k, v, scale, causal=False, window_left=-1, softcap=0.0, slopes=None):
    """y [B,Hq,Sq,Dv], lse [B,Hq,Sq] of attention with every option (see attention.h)."""
    b, hq, sq, _ = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    g = hq // hkv
    kk, vv = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    s = scale * np.einsum("bhid,bhjd->bhij", q, kk)
    if softcap > 0:
        s = softcap * np.tanh(s / softcap)
    i = np.arange(sq)[:, None] + (sk - sq)
    j = np.arange(sk)[None, :]
    if slopes is not None:
        s = s + np.asarray(slopes, np.float64)[None, :, None, None] * (j - i)[None, None]
    visible = np.ones((sq, sk), bool)
    if causal:
        visible &= j <= i
    if window_left >= 0:
        visible &= j >= i - window_left
    s = np.where(visible, s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m)
    total = p.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(total > 0, np.einsum("bhij,bhjd->bhid", p, vv) / np.where(total > 0, total, 1), 0.0)
        lse = np.where(total[..., 0] > 0, np.log(total[..., 0]) + m[..., 0], -np.inf)
    return y, lse


def ssd(x, dt, a, b, c):
    """y of the Mamba-2 recurrence, step by step: h = exp(dt A) h + dt B x^T, y = C.h."""
    bs, l, h, d = x.shape
    n = b.shape[3]
    y = np.zeros_like(x)
    for bi in range(bs):
        for hi in range(h):
            state = np.zeros((d, n))
            for t in range(l):
                state = np.exp(dt[bi, t, hi] * a[hi]) * state + dt[bi, t, hi] * np.outer(x[bi, t, hi], b[bi, t, hi])
                y[bi, t, hi] = state @ c[bi, t, hi]
    return y


def fd_grads(f, inputs, dy, h=1e-6):
    """d(sum(f(*inputs) * dy)) / d(each input) by central differences in f64."""
    grads = []
    for idx, x in enumerate(inputs):
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        for e in range(flat.size):
            keep = flat[e]
            flat[e] = keep + h
            up = np.sum(f(*inputs) * dy)
            flat[e] = keep - h
            down = np.sum(f(*inputs) * dy)
            flat[e] = keep
            gflat[e] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def gather_pages(pages, indices, indptr, last, page_size, b):
    """Request b's tokens [Hkv, kv_len, D] from a paged pool [num_pages, Hkv, page_size, D]."""
    ids = indices[indptr[b]:indptr[b + 1]]
    kv_len = (len(ids) - 1) * page_size + last[b]
    rows = np.concatenate([pages[p] for p in ids], axis=1)
    return rows[:, :kv_len]


def page_table(rng, kv_lens, page_size, num_pages):
    """A random FlashInfer page table for requests of kv_lens tokens from a shuffled pool:
    (kv_indices, kv_indptr, last_page_len) as int32 arrays."""
    counts = [(n + page_size - 1) // page_size for n in kv_lens]
    assert sum(counts) <= num_pages
    pool = rng.permutation(num_pages)[:sum(counts)].astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    last = np.array([n - (c - 1) * page_size for n, c in zip(kv_lens, counts)], np.int32)
    return pool, indptr, last
