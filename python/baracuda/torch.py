"""baracuda.torch: baracuda's kernels as torch.library custom ops, with fake (meta)
implementations for tracing and autograd through the backward kernels, so they work in
eager mode, under torch.compile(fullgraph=True) and inside CUDA graphs.

    import torch, baracuda.torch as bt
    y = bt.attention(q, k, v, causal=True)           # q [B, Hq, Sq, D], k/v [B, Hkv, Sk, D]
    y.sum().backward()                                 # dq, dk, dv by sdpa_bwd
    y = bt.ring_attention(q, k, v, causal=True)      # context parallel (baracuda.ring)
    y = bt.ssd_scan(x, dt, A, B, C)                    # Mamba-2 SSD, backward by ssd_bwd
    y = bt.ssd_step(state, x, dt, A, B, C)             # one generated token, state in place
    dec = bt.BatchPagedDecode(); dec.plan(kv_indptr, kv_indices, last_page_len)
    o = dec.run(q, (k_pages, v_pages))                 # per layer

Ops registered (namespace `baracuda`): sdpa_fwd, sdpa_bwd, attention_merge, ssd_fwd, ssd_bwd,
ssd_step, paged_decode, paged_prefill, paged_kv_append. Each runs on the tensors' device (CPU, or the CUDA device
they live on) and, on CUDA, on torch's current stream; outputs and workspaces come from
torch's allocator; nothing synchronises the host. Inputs whose innermost stride is not 1
(or that broadcast) are made contiguous first.
"""
import math
from typing import Optional, Tuple

import torch

import baracuda as _bk

Tensor = torch.Tensor
__all__ = ["attention", "attention_merge", "ssd_scan", "ssd_step", "paged_kv_append", "BatchPagedDecode", "BatchPagedPrefill", "ring_attention"]


def _device(t):
    """The baracuda device string of a torch tensor ("cpu" or "cuda:N")."""
    return "cuda:%d" % (t.device.index or 0) if t.device.type == "cuda" else t.device.type


def _dense(t):
    """`t` if it has inner stride 1 and no broadcast axis, else a contiguous copy (the
    kernels read strided views but not broadcasts outside the kv-head axis)."""
    if t is None:
        return None
    if t.dim() and t.stride(-1) == 1 and all(s != 0 or n <= 1 for n, s in zip(t.shape, t.stride())):
        return t
    return t.contiguous()


def _prefer(deterministic):
    return "deterministic" if deterministic else "fastest"


# ------------------------------------------------------------------ attention --
def _sdpa_desc(q, k, v, scale, causal, window_left, softcap, alibi):
    return dict(batch=q.shape[0], q_heads=q.shape[1], kv_heads=k.shape[1], q_len=q.shape[2], kv_len=k.shape[2],
                head_dim_qk=q.shape[3], head_dim_v=v.shape[3], scale=scale, causal=causal,
                window_left=window_left, softcap=softcap, alibi=alibi, dtype=q.dtype)


@torch.library.custom_op("baracuda::sdpa_fwd", mutates_args=())
def _sdpa_fwd(q: Tensor, k: Tensor, v: Tensor, alibi_slopes: Optional[Tensor], scale: float, causal: bool,
              window_left: int, softcap: float, deterministic: bool) -> Tuple[Tensor, Tensor]:
    q, k, v, slopes = _dense(q), _dense(k), _dense(v), _dense(alibi_slopes)
    y, lse = _sdpa_fwd_fake(q, k, v, alibi_slopes, scale, causal, window_left, softcap, deterministic)
    plan = _bk.sdpa_fwd.plan(device=_device(q), **_sdpa_desc(q, k, v, scale, causal, window_left, softcap,
                                                              slopes is not None))
    plan.run(q=q, k=k, v=v, y=y, lse=lse, alibi_slopes=slopes)
    return y, lse


@_sdpa_fwd.register_fake
def _sdpa_fwd_fake(q, k, v, alibi_slopes, scale, causal, window_left, softcap, deterministic):
    b, h, s = q.shape[0], q.shape[1], q.shape[2]
    return q.new_empty((b, h, s, v.shape[3])), q.new_empty((b, h, s), dtype=torch.float32)


