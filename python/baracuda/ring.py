"""baracuda.ring: context-parallel (ring) attention over torch.distributed.

    import torch.distributed as dist, baracuda.torch as bt
    y = bt.ring_attention(q, k, v, causal=True)   # this rank's shard of the sequence

Each rank holds one shard of the sequence: q [B, Hq, S_local, D], k/v [B, Hkv, S_local, D]
(GQA: Hq % Hkv == 0). K/V blocks travel the ring (rank r sends to r + 1, receives from
r - 1) with torch.distributed.batch_isend_irecv while the current block's attention runs
(baracuda's sdpa_fwd op, which also returns the block's lse); the partial (o, lse) pairs
are stacked and combined once at the end by baracuda's attention_merge op (f32 math,
parts in step order). The stack holds world partial outputs in the input dtype, so the
forward keeps world + 1 outputs' worth of memory until the merge. The output is a
[B, S, H, D] buffer seen as [B, H, S, D] (like cuDNN's SDPA output), so
out.transpose(1, 2).reshape(B, S, H * D) for the output projection is free.

Streams. On the NCCL backend the transfers run on NCCL's own communication stream, which
ProcessGroupNCCL orders after the work already queued on torch's current (compute)
stream and which the compute stream waits for only where `wait()` is called: just before
the received block is used. So step s's kernels overlap step s+1's transfer; the host
never synchronises. Buffers in flight stay referenced until their request completes.

Causal. The sequence is split zig-zag into 2 * world chunks and rank r holds chunks r and
2 * world - 1 - r, concatenated, so every rank does the same causal work. Against the
K/V shard of rank `src` the queries need one attention call: src == r: the whole shard
with the causal mask (bottom-right, Sq == Sk: the concatenation keeps causal order);
src < r: all queries against the first half of the keys (an early chunk) unmasked;
src > r: the second half of the queries (the late chunk) against all keys unmasked.

The backward recomputes each block with the sdpa_bwd op. The full attention's
dS = P * (dP - rowsum(dO * O)) with P = w * p, p the block's own softmax and
w = exp(lse_block - lse) its weight in the merge, equals p * (w dP - rowsum(w dO * O)):
so each block gets dy = w * dO, y = the FINAL merged O and its own lse (kept from the
forward); this holds whether the kernel takes P as exp(s - lse) or renormalises it over
the block's keys (the CPU backend, and CUDA for f64). Where the kernel takes
P = exp(s - lse) as given (CUDA, f32/f16/bf16) each block instead gets dO itself and
the FINAL lse, which makes P = w * p directly and spares dO the rounding of w * dO. The dK/dV partial sums travel the ring with
their K/V block, one step behind it: the sum a rank receives is added after its own
block's gradients are computed, so its transfer runs under those kernels; after the
last step one more hop lands each sum on the rank that owns the block.
Tested on the CPU with the gloo backend (python/tests/test_ring.py) and on GPUs with
NCCL (python/examples/ring_attention.py under torchrun).
"""
import math

import torch
import torch.distributed as dist

import baracuda.torch  # noqa: F401  (registers the sdpa_fwd / sdpa_bwd ops used here)

__all__ = ["ring_attention"]


def _pieces(rank, src, world, causal, s_local):
    """The (query slice, key slice, causal) attention calls that this rank's queries make
    against the K/V shard of rank `src` (see the module's "Causal" paragraph)."""
    if not causal:
        return [(slice(None), slice(None), False)]
    if src == rank:
        return [(slice(None), slice(None), True)]
    half = s_local // 2
    if src < rank:
        return [(slice(None), slice(0, half), False)]
    return [(slice(half, s_local), slice(None), False)]


def _exchange(tensors, group, send_to, recv_from):
    """Starts sending `tensors` (contiguous; the caller keeps them alive until the
    requests complete) to rank send_to and receiving same-shaped ones from recv_from;
    returns (received tensors, requests to wait on)."""
    received = [torch.empty_like(t) for t in tensors]
    ops = [dist.P2POp(dist.isend, t, send_to, group) for t in tensors]
    ops += [dist.P2POp(dist.irecv, t, recv_from, group) for t in received]
    return received, dist.batch_isend_irecv(ops)


def _ring_peers(group):
    """(rank in group, group size, global rank of the next rank, of the previous one)."""
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    peer = lambda r: dist.get_global_rank(group, r % world)  # noqa: E731
    return rank, world, peer(rank + 1), peer(rank - 1)


def _wait(requests):
    for r in requests:
        r.wait()


