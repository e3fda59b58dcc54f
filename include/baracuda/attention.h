/*
 * attention.h - scaled dot-product attention (flash attention): the forward and its
 * backward. Included by baracuda.h.
 *
 * Forward, for batch b, query head h, query row i, key j (kv head hk = h / (q_heads /
 * kv_heads), GQA), with off = kv_len - q_len (bottom-right alignment):
 *
 *   s_ij = scale * <q[b,h,i,:], k[b,hk,j,:]>
 *   s_ij = softcap * tanh(s_ij / softcap)            if softcap > 0
 *   s_ij += slope[h] * (j - (i + off))               if alibi
 *   key j is visible to row i when
 *       j <= i + off                                 if causal
 *       j >= i + off - window_left                   if window_left >= 0
 *   y[b,h,i,:] = sum_j softmax_j(s_i.) v[b,hk,j,:]   over the visible keys
 *   lse[b,h,i] = log sum_j exp(s_ij)                 natural log, f32 whatever the dtype
 *
 * A row that sees no key (e.g. causal with q_len > kv_len, rows i < q_len - kv_len)
 * gets y = 0 and lse = -inf. For q_len == kv_len, causal is PyTorch's is_causal.
 *
 * Backward, from q, k, v, y, lse and dy = dL/dy:
 *   p_ij  = exp(s_ij - lse_i)   (the forward's softmax, 0 off the visible keys; the CPU
 *                               kernel divides by the row sum of these, so the f32 lse
 *                               costs no accuracy even for f64; the CUDA kernels use
 *                               plain exp(s - lse) for f32/f16/bf16, whose f32 lse
 *                               rounding (~1e-7 relative) is below those tolerances,
 *                               and for f64 first refine lse in f64 by the row sum)
 *   dv_j  = sum_{h in group, i} p_ij dy_i
 *   ds_ij = p_ij (<dy_i, v_j> - <dy_i, y_i>)
 *   dz_ij = ds_ij * scale * (1 - tanh^2(scale <q_i, k_j> / softcap))   (no tanh factor
 *           when softcap = 0);  dq_i = sum_j dz_ij k_j,  dk_j = sum_{h in group, i} dz_ij q_i
 * dk and dv of one kv head sum the contributions of every query head of its GQA group.
 * ALiBi slopes are not differentiated (they are constants of the model).
 *
 * Dtypes: f32, f64, f16, bf16 for q, k, v, y, dy, dq, dk, dv (all one dtype); lse and
 * the ALiBi slopes are always f32. Head dims 1..BK_SDPA_MAX_HEAD_DIM; head_dim_qk may
 * differ from head_dim_v. Every tensor has arbitrary non-negative outer strides and an
 * innermost (head-dim) stride of 1, except lse and the slopes, whose strides are
 * arbitrary. k and v (inputs) may broadcast with stride 0 on their head axis.
 * Outputs must not overlap each other or any input (not checked).
 *
 * The CPU kernels compute in f64 and are deterministic (bit-identical whatever the
 * thread count).
 *
 * CUDA (forward; sm_80 and newer, asynchronous on the caller's stream, no workspace):
 * select tries two kernels in order.
 *   - Tensor cores (SKU .../sm80/bespoke, precision BK_MATH_F16_BF16_TENSOR, f32
 *     accumulate): f16/bf16 with head_dim_qk == head_dim_v in {64, 128, 256}, every
 *     option (causal, window, softcap, ALiBi, GQA, stride-0 kv heads, padded views, lse).
 *     Scores and the softmax are f32; the probabilities are rounded to the input dtype
 *     before P V (as flash-attn), so errors are up to about 2x those of an exact result
 *     rounded to the dtype. Views whose data pointers or outer strides are not 16-byte
 *     aligned run the same kernel with slower loads.
 *   - CUDA cores (precision BK_MATH_F32): every other case, and the only path for f32
 *     and f64 (f32 arithmetic, f64 for f64).
 *   Both are deterministic and bit-stable (no atomics, a fixed order per output).
 */
#ifndef BARACUDA_ATTENTION_H
#define BARACUDA_ATTENTION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Largest head_dim_qk / head_dim_v any sdpa kernel accepts (the GPU kernels' limit). */
#define BK_SDPA_MAX_HEAD_DIM 256

/* ------------------------------------------------------------ forward -- */

/* The problem. Checked by select:
 *   batch, q_len, kv_len >= 0; q_heads, kv_heads, head_dim_qk, head_dim_v >= 1,
 *   q_heads % kv_heads == 0, window_left >= -1, scale finite, softcap finite and >= 0
 *   (INVALID_PROBLEM); head dims <= BK_SDPA_MAX_HEAD_DIM and dtype in {f32, f64, f16,
 *   bf16} (UNSUPPORTED). */