@torch.library.custom_op("baracuda::sdpa_bwd", mutates_args=())
def _sdpa_bwd(dy: Tensor, q: Tensor, k: Tensor, v: Tensor, y: Tensor, lse: Tensor, alibi_slopes: Optional[Tensor],
              scale: float, causal: bool, window_left: int, softcap: float,
              deterministic: bool) -> Tuple[Tensor, Tensor, Tensor]:
    dy, q, k, v, y, lse, slopes = (_dense(t) for t in (dy, q, k, v, y, lse, alibi_slopes))
    dq, dk, dv = _sdpa_bwd_fake(dy, q, k, v, y, lse, alibi_slopes, scale, causal, window_left, softcap,
                                deterministic)
    plan = _bk.sdpa_bwd.plan(device=_device(q), preference=_prefer(deterministic),
                             **_sdpa_desc(q, k, v, scale, causal, window_left, softcap, slopes is not None))
    plan.run(q=q, k=k, v=v, y=y, dy=dy, lse=lse, alibi_slopes=slopes, dq=dq, dk=dk, dv=dv)
    return dq, dk, dv


@_sdpa_bwd.register_fake
def _sdpa_bwd_fake(dy, q, k, v, y, lse, alibi_slopes, scale, causal, window_left, softcap, deterministic):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _sdpa_setup(ctx, inputs, output):
    q, k, v, slopes, scale, causal, window_left, softcap, deterministic = inputs
    y, lse = output
    ctx.save_for_backward(q, k, v, y, lse, slopes)
    ctx.opts = (scale, causal, window_left, softcap, deterministic)
    ctx.mark_non_differentiable(lse)


def _sdpa_backward(ctx, dy, dlse):
    q, k, v, y, lse, slopes = ctx.saved_tensors
    dq, dk, dv = torch.ops.baracuda.sdpa_bwd(dy, q, k, v, y, lse, slopes, *ctx.opts)
    return dq, dk, dv, None, None, None, None, None, None


_sdpa_fwd.register_autograd(_sdpa_backward, setup_context=_sdpa_setup)


def attention(q, k, v, *, scale=None, causal=False, window_left=-1, softcap=0.0, alibi_slopes=None,
              deterministic=False, return_lse=False):
    """Flash attention (baracuda sdpa_fwd), differentiable in q, k, v (sdpa_bwd).

    q [B, Hq, Sq, Dqk], k [B, Hkv, Sk, Dqk], v [B, Hkv, Sk, Dv] (GQA: Hq % Hkv == 0),
    one dtype of f32, f64, f16, bf16, on the CPU or one CUDA device. scale defaults to
    1/sqrt(Dqk); causal is bottom-right aligned (PyTorch's is_causal when Sq == Sk);
    window_left >= 0 keeps keys j >= i + Sk - Sq - window_left; softcap > 0 applies
    softcap * tanh(s / softcap); alibi_slopes is an f32 [Hq] tensor (not differentiated).
    deterministic asks the backward for bit-identical reruns. Returns y [B, Hq, Sq, Dv],
    and lse [B, Hq, Sq] (f32, natural log; not differentiable) when return_lse."""
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    y, lse = torch.ops.baracuda.sdpa_fwd(q, k, v, alibi_slopes, float(scale), bool(causal), int(window_left),
                                         float(softcap), bool(deterministic))
    return (y, lse) if return_lse else y


def _merge_desc(o_parts):
    return dict(rows=o_parts.shape[0], parts=o_parts.shape[1], heads=o_parts.shape[2], head_dim=o_parts.shape[3],
                dtype=o_parts.dtype)


@torch.library.custom_op("baracuda::attention_merge", mutates_args=())
def _attention_merge(o_parts: Tensor, lse_parts: Tensor) -> Tuple[Tensor, Tensor]:
    o_parts = _dense(o_parts)
    o, lse = _attention_merge_fake(o_parts, lse_parts)
    plan = _bk.attention_merge.plan(device=_device(o_parts), **_merge_desc(o_parts))
    plan.run(o_parts=o_parts, lse_parts=lse_parts, o=o, lse=lse)
    return o, lse


