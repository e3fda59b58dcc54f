"""baracuda.torch.ring_attention on the CPU: two processes on the gloo backend (FileStore
rendezvous, loopback only) run every case once in a single spawn; each case's gathered
output and gradients are compared with f64 attention over the whole sequence.
BK_RING_WORLD=N runs N processes instead (1 and 3 exercise the ring's edge cases)."""
import datetime
import math
import os
import time

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the ring attention tests need it")
dist = pytest.importorskip("torch.distributed", reason="torch.distributed not available")
if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed has no gloo backend: the CPU ring tests need it", allow_module_level=True)
import torch.multiprocessing as mp  # noqa: E402

WORLD, TIMEOUT_S = int(os.environ.get("BK_RING_WORLD", "2")), 120
# (dtype, causal, Hq, Hkv, S_local, D)
CASES = [(dt, causal, 2, hkv, s, 16) for dt in ("f64", "f32") for causal in (False, True) for hkv in (1, 2)
         for s in ((8, 6) if causal else (8, 5))]
DTYPES = {"f64": torch.float64, "f32": torch.float32}
TOL = {"f64": 1e-6, "f32": 2e-5}


def _case_id(case):
    dt, causal, hq, hkv, s, d = case
    return "%s-%s-hkv%d-s%d" % (dt, "causal" if causal else "full", hkv, s)


def _full_inputs(case):
    """The whole sequence's q, k, v, dy in f64 (the same on every rank: seeded)."""
    dt, causal, hq, hkv, s, d = case
    g = torch.Generator().manual_seed(11)
    n = s * WORLD
    return [torch.randn(1, h, n, dd, generator=g, dtype=torch.float64) * 0.5
            for h, dd in ((hq, d), (hkv, d), (hkv, d), (hq, d))]


def _shard_index(rank, n, causal):
    """The sequence positions rank holds: its contiguous slice, or zig-zag chunks r and
    2 * WORLD - 1 - r."""
    if not causal:
        s = n // WORLD
        return torch.arange(rank * s, (rank + 1) * s)
    c = n // (2 * WORLD)
    return torch.cat([torch.arange(i * c, (i + 1) * c) for i in (rank, 2 * WORLD - 1 - rank)])


def _worker(rank, store_path, out_dir):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    import baracuda.torch as bt
    dist.init_process_group("gloo", init_method="file://" + store_path, rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    try:
        results = {}
        for case in CASES:
            causal = case[1]
            idx = _shard_index(rank, case[4] * WORLD, causal)
            q, k, v, dy = (t[:, :, idx].to(DTYPES[case[0]]) for t in _full_inputs(case))
            q, k, v = (t.requires_grad_() for t in (q, k, v))
            y = bt.ring_attention(q, k, v, causal=causal)
            y.backward(dy)
            results[_case_id(case)] = [t.detach() for t in (y, q.grad, k.grad, v.grad)]
        torch.save(results, os.path.join(out_dir, "rank%d.pt" % rank))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ring_results(tmp_path_factory):
    """Runs the two ranks once; returns {rank: {case id: (y, dq, dk, dv)}} (shards)."""
    tmp = tmp_path_factory.mktemp("ring")
    ctx = mp.start_processes(_worker, args=(str(tmp / "store"), str(tmp)), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail("ring attention workers did not finish in %d s (hang?)" % TIMEOUT_S)
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return {r: torch.load(tmp / ("rank%d.pt" % r)) for r in range(WORLD)}


def _reference(q, k, v, causal):
    """Attention in f64 with materialised scores (causal: top-left = bottom-right, Sq == Sk)."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        n = q.shape[2]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -math.inf)
    return torch.softmax(s, -1) @ v


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_ring_attention_matches_full(ring_results, case):
    causal, n = case[1], case[4] * WORLD
    q, k, v, dy = _full_inputs(case)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    y = _reference(q, k, v, causal)
    y.backward(dy)
    want = [y.detach(), q.grad, k.grad, v.grad]
    got = [torch.zeros_like(t) for t in want]
    for r in range(WORLD):
        idx = _shard_index(r, n, causal)
        for g, part in zip(got, ring_results[r][_case_id(case)]):
            g[:, :, idx] = part.double()
    for name, g, w in zip(("y", "dq", "dk", "dv"), got, want):
        torch.testing.assert_close(g, w, rtol=TOL[case[0]], atol=TOL[case[0]], msg=lambda m: name + ": " + m)


def test_ring_attention_causal_needs_even_shard():
    import baracuda.torch as bt
    with pytest.raises(ValueError, match="even S_local"):
        bt.ring_attention(*(torch.zeros(1, 1, 5, 16) for _ in range(3)), causal=True)
