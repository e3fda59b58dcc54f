/*
 * ssd.h - Mamba-2 state-space duality (SSD): the chunk scan forward and backward
 * (ssd_fwd, ssd_bwd) and the one-token step on a pool of states (ssd_step).
 * Included by baracuda.h.
 *
 * For every batch b and head h, with a scalar A per head, head h reading B and C of its
 * group g = h / (heads / ngroups), and a [head_dim, state_dim] state h_t:
 *
 *   dt'_t       = clamp(softplus(dt_t + dt_bias_h))       (each part optional, see below)
 *   h_t[d, n]   = exp(dt'_t * A_h) * h_{t-1}[d, n] + dt'_t * x_t[d] * B_t[g, n]
 *   u_t[d]      = sum_n C_t[g, n] * h_t[d, n] + skip_h[d] * x_t[d]     (mamba's D)
 *   y_t[d]      = u_t[d] * silu(z_t[d])     with z, else u_t[d]        (silu(z) = z sigmoid(z))
 *
 * (dt_t, x_t, B_t, C_t, z_t, y_t read at [b, t, ...].) The state before the first step,
 * h_{-1}, is zero or the initial state of row b; with seq_idx the state is reset (h_{t-1}
 * taken as zero) at every position t > 0 where seq_idx[b, t] != seq_idx[b, t - 1]. The
 * backward returns the gradients of a loss L through y (and the final states): dx, ddt,
 * dB, dC, and the sums dA[h] = sum_{b,t} dL/dA, and of the options' inputs.
 *
 * The options follow mamba_ssm's mamba_chunk_scan_combined (ssd_fwd / ssd_bwd) and
 * selective_state_update (ssd_step); a zero-initialised option is off, so a descriptor
 * that sets only the extents and dtype is the plain problem above with ngroups = heads:
 *   ngroups       B and C are [.., ngroups, state_dim], shared by heads / ngroups
 *                 consecutive heads (0 means heads: one B/C row per head);
 *   skip          mamba's D: none, one value per head ([heads]) or per channel
 *                 ([heads, head_dim]), added as skip * x before the gate;
 *   has_z         the gate y = u * silu(z), after the skip;
 *   has_dt_bias   dt + dt_bias[h] before the softplus;
 *   dt_softplus   dt' = softplus(dt) (log1p(exp(dt)), and dt itself above 20 as mamba);
 *   has_dt_limit  dt' clamped to [dt_min, dt_max] after the softplus (mamba's dt_limit
 *                 when it is not (0, inf)); the gradient is 0 where the clamp bites;
 *   has_initial_states / has_final_states, has_seq_idx, n_varlen_seqs: ssd_fwd/ssd_bwd only.
 *
 * Packed sequences (seq_idx, i32 [batch, seq_len]). The state is reset at every change
 * of seq_idx along a row (any values; mamba's are 0, 1, 2, ... in order). The initial
 * state of row b feeds the first sequence of the row only (the positions before the
 * first change). mamba_ssm feeds it to the positions whose seq_idx is 0; the two agree
 * for every seq_idx whose row starts at 0, which is how mamba builds it. The final state
 * of row b is the state after its last position (of its last sequence).
 * Varlen states (cu_seqlens, i32 [n_varlen_seqs + 1], batch 1): sequence i holds
 * positions cu_seqlens[i] .. cu_seqlens[i+1] - 1 and varlen_states[i] is the scan's
 * state after its last position (zero for an empty sequence). The resets come from
 * seq_idx only: pass a seq_idx that changes at every cu_seqlens boundary (as mamba_ssm
 * requires) so that each state covers its own sequence. cu_seqlens must start at 0, never
 * decrease and end at seq_len (read on the host: run returns INVALID_PROBLEM otherwise,
 * nothing written). The backward does not take gradients through varlen states.
 *
 * The chunked (SSD) form: the sequence is cut into chunks of chunk_size steps. Inside a
 * chunk the output is an attention-like sum,
 *   y_t = exp(cum_t) h_in C_t + sum_{s <= t in chunk} (C_t . B_s) exp(cum_t - cum_s) dt_s x_s,
 * with cum_t the running sum of dt_u * A over the chunk up to t and h_in the state carried in
 * from the previous chunk; states pass from chunk to chunk (a term is dropped when a seq_idx
 * change lies between its two positions). The result does not depend on chunk_size beyond
 * rounding; chunk_size picks the work split (and the workspace).
 *
 * Dtypes: f32, f16, bf16, and f64 on the CPU backend. Every float tensor has the element
 * type of desc.dtype (A, dA, skip, dt_bias and the states included); seq_idx, cu_seqlens
 * and state_indices are i32, dropped_requests i64. Tensors are strided views: outer strides
 * are arbitrary (>= 0, no broadcast), the innermost stride must be 1 (UNSUPPORTED
 * otherwise); an output's positions must not overlap (INVALID_PROBLEM otherwise). Outputs
 * must not share memory with the inputs or with each other (not checked). An option's
 * tensor pointer must be non-NULL exactly when the descriptor turns the option on
 * (INVALID_PROBLEM otherwise, naming the tensor and the field).
 *
 * CPU: f64 arithmetic for every dtype, every option, deterministic and bit-stable.
 *
 * CUDA (compute capability 8.0 and above; f32, f16, bf16 - f64 is CPU-only): asynchronous
 * on the caller's stream, no allocation, no host synchronisation, graph-capturable; scratch
 * comes from the workspace (the f16/bf16 forward with D <= 64, N <= 128, both multiples of
 * 8, 16-byte aligned rows, no varlen states and batch * heads >= 64 runs one block per
 * (b, h) that keeps the state in registers and touches no workspace; the size stays the
 * same, since a plan does not know the views). The kernels use their own chunks of 64 steps whatever
 * chunk_size says (the result does not depend on it). Both directions run their chunk
 * products on tensor cores for f16/bf16 (plan precision BK_MATH_F16_BF16_TENSOR: 16-bit
 * operands, f32 accumulate; rounded to the dtype are the inputs, the decay-weighted B and
 * C, the f32 states and the masked scores, and in the backward also dL/du (dy silu(z);
 * a sum of two 16-bit parts, about 16 bits, in the chunk products), the f32 state
 * gradients and the masked dy.x scores; where D and N are multiples of 8 and the views
 * 16-byte aligned, the backward keeps the states and state gradients in the dtype between
 * its passes, so the f32 sum <dS, S> in dA also takes the rounded states: dA of a few
 * heads, a sum whose terms cancel, within about 4e-3 relative of f64 on the H100's f16
 * tests) and in f32 on CUDA cores for f32 (BK_MATH_F32, the default for f32 under every
 * preference but one). TF32 plan (opt-in:
 * select with BK_PREFER_ALLOW_TF32; f32 data only, plan precision {BK_MATH_TF32, f32
 * accumulate, deterministic, bit-stable}, the exact plan's workspace): the f16/bf16
 * tensor-core kernels run f32 with TF32 operands (mma.sync m16n8k8, operands rounded to
 * 10-bit mantissas by cvt.rna): rounded are the inputs x, B, C (and dy in the backward), the
 * decay-weighted B and C, the f32 states and the masked scores, and in the backward dL/du
 * (once), the state gradients and the masked dy.x scores (the forward with D <= 64 and
 * N <= 128 and 64+ (batch, head) pairs runs one fused kernel with the state in registers:
 * there the decay-weighted x is rounded instead of B); inputs and outputs stay f32
 * (relative errors about 1e-3, as mamba_ssm's f32, which Triton computes in TF32; dA and
 * ddt_bias, sums over the sequence whose terms cancel, up to about 1e-2 on short random
 * problems). Sums, decays and the dA / ddt terms stay in f32 (f64 where noted). All three
 * are deterministic (no atomics; dA, dskip and ddt_bias are reduced in a fixed order in
 * f64, the group sums of dB and dC head by head). Options on CUDA: the forward runs every
 * option (the skip and the gate in f32 before the one rounding of y; initial, final and
 * varlen states f32 in the scan, rounded once to the dtype). cu_seqlens is not read on the
 * host there: a sequence whose bounds are out of order or outside [0, seq_len] gets a zero
 * state instead of INVALID_PROBLEM. The backward runs every option of the CPU backward
 * (all but varlen states, which have no backward on any target): dz from the un-gated y
 * recomputed as the forward computes it, dskip, ddt_bias (through the softplus and the
 * clamp), dinitial_states and dfinal_states through the reverse state passing, seq_idx as
 * in the forward. ssd_step has a CUDA kernel with every option.
 *
 * Limits: head_dim and state_dim up to 256 in both directions (UNSUPPORTED beyond).
 */