typedef struct bk_sdpa_fwd_desc {
    int32_t batch;       /* B, >= 0 */
    int32_t q_heads;     /* Hq, query heads, >= 1 */
    int32_t kv_heads;    /* Hkv, key/value heads, >= 1, divides q_heads; query head h reads
                            kv head h / (q_heads / kv_heads) (GQA; 1 = MQA) */
    int32_t q_len;       /* Sq, query rows, >= 0 */
    int32_t kv_len;      /* Sk, keys, >= 0 */
    int32_t head_dim_qk; /* Dqk, head dim of q and k, 1..BK_SDPA_MAX_HEAD_DIM */
    int32_t head_dim_v;  /* Dv, head dim of v and y, 1..BK_SDPA_MAX_HEAD_DIM */
    double scale;        /* score scale, finite; typically 1 / sqrt(head_dim_qk) */
    bool causal;         /* bottom-right causal mask: row i sees keys j <= i + kv_len - q_len */
    int32_t window_left; /* sliding window: -1 = off; else row i also needs
                            j >= i + kv_len - q_len - window_left (>= -1) */
    double softcap;      /* 0 = off; else s = softcap * tanh(s / softcap), applied after the
                            scale and before the ALiBi bias; finite, >= 0 */
    bool alibi;          /* add slope[h] * (j - (i + kv_len - q_len)) after the softcap; the
                            slopes come in the args (alibi_slopes) */
    bk_dtype dtype;      /* element type of q, k, v, y (and dy, dq, dk, dv): f32, f64, f16, bf16 */
} bk_sdpa_fwd_desc;

/* The tensors of one forward call. */
typedef struct bk_sdpa_fwd_args {
    bk_tensor q;   /* [batch, q_heads, q_len, head_dim_qk], read; inner stride 1 */
    bk_tensor k;   /* [batch, kv_heads, kv_len, head_dim_qk], read; inner stride 1, stride 0
                      allowed on the head axis (broadcast) */
    bk_tensor v;   /* [batch, kv_heads, kv_len, head_dim_v], read; as k */
    bk_tensor y;   /* [batch, q_heads, q_len, head_dim_v], written; inner stride 1 */
    const bk_tensor *lse;          /* f32 [batch, q_heads, q_len], written (natural log,
                                      -inf for a row with no visible key); NULL to skip */
    const bk_tensor *alibi_slopes; /* f32 [q_heads], read; required iff desc.alibi, else
                                      must be NULL (INVALID_PROBLEM) */
} bk_sdpa_fwd_args;

/* A selected forward kernel (a plain value: copy it, never destroy it). */
typedef struct bk_sdpa_fwd_plan {
    bk_sdpa_fwd_desc desc; /* the problem, as given to select */
    bk_plan_info info;     /* target, SKU, precision and kernel chosen by select */
} bk_sdpa_fwd_plan;

/* Validates `desc` (see bk_sdpa_fwd_desc) and picks a kernel for `target`.
 * Errors: INVALID_PROBLEM (NULL pointer, bad extent, q_heads not a multiple of
 * kv_heads, window_left < -1, non-finite scale, bad softcap, bad target/preference),
 * UNSUPPORTED (dtype, head dim above BK_SDPA_MAX_HEAD_DIM, or no kernel on this
 * target: CUDA devices below compute capability 8.0). Writes *plan only on success. */
bk_status bk_sdpa_fwd_select(const bk_sdpa_fwd_desc *desc, bk_target target, bk_preference preference,
                             bk_sdpa_fwd_plan *plan);
/* Checks the tensors against the plan: dtype, rank, shape, strides (>= 0; outputs
 * non-overlapping and never broadcast; inner stride 1 where required), capacity, and
 * the alibi_slopes pointer against desc.alibi.
 * Errors: INVALID_PROBLEM (NULL, dtype/shape mismatch, an element count, byte size or
 * reach beyond int64 (extents whose product overflows), negative stride, output
 * broadcast or self-overlap, slopes present/absent against desc.alibi), UNSUPPORTED
 * (inner stride not 1, broadcast on an input axis other than the kv-head axis),
 * BUFFER_TOO_SMALL (a view reaches beyond its capacity). */