@_attention_merge.register_fake
def _attention_merge_fake(o_parts, lse_parts):
    r, _, h, d = o_parts.shape
    return o_parts.new_empty((r, h, d)), o_parts.new_empty((r, h), dtype=torch.float32)


def attention_merge(o_parts, lse_parts):
    """Merges partial attention results over disjoint key ranges (baracuda
    attention_merge; FlashInfer's merge_states): o_parts [rows, parts, heads, D] (f32, f64,
    f16 or bf16; any outer strides), lse_parts f32 [rows, parts, heads] (natural log; -inf
    for a part that saw no key, whose o_parts row is then not read). Returns
    (o [rows, heads, D], lse f32 [rows, heads]) with lse = log sum_p exp(lse_p) and
    o = sum_p exp(lse_p - lse) o_p. Not differentiable."""
    return torch.ops.baracuda.attention_merge(o_parts, lse_parts)


# ------------------------------------------------------------------------ SSD --
def _ssd_desc(x, B, chunk_size, D, z, dt_bias, initial_states, seq_idx, dt_softplus, dt_min, dt_max,
              final_states):
    """The bk_ssd_desc fields of one scan: extents from the tensors, ngroups from B, each
    option on when its tensor (or flag) is given; the dt clamp is on unless (0, inf)."""
    return dict(batch=x.shape[0], seq_len=x.shape[1], heads=x.shape[2], head_dim=x.shape[3],
                state_dim=B.shape[3], chunk_size=chunk_size, dtype=x.dtype, ngroups=B.shape[2],
                skip=0 if D is None else (1 if D.dim() == 1 else 2), has_z=z is not None,
                has_dt_bias=dt_bias is not None, dt_softplus=dt_softplus,
                has_dt_limit=not (dt_min == 0.0 and dt_max == math.inf), dt_min=dt_min, dt_max=dt_max,
                has_initial_states=initial_states is not None, has_final_states=final_states,
                has_seq_idx=seq_idx is not None)


@torch.library.custom_op("baracuda::ssd_fwd", mutates_args=())
def _ssd_fwd(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int, D: Optional[Tensor],
             z: Optional[Tensor], dt_bias: Optional[Tensor], initial_states: Optional[Tensor],
             seq_idx: Optional[Tensor], dt_softplus: bool, dt_min: float, dt_max: float,
             final_states: bool) -> Tuple[Tensor, Tensor]:
    x, dt, A, B, C, D, z, dt_bias, init, seq = (_dense(t) for t in (x, dt, A, B, C, D, z, dt_bias, initial_states,
                                                                     seq_idx))
    y, fin = _ssd_fwd_fake(x, dt, A, B, C, chunk_size, D, z, dt_bias, init, seq, dt_softplus, dt_min, dt_max,
                           final_states)
    plan = _bk.ssd_fwd.plan(device=_device(x), **_ssd_desc(x, B, chunk_size, D, z, dt_bias, init, seq, dt_softplus,
                                                             dt_min, dt_max, final_states))
    plan.run(x=x, dt=dt, a=A, b=B, c=C, y=y, skip=D, z=z, dt_bias=dt_bias, initial_states=init, seq_idx=seq,
             final_states=fin if final_states else None)
    return y, fin


@_ssd_fwd.register_fake
def _ssd_fwd_fake(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, seq_idx, dt_softplus, dt_min, dt_max,
                  final_states):
    shape = (x.shape[0], x.shape[2], x.shape[3], B.shape[3]) if final_states else (0,)
    return x.new_empty(x.shape), x.new_empty(shape)


