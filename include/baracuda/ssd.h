/*
 * ssd.h - Mamba-2 state-space duality (SSD) chunk scan: forward and backward.
 * Included by baracuda.h.
 *
 * For every batch b and head h, with a scalar A per head and a [head_dim, state_dim]
 * state that starts at zero (h_{-1} = 0):
 *
 *   decay_t     = exp(dt_t * A_h)
 *   h_t[d, n]   = decay_t * h_{t-1}[d, n] + dt_t * x_t[d] * B_t[n]
 *   y_t[d]      = sum_n C_t[n] * h_t[d, n]
 *
 * (dt_t, x_t, B_t, C_t, y_t read at [b, t, h, ...].) The backward returns the gradients
 * of a loss L through y: dx, ddt, dB, dC and dA[h] = sum_{b,t} dL/dA over the batch and
 * the sequence.
 *
 * The chunked (SSD) form: the sequence is cut into chunks of chunk_size steps. Inside a
 * chunk the output is an attention-like sum,
 *   y_t = exp(cum_t) h_in C_t + sum_{s <= t in chunk} (C_t . B_s) exp(cum_t - cum_s) dt_s x_s,
 * with cum_t the running sum of dt_u * A over the chunk up to t and h_in the state carried in
 * from the previous chunk; states pass from chunk to chunk. The result does not depend on
 * chunk_size beyond rounding; chunk_size picks the work split (and the workspace).
 *
 * Dtypes: f32, f16, bf16, and f64 on the CPU backend. Every tensor has the element type
 * of desc.dtype (A and dA included). Tensors are strided views: outer strides are
 * arbitrary (>= 0, no broadcast), the innermost stride must be 1 (UNSUPPORTED otherwise);
 * an output's positions must not overlap (INVALID_PROBLEM otherwise). Outputs must not
 * share memory with the inputs or with each other (not checked).
 *
 * CUDA (compute capability 8.0 and above; f32, f16, bf16 - f64 is CPU-only): asynchronous
 * on the caller's stream, no allocation, no host synchronisation, graph-capturable; scratch
 * comes from the workspace. The kernels use their own chunks of 64 steps whatever
 * chunk_size says (the result does not depend on it). The forward runs its chunk products
 * on tensor cores for f16/bf16 (16-bit operands: the inputs, the decay-weighted B, the f32
 * states and the masked scores rounded to the dtype; f32 accumulate) and in f32 on CUDA
 * cores for f32; the backward computes in f32 for every dtype. Both are deterministic
 * (no atomics; dA is reduced in a fixed order in f64).
 *
 * Limits: head_dim and state_dim up to 256 in both directions (UNSUPPORTED beyond).
 * Not yet: ngroups (B/C shared across heads), the D skip connection, the z gate,
 * dt_bias + softplus, initial/final states, seq_idx (packed sequences).
 */
#ifndef BARACUDA_SSD_H
#define BARACUDA_SSD_H