bk_status bk_sdpa_fwd_can_implement(const bk_sdpa_fwd_plan *plan, const bk_sdpa_fwd_args *args);
/* Always 0: the forward needs no scratch. */
size_t bk_sdpa_fwd_workspace_size(const bk_sdpa_fwd_plan *plan);
/* Computes y (and lse when requested). Runs can_implement first; on any failure
 * nothing is written. `stream` is ignored on the CPU; on CUDA the work is queued on it
 * (every tensor in device memory) and DEVICE_ERROR reports a failed launch. */
bk_status bk_sdpa_fwd_run(const bk_sdpa_fwd_plan *plan, void *stream, bk_workspace workspace,
                          const bk_sdpa_fwd_args *args);

/* ----------------------------------------------------------- backward -- */

/* The same problem as the forward whose gradients are wanted (same checks). */
typedef bk_sdpa_fwd_desc bk_sdpa_bwd_desc;

/* The tensors of one backward call. dq, dk and dv are written, not accumulated. */
typedef struct bk_sdpa_bwd_args {
    bk_tensor q;                   /* [batch, q_heads, q_len, head_dim_qk], read, as forward */
    bk_tensor k;                   /* [batch, kv_heads, kv_len, head_dim_qk], read, as forward
                                      (stride 0 allowed on the head axis) */
    bk_tensor v;                   /* [batch, kv_heads, kv_len, head_dim_v], read, as k */
    bk_tensor y;                   /* [batch, q_heads, q_len, head_dim_v], read: the forward's
                                      output; inner stride 1 */
    bk_tensor dy;                  /* like y, read: dL/dy */
    bk_tensor lse;                 /* f32 [batch, q_heads, q_len], read: the forward's lse
                                      (required); a row with lse = -inf contributes nothing */
    const bk_tensor *alibi_slopes; /* f32 [q_heads], read; required iff desc.alibi, else NULL */
    bk_tensor dq;                  /* like q, written: dL/dq; inner stride 1 */
    bk_tensor dk;                  /* [batch, kv_heads, kv_len, head_dim_qk], written: dL/dk
                                      summed over the q heads of each GQA group; inner
                                      stride 1, no broadcast */
    bk_tensor dv;                  /* [batch, kv_heads, kv_len, head_dim_v], written: dL/dv,
                                      as dk */
} bk_sdpa_bwd_args;

/* A selected backward kernel (a plain value). */
typedef struct bk_sdpa_bwd_plan {
    bk_sdpa_bwd_desc desc; /* the problem, as given to select */
    bk_plan_info info;     /* target, SKU, precision and kernel chosen by select */
} bk_sdpa_bwd_plan;