@torch.library.custom_op("baracuda::ssd_bwd", mutates_args=())
def _ssd_bwd(dy: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int,
             D: Optional[Tensor], z: Optional[Tensor], dt_bias: Optional[Tensor], initial_states: Optional[Tensor],
             seq_idx: Optional[Tensor], dt_softplus: bool, dt_min: float, dt_max: float,
             dfinal_states: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                                                        Tensor, Tensor]:
    dy, x, dt, A, B, C, D, z, dt_bias, init, seq, dfin = (
        _dense(t) for t in (dy, x, dt, A, B, C, D, z, dt_bias, initial_states, seq_idx, dfinal_states))
    grads = _ssd_bwd_fake(dy, x, dt, A, B, C, chunk_size, D, z, dt_bias, init, seq, dt_softplus, dt_min, dt_max,
                          dfin)
    dx, ddt, dA, dB, dC, dD, dz, ddt_bias, dinit = grads
    plan = _bk.ssd_bwd.plan(device=_device(x), **_ssd_desc(x, B, chunk_size, D, z, dt_bias, init, seq, dt_softplus,
                                                             dt_min, dt_max, dfin is not None))
    plan.run(x=x, dt=dt, a=A, b=B, c=C, dy=dy, dx=dx, ddt=ddt, da=dA, db=dB, dc=dC, skip=D, z=z, dt_bias=dt_bias,
             initial_states=init, seq_idx=seq, dfinal_states=dfin, dskip=dD if D is not None else None,
             dz=dz if z is not None else None, ddt_bias=ddt_bias if dt_bias is not None else None,
             dinitial_states=dinit if init is not None else None)
    return grads


@_ssd_bwd.register_fake
def _ssd_bwd_fake(dy, x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, seq_idx, dt_softplus, dt_min,
                  dt_max, dfinal_states):
    grads = [t.new_empty(t.shape) for t in (x, dt, A, B, C)]
    return (*grads, *(x.new_empty(t.shape) if t is not None else x.new_empty(0) for t in (D, z, dt_bias,
                                                                                          initial_states)))


def _ssd_setup(ctx, inputs, output):
    x, dt, A, B, C, chunk_size, D, z, dt_bias, init, seq, softplus, lo, hi, final_states = inputs
    ctx.save_for_backward(x, dt, A, B, C, D, z, dt_bias, init, seq)
    ctx.opts = (chunk_size, softplus, lo, hi, final_states)


def _ssd_backward(ctx, dy, dfin):
    x, dt, A, B, C, D, z, dt_bias, init, seq = ctx.saved_tensors
    chunk_size, softplus, lo, hi, final_states = ctx.opts
    g = torch.ops.baracuda.ssd_bwd(dy, x, dt, A, B, C, chunk_size, D, z, dt_bias, init, seq, softplus, lo, hi,
                                   dfin if final_states else None)
    opt = [g[5 + i] if t is not None else None for i, t in enumerate((D, z, dt_bias, init))]
    return (*g[:5], None, *opt[:3], opt[3], None, None, None, None, None)


_ssd_fwd.register_autograd(_ssd_backward, setup_context=_ssd_setup)


def ssd_scan(x, dt, A, B, C, chunk_size=64, *, D=None, z=None, dt_bias=None, dt_softplus=False,
             dt_limit=(0.0, math.inf), initial_states=None, seq_idx=None, return_final_states=False):
    """The Mamba-2 SSD scan (baracuda ssd_fwd), differentiable in every tensor input
    (ssd_bwd), with mamba_ssm's mamba_chunk_scan_combined options:
      h_t = exp(dt'_t A) h_{t-1} + dt'_t B_t x_t^T,  y_t = (C_t . h_t + D x_t) * silu(z_t),
      dt' = clamp(softplus(dt + dt_bias)) (softplus when dt_softplus, clamp unless (0, inf)).
    x [batch, L, H, D_head], dt [batch, L, H], A [H], B and C [batch, L, G, N] (G = ngroups
    divides H; G = H is per-head B/C), D [H] or [H, D_head], z like x, dt_bias [H],
    initial_states [batch, H, D_head, N], seq_idx int32 [batch, L] (the state resets where
    it changes); one float dtype (f32, f16, bf16; f64 on the CPU). Returns y [batch, L, H,
    D_head], and the final states [batch, H, D_head, N] when return_final_states. The
    backward (ssd_bwd) runs every option on the CPU and on CUDA. seq_idx is not
    differentiated."""
    y, fin = torch.ops.baracuda.ssd_fwd(x, dt, A, B, C, int(chunk_size), D, z, dt_bias, initial_states, seq_idx,
                                        bool(dt_softplus), float(dt_limit[0]), float(dt_limit[1]),
                                        bool(return_final_states))
    return (y, fin) if return_final_states else y