#ifdef __cplusplus
extern "C" {
#endif

/* Largest head_dim and state_dim any SSD kernel accepts. */
#define BK_SSD_MAX_DIM 256

/* The problem, shared by ssd_fwd and ssd_bwd.
 *   batch, seq_len, heads     B, L, H; >= 0 (INVALID_PROBLEM otherwise). A zero extent
 *                             is a valid empty problem;
 *   head_dim, state_dim       D, N; >= 0 (INVALID_PROBLEM), <= BK_SSD_MAX_DIM (UNSUPPORTED);
 *   chunk_size                steps per chunk of the chunked algorithm; > 0
 *                             (INVALID_PROBLEM otherwise). Values above seq_len mean one
 *                             chunk. Typical: 64..256;
 *   dtype                     f32, f16, bf16, or f64 (CPU only); UNSUPPORTED otherwise. */
typedef struct bk_ssd_desc {
    int32_t batch;
    int32_t seq_len;
    int32_t heads;
    int32_t head_dim;
    int32_t state_dim;
    int32_t chunk_size;
    bk_dtype dtype;
} bk_ssd_desc;

/* ------------------------------------------------------------ forward -- */

/* Tensors of the forward, all of element type desc.dtype. */
typedef struct bk_ssd_fwd_args {
    bk_tensor x;  /* [batch, seq_len, heads, head_dim], read */
    bk_tensor dt; /* [batch, seq_len, heads], read: step sizes (typically > 0) */
    bk_tensor a;  /* [heads], read: A per head (typically < 0, so decay is in (0, 1]) */
    bk_tensor b;  /* [batch, seq_len, heads, state_dim], read: input projection B */
    bk_tensor c;  /* [batch, seq_len, heads, state_dim], read: output projection C */
    bk_tensor y;  /* [batch, seq_len, heads, head_dim], written */
} bk_ssd_fwd_args;

/* A forward plan: the descriptor and the chosen kernel. A plain value. */
typedef struct bk_ssd_fwd_plan {
    bk_ssd_desc desc;
    bk_plan_info info;
} bk_ssd_fwd_plan;

/* Validates `desc` and picks a kernel for `target`. The CPU kernel is the f64 reference:
 * deterministic and bit-stable whatever the thread count.
 * Errors: INVALID_PROBLEM (NULL desc or plan, negative extent, chunk_size < 1, bad target
 * or preference); UNSUPPORTED (dtype not in {f32, f16, bf16, f64}, head_dim or state_dim
 * above 256, or no kernel on this target: f64 on CUDA, CUDA below compute capability 8.0). */
bk_status bk_ssd_fwd_select(const bk_ssd_desc *desc, bk_target target, bk_preference preference,
                            bk_ssd_fwd_plan *plan);

/* Checks the tensors against the plan: dtype, rank, shape, strides, capacity, in the order
 * x, dt, a, b, c, y. Errors: INVALID_PROBLEM (NULL plan/args, a plan of another op, NULL data,
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
 * + 8 * S * Q       (x 2)    the chunk's dt and cumulative log-decay
 * and 0 when batch, seq_len or heads is 0. CUDA kernels, with K = ceil(seq_len / 64) and
 * BH = batch * heads, f32 pieces each starting on a 256-byte boundary:
 *   4 * BH * K * D*N         the state entering every chunk
 * + 4 * BH * K               each chunk's total log-decay
 * and 0 when batch, seq_len or heads is 0 (268 MB at B 4, L 4096, H 32, D 64, N 128).
 * SIZE_MAX when the bytes do not fit in size_t (run then refuses). */
size_t bk_ssd_fwd_workspace_size(const bk_ssd_fwd_plan *plan);

/* Computes y. Runs can_implement first, then checks the workspace (INVALID_PROBLEM for a
 * NULL buffer when bytes are needed, WORKSPACE_TOO_SMALL below workspace_size); on any
 * failure nothing is written. `stream` is ignored on the CPU; on CUDA every tensor and the
 * workspace are device memory and the call returns before the work is done. */
bk_status bk_ssd_fwd_run(const bk_ssd_fwd_plan *plan, void *stream, bk_workspace workspace,
                         const bk_ssd_fwd_args *args);

/* ----------------------------------------------------------- backward -- */

/* Tensors of the backward, all of element type desc.dtype. Every output is WRITTEN (not
 * accumulated): no zero-filling is needed, and dA holds exactly sum_{b,t} dL/dA. */
typedef struct bk_ssd_bwd_args {
    bk_tensor x;   /* [batch, seq_len, heads, head_dim], read (as in the forward) */
    bk_tensor dt;  /* [batch, seq_len, heads], read */
    bk_tensor a;   /* [heads], read */
    bk_tensor b;   /* [batch, seq_len, heads, state_dim], read */
    bk_tensor c;   /* [batch, seq_len, heads, state_dim], read */
    bk_tensor dy;  /* [batch, seq_len, heads, head_dim], read: dL/dy */
    bk_tensor dx;  /* [batch, seq_len, heads, head_dim], written: dL/dx */
    bk_tensor ddt; /* [batch, seq_len, heads], written: dL/ddt */
    bk_tensor da;  /* [heads], written: dL/dA, summed over batch and sequence */
    bk_tensor db;  /* [batch, seq_len, heads, state_dim], written: dL/dB */
    bk_tensor dc;  /* [batch, seq_len, heads, state_dim], written: dL/dC */
} bk_ssd_bwd_args;

/* A backward plan: the descriptor and the chosen kernel. A plain value. */
typedef struct bk_ssd_bwd_plan {
    bk_ssd_desc desc;
    bk_plan_info info;
} bk_ssd_bwd_plan;

/* As bk_ssd_fwd_select (same descriptor, same errors, same 256 limits). Every kernel of
 * this op is deterministic: dA is reduced in a fixed order without atomics, so
 * BK_PREFER_DETERMINISTIC changes nothing. */
bk_status bk_ssd_bwd_select(const bk_ssd_desc *desc, bk_target target, bk_preference preference,
                            bk_ssd_bwd_plan *plan);

/* As bk_ssd_fwd_can_implement, in the order x, dt, a, b, c, dy, dx, ddt, da, db, dc. */
bk_status bk_ssd_bwd_can_implement(const bk_ssd_bwd_plan *plan, const bk_ssd_bwd_args *args);

/* Bytes of workspace run needs (0 for a NULL plan or an empty problem). CPU kernel, with
 * Q = min(chunk_size, seq_len), K = ceil(seq_len / Q) chunks and S = min(batch * heads, 64)
 * work slots, f64 pieces each starting on a 256-byte boundary:
 *   8 * S * K * D*N          the state at the start of every chunk (forward sweep)
 * + 8 * S * D*N              the state gradient carried backwards
 * + 8 * S * Q * D   (x 2)    the chunk's x and dy rows
 * + 8 * S * Q * N   (x 2)    the chunk's B and C rows
 * + 8 * S * Q       (x 4)    the chunk's dt, cumulative log-decay, its gradient, and the
 *                            direct part of ddt
 * + 8 * batch * heads        per-(batch, head) partial sums of dA
 * and 0 when batch, seq_len or heads is 0. CUDA kernels, with K = ceil(seq_len / 64) and
 * BH = batch * heads, pieces each starting on a 256-byte boundary:
 *   4 * BH * K * D*N  (x 2)  the state entering every chunk and the gradient of the
 *                            state leaving it (f32)
 * + 4 * BH * K               each chunk's total log-decay (f32)
 * + 8 * BH * K               each chunk's part of dA (f64)
 * and 0 when batch, seq_len or heads is 0. SIZE_MAX when the bytes do not fit in size_t
 * (e.g. the CPU's 8 * batch * heads with batch and heads near 2^31; run then refuses). */
size_t bk_ssd_bwd_workspace_size(const bk_ssd_bwd_plan *plan);

/* Computes dx, ddt, dA, dB, dC. Runs can_implement first, then checks the workspace as
 * bk_ssd_fwd_run does; on any failure nothing is written. dA is written (zeros when batch
 * or seq_len is 0). `stream` is ignored on the CPU; on CUDA as bk_ssd_fwd_run. */
bk_status bk_ssd_bwd_run(const bk_ssd_bwd_plan *plan, void *stream, bk_workspace workspace,
                         const bk_ssd_bwd_args *args);

#ifdef __cplusplus
}
#endif

#endif /* BARACUDA_SSD_H */