#ifndef BARACUDA_SSD_H
#define BARACUDA_SSD_H

#ifdef __cplusplus
extern "C" {
#endif

/* Largest head_dim and state_dim any SSD kernel accepts. */
#define BK_SSD_MAX_DIM 256

/* The skip connection (mamba's D): which shape its tensor has. */
typedef enum bk_ssd_skip {
    BK_SSD_SKIP_NONE = 0,       /* no skip */
    BK_SSD_SKIP_PER_HEAD = 1,   /* skip [heads]: u += skip[h] * x */
    BK_SSD_SKIP_PER_CHANNEL = 2 /* skip [heads, head_dim]: u += skip[h, d] * x[d] */
} bk_ssd_skip;

/* The problem, shared by ssd_fwd and ssd_bwd. Zero-initialised options are off.
 *   batch, seq_len, heads     B, L, H; >= 0 (INVALID_PROBLEM otherwise). A zero extent
 *                             is a valid empty problem;
 *   head_dim, state_dim       D, N; >= 0 (INVALID_PROBLEM), <= BK_SSD_MAX_DIM (UNSUPPORTED);
 *   chunk_size                steps per chunk of the chunked algorithm; > 0
 *                             (INVALID_PROBLEM otherwise). Values above seq_len mean one
 *                             chunk. Typical: 64..256;
 *   dtype                     f32, f16, bf16, or f64 (CPU only); UNSUPPORTED otherwise;
 *   ngroups                   G, groups of heads sharing B and C: 0 means G = heads (B/C
 *                             per head); else >= 1 with heads % G == 0 (INVALID_PROBLEM);
 *   skip                      a bk_ssd_skip value (INVALID_PROBLEM otherwise);
 *   has_z, has_dt_bias, dt_softplus    the gate, the bias, the softplus (top of the file);
 *   has_dt_limit, dt_min, dt_max       the clamp; with has_dt_limit, neither bound NaN and
 *                             dt_min <= dt_max (INVALID_PROBLEM); infinite bounds allowed;
 *   has_initial_states        the scan starts from initial_states [B, H, D, N];
 *   has_final_states          ssd_fwd writes final_states [B, H, D, N]; ssd_bwd reads
 *                             dfinal_states, dL/d(final states);
 *   has_seq_idx               packed sequences, seq_idx i32 [B, L];
 *   n_varlen_seqs             S >= 0; > 0: ssd_fwd writes varlen_states [S, H, D, N] from
 *                             cu_seqlens i32 [S + 1]; needs batch == 1 (INVALID_PROBLEM
 *                             otherwise); ssd_bwd: UNSUPPORTED (no gradient through them). */
typedef struct bk_ssd_desc {
    int32_t batch;
    int32_t seq_len;
    int32_t heads;
    int32_t head_dim;
    int32_t state_dim;
    int32_t chunk_size;
    bk_dtype dtype;
    int32_t ngroups;
    bk_ssd_skip skip;
    bool has_z;
    bool has_dt_bias;
    bool dt_softplus;
    bool has_dt_limit;
    double dt_min;
    double dt_max;
    bool has_initial_states;
    bool has_final_states;
    bool has_seq_idx;
    int32_t n_varlen_seqs;
} bk_ssd_desc;

/* ------------------------------------------------------------ forward -- */

/* Tensors of the forward. G = ngroups (heads when 0); optional tensors are pointers,
 * non-NULL exactly when the descriptor turns their option on. */
typedef struct bk_ssd_fwd_args {
    bk_tensor x;  /* [batch, seq_len, heads, head_dim], read */
    bk_tensor dt; /* [batch, seq_len, heads], read: step sizes (typically > 0), before
                     dt_bias / softplus / clamp */
    bk_tensor a;  /* [heads], read: A per head (typically < 0, so decay is in (0, 1]) */
    bk_tensor b;  /* [batch, seq_len, G, state_dim], read: input projection B */
    bk_tensor c;  /* [batch, seq_len, G, state_dim], read: output projection C */
    bk_tensor y;  /* [batch, seq_len, heads, head_dim], written */
    const bk_tensor *skip;           /* [heads] or [heads, head_dim] (desc.skip), read */
    const bk_tensor *z;              /* [batch, seq_len, heads, head_dim] (has_z), read */
    const bk_tensor *dt_bias;        /* [heads] (has_dt_bias), read */
    const bk_tensor *initial_states; /* [batch, heads, head_dim, state_dim]
                                        (has_initial_states), read */
    const bk_tensor *seq_idx;        /* i32 [batch, seq_len] (has_seq_idx), read */
    const bk_tensor *cu_seqlens;     /* i32 [n_varlen_seqs + 1], contiguous (n_varlen_seqs
                                        > 0), read on the host by the CPU kernel */
    const bk_tensor *final_states;   /* [batch, heads, head_dim, state_dim]
                                        (has_final_states), written */
    const bk_tensor *varlen_states;  /* [n_varlen_seqs, heads, head_dim, state_dim]
                                        (n_varlen_seqs > 0), written */
} bk_ssd_fwd_args;

/* A forward plan: the descriptor and the chosen kernel. A plain value. */
typedef struct bk_ssd_fwd_plan {
    bk_ssd_desc desc;
    bk_plan_info info;
} bk_ssd_fwd_plan;

/* Validates `desc` and picks a kernel for `target`. The CPU kernel is the f64 reference:
 * deterministic and bit-stable whatever the thread count. On CUDA, f32 gets the exact f32
 * kernel unless `preference` is BK_PREFER_ALLOW_TF32, which selects the TF32 plan (top of
 * the file; plan->info.precision.math == BK_MATH_TF32); for f16/bf16 and on the CPU that
 * preference selects as BK_PREFER_FASTEST.
 * Errors: INVALID_PROBLEM (NULL desc or plan, negative extent, chunk_size < 1, ngroups < 0
 * or not dividing heads, skip not a bk_ssd_skip, a NaN dt limit or dt_min > dt_max,
 * n_varlen_seqs < 0 or > 0 with batch != 1, bad target or preference); UNSUPPORTED (dtype
 * not in {f32, f16, bf16, f64}, head_dim or state_dim above 256, or no kernel on this
 * target: f64 on CUDA, CUDA below compute capability 8.0). */
bk_status bk_ssd_fwd_select(const bk_ssd_desc *desc, bk_target target, bk_preference preference,
                            bk_ssd_fwd_plan *plan);

/* Checks the tensors against the plan: dtype, rank, shape, strides, capacity, in the order
 * x, dt, a, b, c, skip, z, dt_bias, initial_states, seq_idx, cu_seqlens, y, final_states,
 * varlen_states; an option's pointer NULL while the option is on, or non-NULL while it is
 * off, is INVALID_PROBLEM. No data is read. Errors: INVALID_PROBLEM (NULL plan/args, a plan of another op, NULL data,
 * an element count, byte size or reach beyond int64,
 * wrong dtype/rank/shape, negative stride, overlapping or broadcast output), UNSUPPORTED
 * (inner stride not 1, broadcast input), BUFFER_TOO_SMALL (capacity below what a view
 * reaches). */
bk_status bk_ssd_fwd_can_implement(const bk_ssd_fwd_plan *plan, const bk_ssd_fwd_args *args);

/* Bytes of workspace run needs (0 for a NULL plan or an empty problem). CPU kernel, with
 * Q = min(chunk_size, seq_len) and S = min(batch * heads, 64) work slots, f64 pieces each
 * starting on a 256-byte boundary:
 *   8 * S * (D*N)            one f64 state per slot
 * + 8 * S * Q * D            the chunk's x rows
 * + 8 * S * Q * N   (x 2)    the chunk's B and C rows
 * + 8 * S * Q       (x 3)    the chunk's dt, cumulative log-decay and sequence numbers
 * and 0 when batch, seq_len or heads is 0. CUDA kernels, with K = ceil(seq_len / 64) and
 * BH = batch * heads, f32 pieces each starting on a 256-byte boundary:
 *   4 * BH * K * D*N         the state entering every chunk
 * + 4 * BH * K               each chunk's total log-decay
 * and 0 when batch, seq_len or heads is 0 (268 MB at B 4, L 4096, H 32, D 64, N 128).
 * SIZE_MAX when the bytes do not fit in size_t (run then refuses). */
size_t bk_ssd_fwd_workspace_size(const bk_ssd_fwd_plan *plan);

/* Computes y (and final_states, varlen_states when asked). Runs can_implement first, then
 * checks the workspace (INVALID_PROBLEM for a NULL buffer when bytes are needed,
 * WORKSPACE_TOO_SMALL below workspace_size), then on the CPU reads cu_seqlens
 * (INVALID_PROBLEM unless cu_seqlens[0] = 0, non-decreasing, cu_seqlens[S] = seq_len);
 * on any failure nothing is written. `stream` is ignored on the CPU; on CUDA every tensor and the
 * workspace are device memory and the call returns before the work is done. */
bk_status bk_ssd_fwd_run(const bk_ssd_fwd_plan *plan, void *stream, bk_workspace workspace,
                         const bk_ssd_fwd_args *args);

/* ----------------------------------------------------------- backward -- */

/* Tensors of the backward. Every output is WRITTEN (not accumulated): no zero-filling is
 * needed, and dA, dskip, ddt_bias hold exactly their sums over batch and sequence. With
 * G < heads, db and dc hold the sums over the heads of each group. Optional tensors are
 * non-NULL exactly when the descriptor turns their option on. */
typedef struct bk_ssd_bwd_args {
    bk_tensor x;   /* [batch, seq_len, heads, head_dim], read (as in the forward) */
    bk_tensor dt;  /* [batch, seq_len, heads], read (raw, as in the forward) */
    bk_tensor a;   /* [heads], read */
    bk_tensor b;   /* [batch, seq_len, G, state_dim], read */
    bk_tensor c;   /* [batch, seq_len, G, state_dim], read */
    bk_tensor dy;  /* [batch, seq_len, heads, head_dim], read: dL/dy */
    bk_tensor dx;  /* [batch, seq_len, heads, head_dim], written: dL/dx */
    bk_tensor ddt; /* [batch, seq_len, heads], written: dL/ddt of the raw dt (through the
                      bias, softplus and clamp) */
    bk_tensor da;  /* [heads], written: dL/dA, summed over batch and sequence */
    bk_tensor db;  /* [batch, seq_len, G, state_dim], written: dL/dB */
    bk_tensor dc;  /* [batch, seq_len, G, state_dim], written: dL/dC */
    const bk_tensor *skip;            /* as in the forward, read */
    const bk_tensor *z;               /* as in the forward, read */
    const bk_tensor *dt_bias;         /* as in the forward, read */
    const bk_tensor *initial_states;  /* as in the forward, read */
    const bk_tensor *seq_idx;         /* as in the forward, read */
    const bk_tensor *dfinal_states;   /* [batch, heads, head_dim, state_dim]
                                         (has_final_states), read: dL/d(final states) */
    const bk_tensor *dskip;           /* shape of skip (desc.skip), written */
    const bk_tensor *dz;              /* [batch, seq_len, heads, head_dim] (has_z), written */
    const bk_tensor *ddt_bias;        /* [heads] (has_dt_bias), written */
    const bk_tensor *dinitial_states; /* [batch, heads, head_dim, state_dim]
                                         (has_initial_states), written */
} bk_ssd_bwd_args;

/* A backward plan: the descriptor and the chosen kernel. A plain value. */
typedef struct bk_ssd_bwd_plan {
    bk_ssd_desc desc;
    bk_plan_info info;
} bk_ssd_bwd_plan;

/* As bk_ssd_fwd_select (same descriptor, same errors, same 256 limits), and UNSUPPORTED
 * for n_varlen_seqs > 0 (every other option runs on both targets). Every kernel of this
 * op is deterministic: dA (and dskip, ddt_bias, the group sums of dB and dC) are reduced
 * in a fixed order without atomics, so BK_PREFER_DETERMINISTIC changes nothing (and
 * BK_PREFER_ALLOW_TF32 picks the TF32 plan for f32 on CUDA, as in the forward). */
bk_status bk_ssd_bwd_select(const bk_ssd_desc *desc, bk_target target, bk_preference preference,
                            bk_ssd_bwd_plan *plan);

/* As bk_ssd_fwd_can_implement, in the order x, dt, a, b, c, skip, z, dt_bias,
 * initial_states, seq_idx, dy, dfinal_states, dx, ddt, da, db, dc, dskip, dz, ddt_bias,
 * dinitial_states. */
bk_status bk_ssd_bwd_can_implement(const bk_ssd_bwd_plan *plan, const bk_ssd_bwd_args *args);

/* Bytes of workspace run needs (0 for a NULL plan or an empty problem). CPU kernel, with
 * Q = min(chunk_size, seq_len), K = ceil(seq_len / Q) chunks, G = ngroups (heads when 0),
 * P = heads / G and S = min(batch * G, 64) work slots (one slot runs the P heads of a
 * group in turn), f64 pieces each starting on a 256-byte boundary:
 *   8 * S * K * D*N          the state at the start of every chunk (forward sweep)
 * + 8 * S * D*N              the state gradient carried backwards
 * + 8 * S * Q * D   (x 2)    the chunk's x and dy rows
 * + 8 * S * Q * N   (x 2)    the chunk's B and C rows
 * + 8 * S * Q       (x 6)    the chunk's dt, cumulative log-decay, dt's slope through
 *                            softplus and clamp, sequence numbers, the log-decay's
 *                            gradient, and the direct part of ddt
 * + 8 * S * L * N   (x 2)    only when P > 1: dB and dC summed over the group's heads
 * + 8 * batch * heads (x 2)  per-(batch, head) partial sums of dA and ddt_bias
 * + 8 * batch * heads * W    per-(batch, head) partial sums of dskip (W = head_dim per
 *                            channel, 1 per head, 0 without skip)
 * and 0 when batch, seq_len or heads is 0. CUDA kernels, with K = ceil(seq_len / 64),
 * BH = batch * heads and G, P as above, pieces each starting on a 256-byte boundary:
 *   4 * BH * K * D*N  (x 2)  the state entering every chunk and the gradient of the
 *                            state leaving it (f32; the 16-bit path uses half of each)
 * + 4 * BH * K               each chunk's total log-decay (f32)
 * + 8 * BH * K               each chunk's part of dA (f64)
 * + 8 * BH * K               only with dt_bias: each chunk's part of ddt_bias (f64)
 * + 8 * BH * K * D           only with a skip: each chunk's part of dskip per channel (f64)
 * + 4 * BH * L * N  (x 2)    only when P > 1: dB and dC of every head (f32), summed per group
 * and 0 when batch, seq_len or heads is 0. SIZE_MAX when the bytes do not fit in size_t
 * (e.g. the CPU's 8 * batch * heads with batch and heads near 2^31; run then refuses). */
size_t bk_ssd_bwd_workspace_size(const bk_ssd_bwd_plan *plan);

/* Computes dx, ddt, dA, dB, dC and the options' gradients. Runs can_implement first, then
 * checks the workspace as bk_ssd_fwd_run does; on any failure nothing is written. dA,
 * dskip and ddt_bias are written (zeros when batch or seq_len is 0), dinitial_states too
 * (dfinal_states carried back when seq_len is 0, else its gradient through the scan).
 * `stream` is ignored on the CPU; on CUDA as bk_ssd_fwd_run. */
bk_status bk_ssd_bwd_run(const bk_ssd_bwd_plan *plan, void *stream, bk_workspace workspace,
                         const bk_ssd_bwd_args *args);

/* ----------------------------------------------------------- ssd_step -- */

/* ssd_step: one token per request on a pool of states (generation with continuous
 * batching; mamba_ssm's selective_state_update). For request r < batch and head h, with
 * p = state_indices[r] (r itself without state_indices) and g = h / (heads / G):
 *   dt'        = clamp(softplus(dt[r, h] + dt_bias[h]))      (options as in ssd_fwd)
 *   S          = state[p, h]                                 ([head_dim, state_dim])
 *   S[d, n]   <- exp(dt' A[h]) S[d, n] + dt' x[r, h, d] B[r, g, n]     (written back)
 *   u[d]       = sum_n C[r, g, n] S[d, n] + skip[h](, d) x[r, h, d]
 *   y[r, h, d] = u[d] silu(z[r, h, d])  with z, else u[d]
 * Running ssd_fwd over a prefix with final_states, then ssd_step token by token from
 * those states, gives the outputs of ssd_fwd over the whole sequence.
 *
 * Out-of-pool indices (p < 0 or p >= pool), as kv_append's out-of-range rows (kvcache.h):
 *   CPU    run reads state_indices first; any index outside the pool returns OUT_OF_RANGE
 *          naming the request and the index, and NOTHING is written (no state, no y, not
 *          dropped_requests).
 *   CUDA   the request is skipped (its y rows and every state untouched) and, when
 *          dropped_requests is given, counted into dropped_requests[0] (atomically, once
 *          per request for all heads); the caller zeroes it before the call.
 * Two requests naming the same state is the caller's error (not checked): the CPU applies
 * them in request order, CUDA in no defined order. */
typedef struct bk_ssd_step_desc {
    int32_t batch;     /* R, requests (one token each), >= 0 */
    int32_t pool;      /* states in the pool, >= 0; without state indices >= batch */
    int32_t heads;     /* H, >= 0 */
    int32_t head_dim;  /* D, >= 0, <= BK_SSD_MAX_DIM (UNSUPPORTED above) */
    int32_t state_dim; /* N, >= 0, <= BK_SSD_MAX_DIM (UNSUPPORTED above) */
    bk_dtype dtype;    /* f32, f16, bf16, or f64 (CPU only) */
    int32_t ngroups;   /* G: 0 means heads; else heads % G == 0 */
    bk_ssd_skip skip;  /* as bk_ssd_desc */
    bool has_z;        /* as bk_ssd_desc */
    bool has_dt_bias;  /* as bk_ssd_desc */
    bool dt_softplus;  /* as bk_ssd_desc */
    bool has_dt_limit; /* as bk_ssd_desc, with dt_min and dt_max */
    double dt_min;
    double dt_max;
    bool has_state_indices; /* request r uses state_indices[r]; else state r */
} bk_ssd_step_desc;

/* Tensors of one step; float tensors of element type desc.dtype. */
typedef struct bk_ssd_step_args {
    bk_tensor state; /* [pool, heads, head_dim, state_dim], read and written in place
                        (positions must not overlap) */
    bk_tensor x;     /* [batch, heads, head_dim], read */
    bk_tensor dt;    /* [batch, heads], read (raw) */
    bk_tensor a;     /* [heads], read */
    bk_tensor b;     /* [batch, G, state_dim], read */
    bk_tensor c;     /* [batch, G, state_dim], read */
    bk_tensor y;     /* [batch, heads, head_dim], written */
    const bk_tensor *skip;             /* [heads] or [heads, head_dim] (desc.skip), read */
    const bk_tensor *z;                /* [batch, heads, head_dim] (has_z), read */
    const bk_tensor *dt_bias;          /* [heads] (has_dt_bias), read */
    const bk_tensor *state_indices;    /* i32 [batch], contiguous (has_state_indices), read */
    const bk_tensor *dropped_requests; /* optional i64 [1], contiguous: requests skipped on
                                          CUDA (added to it); never written on the CPU */
} bk_ssd_step_args;

typedef struct bk_ssd_step_plan {
    bk_ssd_step_desc desc;
    bk_plan_info info;
} bk_ssd_step_plan;

/* Validates `desc` and picks a kernel for `target` (CPU: the f64 reference; CUDA sm_80+:
 * f32 math, one block per (request, head), deterministic when the indices are distinct).
 * Errors: INVALID_PROBLEM (NULL desc or plan, negative extent, pool < batch without
 * state indices, ngroups, skip or dt limit as bk_ssd_fwd_select, bad target or
 * preference); UNSUPPORTED (dtype, head_dim or state_dim above 256, f64 on CUDA, CUDA
 * below compute capability 8.0). */
bk_status bk_ssd_step_select(const bk_ssd_step_desc *desc, bk_target target, bk_preference preference,
                             bk_ssd_step_plan *plan);

/* Checks the tensors against the plan, in the order state, x, dt, a, b, c, skip, z,
 * dt_bias, state_indices, y, dropped_requests (no data is read). Errors as
 * bk_ssd_fwd_can_implement. */
bk_status bk_ssd_step_can_implement(const bk_ssd_step_plan *plan, const bk_ssd_step_args *args);

/* Always 0. */
size_t bk_ssd_step_workspace_size(const bk_ssd_step_plan *plan);

/* Runs the step. Runs can_implement first, then checks the workspace; on the CPU reads
 * state_indices (OUT_OF_RANGE for an index outside [0, pool), nothing written). On CUDA
 * every tensor is device memory, the call is queued on `stream`, and out-of-pool requests
 * are skipped and counted (top of this section). */
bk_status bk_ssd_step_run(const bk_ssd_step_plan *plan, void *stream, bk_workspace workspace,
                          const bk_ssd_step_args *args);

#ifdef __cplusplus
}
#endif

#endif /* BARACUDA_SSD_H */