@torch.library.custom_op("baracuda::ssd_step", mutates_args=("state",))
def _ssd_step(state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
              z: Optional[Tensor], dt_bias: Optional[Tensor], state_indices: Optional[Tensor], dt_softplus: bool,
              dt_min: float, dt_max: float) -> Tensor:
    x, dt, A, B, C, D, z, dt_bias, idx = (_dense(t) for t in (x, dt, A, B, C, D, z, dt_bias, state_indices))
    # CUDA skips (and counts) a request whose index is outside the pool: its y stays zero
    y = x.new_zeros(x.shape) if idx is not None and x.is_cuda else x.new_empty(x.shape)
    plan = _bk.ssd_step.plan(device=_device(x), batch=x.shape[0], pool=state.shape[0], heads=x.shape[1],
                             head_dim=x.shape[2], state_dim=state.shape[3], dtype=x.dtype, ngroups=B.shape[1],
                             skip=0 if D is None else (1 if D.dim() == 1 else 2), has_z=z is not None,
                             has_dt_bias=dt_bias is not None, dt_softplus=dt_softplus,
                             has_dt_limit=not (dt_min == 0.0 and dt_max == math.inf), dt_min=dt_min, dt_max=dt_max,
                             has_state_indices=idx is not None)
    plan.run(state=state, x=x, dt=dt, a=A, b=B, c=C, y=y, skip=D, z=z, dt_bias=dt_bias, state_indices=idx)
    return y


@_ssd_step.register_fake
def _ssd_step_fake(state, x, dt, A, B, C, D, z, dt_bias, state_indices, dt_softplus, dt_min, dt_max):
    return x.new_empty(x.shape)


def ssd_step(state, x, dt, A, B, C, *, D=None, z=None, dt_bias=None, dt_softplus=False, dt_limit=(0.0, math.inf),
             state_indices=None):
    """One generation step of a Mamba-2 layer (baracuda ssd_step, mamba_ssm's
    selective_state_update with a scalar A per head), updating `state` in place:
      h <- exp(dt' A) h + dt' x B^T,  y = (C . h + D x) * silu(z),
      dt' = clamp(softplus(dt + dt_bias)) (softplus when dt_softplus, clamp unless (0, inf)).
    state [pool, H, D_head, N] (its innermost stride must be 1: it is written in place);
    x [batch, H, D_head], dt [batch, H], A [H], B and C [batch, G, N] (G divides H), D [H] or
    [H, D_head], z like x, dt_bias [H]; request r updates state[state_indices[r]] (int32
    [batch]; without it state[r], pool >= batch). One float dtype (f32, f16, bf16; f64 on
    the CPU). Returns y [batch, H, D_head]. An index outside the pool raises OutOfRange on
    the CPU (nothing written); on CUDA that request is skipped (its state untouched, its y
    zero).
    Not differentiable."""
    if state.stride(-1) != 1:
        raise ValueError("ssd_step: state is updated in place, its innermost stride must be 1")
    return torch.ops.baracuda.ssd_step(state, x, dt, A, B, C, D, z, dt_bias, state_indices, bool(dt_softplus),
                                       float(dt_limit[0]), float(dt_limit[1]))


# ---------------------------------------------------------------------- paged --
def _pool_desc(k_pages):
    return dict(num_pages=k_pages.shape[0], kv_heads=k_pages.shape[1], page_size=k_pages.shape[2],
                head_dim=k_pages.shape[3], dtype=k_pages.dtype)


def _table(kv_indices, kv_indptr, last_page_len):
    return dict(kv_indices=kv_indices, kv_indptr=kv_indptr, last_page_len=last_page_len)


@torch.library.custom_op("baracuda::paged_decode", mutates_args=())
def _paged_decode(q: Tensor, k_pages: Tensor, v_pages: Tensor, kv_indices: Tensor, kv_indptr: Tensor,
                  last_page_len: Tensor, scale: float, kv_splits: int) -> Tuple[Tensor, Tensor]:
    q = _dense(q)
    o, lse = _paged_decode_fake(q, k_pages, v_pages, kv_indices, kv_indptr, last_page_len, scale, kv_splits)
    rows = q.shape[1] if q.dim() == 4 else 1  # q [batch, R, Hq, D]: R query rows per request
    plan = _bk.paged_decode.plan(device=_device(q), batch=q.shape[0], q_heads=q.shape[-2], scale=scale,
                                 kv_splits=kv_splits, q_rows_per_request=rows, **_pool_desc(k_pages))
    plan.run(q=q, k_pages=k_pages, v_pages=v_pages, o=o, lse=lse, **_table(kv_indices, kv_indptr, last_page_len))
    return o, lse