def _acc_dtype(dtype):
    """The dtype partial results accumulate in: f64 for f64, f32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _ring_forward(q, k, v, scale, causal, group):
    rank, world, send_to, recv_from = _ring_peers(group)
    b, hq, s_local = q.shape[:3]
    # every step's partial result, stacked for one attention_merge at the end: rows
    # (b, i), parts (steps), heads; a part that did not reach a row keeps lse -inf
    o_parts = q.new_empty((b, s_local, world, hq, v.shape[3]))
    lse_parts = q.new_full((b, s_local, world, hq), -math.inf, dtype=torch.float32)
    block_lse = []  # per step: the block's own lse (f32), for the backward
    for step in range(world):
        if step + 1 < world:
            (k_next, v_next), reqs = _exchange((k, v), group, send_to, recv_from)
        for qs, ks, diag in _pieces(rank, (rank - step) % world, world, causal, s_local):
            y, l = torch.ops.baracuda.sdpa_fwd(q[:, :, qs], k[:, :, ks], v[:, :, ks], None, scale, diag, -1, 0.0, False)
            block_lse.append(l)
            o_parts[:, qs, step] = y.transpose(1, 2)
            lse_parts[:, qs, step] = l.transpose(1, 2)
        if step + 1 < world:
            _wait(reqs)
            k, v = k_next, v_next
    out, lse = torch.ops.baracuda.attention_merge(o_parts.view(b * s_local, world, hq, -1),
                                                  lse_parts.view(b * s_local, world, hq))
    # [B, S, H, D] storage seen as [B, H, S, D] (as cuDNN's SDPA output); lse [B, H, S]
    return out.view(b, s_local, hq, -1).transpose(1, 2), lse.view(b, s_local, hq).transpose(1, 2), block_lse


def _ring_backward(dout, q, k, v, out, lse, block_lse, scale, causal, group):
    rank, world, send_to, recv_from = _ring_peers(group)
    acc = _acc_dtype(q.dtype)
    block_lse = iter(block_lse)
    # The CUDA kernels take P = exp(s - lse) as given for f32/f16/bf16 (attention.h), so
    # they get the final lse and dO itself (no rounding of w * dO to the input dtype).
    exact_lse = q.is_cuda and q.dtype != torch.float64
    dq = torch.zeros(q.shape, dtype=acc, device=q.device)
    d_reqs, d_sent = [], None  # the dK/dV sums in flight (received ones in dk_in, dv_in)
    for step in range(world):
        if step + 1 < world:  # the next K/V block travels while this one's gradients run
            (k_next, v_next), kv_reqs = _exchange((k, v), group, send_to, recv_from)
        dk = torch.zeros(k.shape, dtype=acc, device=k.device)
        dv = torch.zeros(v.shape, dtype=acc, device=v.device)
        for qs, ks, diag in _pieces(rank, (rank - step) % world, world, causal, q.shape[2]):
            l = next(block_lse)
            if exact_lse:  # P = exp(s - final lse): the full attention's own probabilities
                dy, l = dout[:, :, qs], lse[:, :, qs]
            else:
                w = torch.exp(l.to(acc) - lse[:, :, qs]).unsqueeze(-1)
                dy = (dout[:, :, qs].to(acc) * w).to(q.dtype)
            gq, gk, gv = torch.ops.baracuda.sdpa_bwd(dy, q[:, :, qs], k[:, :, ks], v[:, :, ks], out[:, :, qs], l,
                                                     None, scale, diag, -1, 0.0, False)
            dq[:, :, qs] += gq.to(acc)
            dk[:, :, ks] += gk.to(acc)
            dv[:, :, ks] += gv.to(acc)
        if step > 0:  # the sum of the ranks this block visited before, sent one step ago
            _wait(d_reqs)
            dk += dk_in
            dv += dv_in
        if world > 1:  # on to the next rank (after the last step: to the block's owner)
            d_sent = (dk, dv)
            (dk_in, dv_in), d_reqs = _exchange(d_sent, group, send_to, recv_from)
        if step + 1 < world:
            _wait(kv_reqs)
            k, v = k_next, v_next
    if world > 1:
        _wait(d_reqs)
        dk, dv = dk_in, dv_in
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class _RingAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, scale, causal, group):
        out, lse, block_lse = _ring_forward(q, k, v, scale, causal, group)
        ctx.save_for_backward(q, k, v, out, lse, *block_lse)
        ctx.opts = (scale, causal, group)
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse, *block_lse = ctx.saved_tensors
        dq, dk, dv = _ring_backward(dout.contiguous(), q, k, v, out, lse, block_lse, *ctx.opts)
        return dq, dk, dv, None, None, None


def ring_attention(q, k, v, *, causal=False, scale=None, group=None):
    """Context-parallel attention over the ranks of `group` (default: the world group of
    torch.distributed, which must be initialised). q [B, Hq, S_local, D] and k, v
    [B, Hkv, S_local, D] are this rank's shard; with causal the shard is the zig-zag pair
    of chunks r and 2 * world - 1 - r (S_local even), without it the r-th contiguous
    slice. Returns this rank's rows of the output, [B, Hq, S_local, Dv], differentiable in
    q, k, v (every rank must call backward). scale defaults to 1/sqrt(D). The lse the
    blocks return is f32, so f64 results agree with an f64 reference to about 1e-7."""
    if group is None:
        group = dist.group.WORLD
    if causal and q.shape[2] % 2:
        raise ValueError("ring_attention(causal=True) needs an even S_local (two zig-zag chunks), got %d"
                         % q.shape[2])
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    return _RingAttention.apply(q, k, v, float(scale), bool(causal), group)