/* As bk_sdpa_fwd_select.
 * CUDA (compute capability >= 8.0), first match:
 *   - on compute capability 9.0 only, the Hopper kernel (FASTEST), SKU ".../sm90/bespoke",
 *     NOT deterministic: f16/bf16 with head_dim_qk == head_dim_v in {64, 128, 256}, no
 *     softcap, ALiBi or sliding window; warpgroup MMA (wgmma) and TMA copies, otherwise the
 *     fused kernel's math and workspace, dq added by TMA reduce-adds of f32 tiles. Where it
 *     cannot run (rows not 16-byte aligned, a binary without sm_90a code, q_len or kv_len 0
 *     or >= 2^30) run falls back to the fused kernel below under the same rules.
 *   - on compute capability 9.0 only, the Hopper kernel's deterministic mode (what
 *     BK_PREFER_DETERMINISTIC selects for its problems), SKU ".../sm90/bespoke",
 *     precision.deterministic = bit_stable = true: dq added in a fixed order (per query
 *     tile the key tiles in decreasing order as in the fused deterministic mode below,
 *     or, without the causal mask and with at most half as many key tiles (of 128 keys,
 *     64 at head_dim 256) as the device has multiprocessors, in the order a rotated walk
 *     reaches the tile; same workspace); where it cannot run, run falls back to that mode
 *     (still deterministic). The rotated order needs the kernel's CTAs of one (batch, kv
 *     head) resident at once (one per multiprocessor): it can stall, until the SMs free
 *     up, while other kernels hold more than half of them, and hang if the context is
 *     limited to fewer than half of the device's multiprocessors (an MPS client or a green
 *     context) or if such kernels never finish while it waits. The order, and so the
 *     bits, can differ between devices with different multiprocessor counts.
 *   - fused tensor cores (FASTEST), SKU ".../sm80/bespoke", NOT deterministic: f16/bf16
 *     with head_dim_qk == head_dim_v in {64, 128, 256}; one pass per tile of keys computes dk,
 *     dv and dq (FlashAttention-2's backward), dq summed over key tiles with f32 atomics
 *     in the workspace, so reruns may differ in the last bits of dq (precision.
 *     deterministic = bit_stable = false). mma.sync with f32 accumulation, P and dS
 *     rounded to the element type before the products (as FlashAttention).
 *   - the same fused pass, deterministic (what BK_PREFER_DETERMINISTIC selects for those
 *     problems, but the Hopper one's on compute capability 9.0), SKU ".../sm80/bespoke", precision.deterministic = bit_stable = true: the
 *     key tiles add their parts of dq to a tile of rows one at a time, in a fixed order
 *     (a semaphore per tile of rows in the workspace), so every dq element is summed in
 *     the same order on every run; dk and dv are summed in registers in a fixed order.
 *     Same arithmetic otherwise; the waits cost some speed.
 *   - two-pass tensor cores, SKU ".../sm80/bespoke", deterministic: f16/bf16 with
 *     head_dim_qk == head_dim_v in {64, 128}; dk/dv in one pass per tile of keys, dq in a
 *     second pass per tile of rows (no atomics), recomputing P. No preference selects it
 *     (the fused plans cover its problems); it is their fallback, below.
 *   - CUDA cores, SKU ".../sm80/reference", deterministic: every dtype and option; f32
 *     math (f64 for f64). BK_PREFER_REFERENCE picks it for f16/bf16 too.
 * Views whose rows do not start on 16-byte boundaries (q, k, v, dy, dq, dk, dv: base or
 * an outer stride not a multiple of 8 elements) run a tensor-core plan on the CUDA-core
 * kernel instead; a fused plan (either) whose workspace is not 16-byte aligned, whose
 * q_len or kv_len reaches 2^30, or on a device with less than 201 KB (D 256) / 145 KB
 * (D 128) / 130 KB (D 64) of shared memory per block (sm_86, sm_89) runs the two-pass
 * tensor-core kernel (the CUDA-core one at D 256): deterministic, so the guarantee only
 * gets stronger. Every kernel supports every option (causal,
 * window, softcap, ALiBi, GQA). On the CPU every kernel is deterministic. On CUDA q_heads
 * must be <= 65535 (run answers UNSUPPORTED, writing nothing). */
bk_status bk_sdpa_bwd_select(const bk_sdpa_bwd_desc *desc, bk_target target, bk_preference preference,
                             bk_sdpa_bwd_plan *plan);
/* As bk_sdpa_fwd_can_implement, for q, k, v, y, dy, lse, the slopes and the outputs
 * dq, dk, dv (which may not broadcast). Same errors. */
bk_status bk_sdpa_bwd_can_implement(const bk_sdpa_bwd_plan *plan, const bk_sdpa_bwd_args *args);
/* Bytes of workspace run() needs. The CPU kernel accumulates dk and dv in f64 there:
 * batch * kv_heads * kv_len * (head_dim_qk + head_dim_v) * 8 bytes (plus alignment).
 * The CUDA kernels keep two per-row arrays, D_i = <dy_i, y_i> and lse, in the compute
 * type: 2 * batch * q_heads * q_len * (8 for f64, else 4) bytes, the fused kernels an
 * f32 dq accumulator of batch * q_heads * q_len * head_dim_qk * 4 bytes more, and the
 * deterministic modes (fused and Hopper) 4 * batch * (kv_heads + q_heads * ceil(q_len / R))
 * bytes more, R = 128 at head dim 64, else 64 (a counter per kv head, a semaphore per tile of R
 * rows), plus alignment; the workspace must then be device memory. 0 when that is empty.
 * SIZE_MAX if the count does not fit in size_t. 0 for a NULL plan. */
size_t bk_sdpa_bwd_workspace_size(const bk_sdpa_bwd_plan *plan);
/* Computes dq, dk, dv. Runs can_implement first, then checks the workspace
 * (INVALID_PROBLEM for a NULL buffer when bytes are needed, WORKSPACE_TOO_SMALL below
 * bk_sdpa_bwd_workspace_size); on any failure nothing is written. The workspace's
 * contents are scratch (overwritten). `stream` is ignored on the CPU. On CUDA every
 * tensor and the workspace are device memory; run enqueues its kernels on `stream`
 * and returns (no allocation, no synchronisation; graph-capturable); a launch failure
 * is DEVICE_ERROR. */
bk_status bk_sdpa_bwd_run(const bk_sdpa_bwd_plan *plan, void *stream, bk_workspace workspace,
                          const bk_sdpa_bwd_args *args);

#ifdef __cplusplus
}
#endif

#endif /* BARACUDA_ATTENTION_H */