@_paged_decode.register_fake
def _paged_decode_fake(q, k_pages, v_pages, kv_indices, kv_indptr, last_page_len, scale, kv_splits):
    return q.new_empty(q.shape), q.new_empty(q.shape[:-1], dtype=torch.float32)


@torch.library.custom_op("baracuda::paged_prefill", mutates_args=())
def _paged_prefill(q: Tensor, q_indptr: Tensor, k_pages: Tensor, v_pages: Tensor, kv_indices: Tensor,
                   kv_indptr: Tensor, last_page_len: Tensor, scale: float, causal: bool) -> Tuple[Tensor, Tensor]:
    q = _dense(q)
    o, lse = _paged_decode_fake(q, k_pages, v_pages, kv_indices, kv_indptr, last_page_len, scale, 0)
    plan = _bk.paged_prefill.plan(device=_device(q), batch=q_indptr.shape[0] - 1, total_rows=q.shape[0],
                                  q_heads=q.shape[1], scale=scale, causal=causal, **_pool_desc(k_pages))
    plan.run(q=q, q_indptr=q_indptr, k_pages=k_pages, v_pages=v_pages, o=o, lse=lse,
             **_table(kv_indices, kv_indptr, last_page_len))
    return o, lse


@_paged_prefill.register_fake
def _(q, q_indptr, k_pages, v_pages, kv_indices, kv_indptr, last_page_len, scale, causal):
    return q.new_empty(q.shape), q.new_empty(q.shape[:2], dtype=torch.float32)


@torch.library.custom_op("baracuda::paged_kv_append", mutates_args=("k_pages", "v_pages"))
def _paged_kv_append(k_new: Tensor, v_new: Tensor, append_indptr: Tensor, k_pages: Tensor, v_pages: Tensor,
                     kv_indices: Tensor, kv_indptr: Tensor, last_page_len: Tensor) -> None:
    k_new, v_new = _dense(k_new), _dense(v_new)
    plan = _bk.paged_kv_append.plan(device=_device(k_new), batch=append_indptr.shape[0] - 1, nnz=k_new.shape[0],
                                    **_pool_desc(k_pages))
    plan.run(k_new=k_new, v_new=v_new, append_indptr=append_indptr, k_pages=k_pages, v_pages=v_pages,
             **_table(kv_indices, kv_indptr, last_page_len))


@_paged_kv_append.register_fake
def _(k_new, v_new, append_indptr, k_pages, v_pages, kv_indices, kv_indptr, last_page_len):
    return None


def paged_kv_append(k_new, v_new, append_indptr, kv_cache, kv_indices, kv_indptr, last_page_len):
    """Writes ragged new rows k_new / v_new [nnz, Hkv, D] (request b's are rows
    append_indptr[b] .. append_indptr[b+1]) into the tail of each request's pages of
    kv_cache = (k_pages, v_pages), each [num_pages, Hkv, page_size, D] contiguous, in
    place. The page table (i32 kv_indices, kv_indptr, last_page_len) describes the cache
    AFTER the append, as in FlashInfer."""
    k_pages, v_pages = kv_cache
    torch.ops.baracuda.paged_kv_append(k_new, v_new, append_indptr, k_pages, v_pages, kv_indices, kv_indptr,
                                       last_page_len)


class _PagedWrapper:
    """What the decode and prefill wrappers share: the page table kept by plan()."""

    _op = None

    def _plan_table(self, kv_indptr, kv_indices, last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size,
                    dtype, scale, device):
        """Stores the page table (i32, on `device`, default kv_indptr's) and checks the
        problem once with select (raises Unsupported / InvalidProblem now, not per layer)."""
        device = torch.device(device if device is not None else getattr(kv_indptr, "device", "cpu"))
        as_i32 = lambda t: torch.as_tensor(t, dtype=torch.int32).to(device).contiguous()  # noqa: E731
        self.kv_indptr, self.kv_indices, self.last_page_len = (as_i32(t) for t in (kv_indptr, kv_indices,
                                                                                     last_page_len))
        self.scale = float(scale) if scale is not None else 1.0 / math.sqrt(head_dim)
        self.batch = self.kv_indptr.shape[0] - 1
        probe = dict(scale=self.scale, q_heads=num_qo_heads, num_pages=1, kv_heads=num_kv_heads,
                     page_size=page_size, head_dim=head_dim, dtype=dtype)
        return device, probe


class BatchPagedDecode(_PagedWrapper):
    """Decode attention over a paged KV cache, FlashInfer's plan-then-run style: plan()
    once per batch composition (page table, heads, head dim), run(q, kv_cache) per layer.
    The cache is (k_pages, v_pages), each [num_pages, Hkv, page_size, D] (HND),
    contiguous; q is [batch, Hq, D] (one row per request) or [batch, R, Hq, D] (R <= 8
    query rows per request, causal among themselves: the R newest tokens of each request,
    already appended to the cache, as in speculative decoding). kv_splits is the GPU's
    split-KV hint (0 = let baracuda choose)."""

    def __init__(self, kv_splits=0):
        self.kv_splits = int(kv_splits)

    def plan(self, kv_indptr, kv_indices, last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size,
             dtype=torch.float16, scale=None, device=None):
        """Keeps the page table: kv_indptr [batch + 1], kv_indices, last_page_len [batch]
        (int tensors or lists; moved to `device` as i32). dtype is the cache's; scale
        defaults to 1/sqrt(head_dim). Raises baracuda.Error for a problem baracuda cannot
        run."""
        device, probe = self._plan_table(kv_indptr, kv_indices, last_page_len, num_qo_heads, num_kv_heads,
                                         head_dim, page_size, dtype, scale, device)
        _bk.paged_decode.plan(device=str(device), batch=self.batch, kv_splits=self.kv_splits, **probe)

    def run(self, q, kv_cache, return_lse=False):
        """o shaped as q ([batch, Hq, D] or [batch, R, Hq, D]) over kv_cache = (k_pages,
        v_pages); with return_lse also lse of q's shape without D (f32). Row r of R sees
        the request's keys [0, kv_len - R + 1 + r); a row that sees none gets o = 0,
        lse = -inf."""
        k_pages, v_pages = kv_cache
        o, lse = torch.ops.baracuda.paged_decode(q, k_pages, v_pages, self.kv_indices, self.kv_indptr,
                                                 self.last_page_len, self.scale, self.kv_splits)
        return (o, lse) if return_lse else o


class BatchPagedPrefill(_PagedWrapper):
    """Prefill attention over a paged KV cache (ragged query rows per request), plan
    once per batch composition, run(q, kv_cache) per layer. q is [total_rows, Hq, D],
    request b's rows q_indptr[b] .. q_indptr[b+1]; f16 or bf16; causal is bottom-right
    aligned."""

    def plan(self, q_indptr, kv_indptr, kv_indices, last_page_len, num_qo_heads, num_kv_heads, head_dim,
             page_size, dtype=torch.float16, causal=False, scale=None, device=None):
        """As BatchPagedDecode.plan, plus q_indptr [batch + 1] and causal."""
        device, probe = self._plan_table(kv_indptr, kv_indices, last_page_len, num_qo_heads, num_kv_heads,
                                         head_dim, page_size, dtype, scale, device)
        self.q_indptr = torch.as_tensor(q_indptr, dtype=torch.int32).to(device).contiguous()
        self.causal = bool(causal)
        _bk.paged_prefill.plan(device=str(device), batch=self.batch, total_rows=0, causal=self.causal, **probe)

    def run(self, q, kv_cache, return_lse=False):
        """o [total_rows, Hq, D] (and lse [total_rows, Hq], f32, with return_lse)."""
        k_pages, v_pages = kv_cache
        o, lse = torch.ops.baracuda.paged_prefill(q, self.q_indptr, k_pages, v_pages, self.kv_indices,
                                                  self.kv_indptr, self.last_page_len, self.scale, self.causal)
        return (o, lse) if return_lse else o


from baracuda.ring import ring_attention  # noqa: E402  (context-parallel attention over these ops)
