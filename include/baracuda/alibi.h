/*
 * alibi.h - Attention with Linear Biases (ALiBi, Press et al. 2022): the bias op, its
 * backward, and the slopes helper. Included by baracuda.h.
 *
 * Forward:   Y[b,h,i,j] = A[b,h,i,j] + slope[h] * (j - i)
 * Backward:  dA[b,h,i,j] = dY[b,h,i,j]
 *            dslope[h]   = sum_{b,i,j} dY[b,h,i,j] * (j - i)
 *
 * Dtypes: f32, f64, f16, bf16 (the slopes share the element type). Tensors may be any
 * non-overlapping strided view; Y may be the very same view as A (in place).
 */
#ifndef BARACUDA_ALIBI_H
#define BARACUDA_ALIBI_H

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- slopes -- */

/* Writes the ALiBi paper's head slopes for `num_heads` heads into slopes[0..num_heads):
 * for a power-of-two count n, slope[h] = 2^(-max_bias * (h + 1) / n); otherwise the
 * n' = 2^floor(log2 n) slopes of n', followed by every other slope of 2n' (the first
 * n - n' of them), as in the paper's reference code. max_bias is 8 in the paper.
 * Host function, no device work.
 * Errors: INVALID_PROBLEM for num_heads < 1, a NULL array, or a non-finite or
 * non-positive max_bias. */
bk_status bk_alibi_slopes(int32_t num_heads, double max_bias, double *slopes);

/* ------------------------------------------------------------ forward -- */

/* Problem: B batches of H heads of Q x K score matrices. Extents >= 0. */
typedef struct bk_alibi_fwd_desc {
    int32_t batch;
    int32_t heads;
    int32_t query_len;
    int32_t key_len;
    bk_dtype dtype; /* f32, f64, f16 or bf16 */
} bk_alibi_fwd_desc;

typedef struct bk_alibi_fwd_args {
    bk_tensor scores; /* A, [batch, heads, query_len, key_len], read */
    bk_tensor slopes; /* [heads], read */
    bk_tensor y;      /* [batch, heads, query_len, key_len], written; may equal `scores` */
} bk_alibi_fwd_args;

typedef struct bk_alibi_fwd_plan {
    bk_alibi_fwd_desc desc;
    bk_plan_info info;
} bk_alibi_fwd_plan;

/* Validates `desc` and picks a kernel for `target`.
 * Errors: INVALID_PROBLEM (NULL pointer, negative extent), UNSUPPORTED (dtype, or no
 * kernel on this target). */
bk_status bk_alibi_fwd_select(const bk_alibi_fwd_desc *desc, bk_target target, bk_preference preference,
                              bk_alibi_fwd_plan *plan);
/* Checks the tensors against the plan: dtype, shape, strides (>= 0, outputs
 * non-overlapping), capacity. Errors: INVALID_PROBLEM (also for an element count, byte
 * size or reach beyond int64), UNSUPPORTED, BUFFER_TOO_SMALL. */
bk_status bk_alibi_fwd_can_implement(const bk_alibi_fwd_plan *plan, const bk_alibi_fwd_args *args);
/* Always 0. */
size_t bk_alibi_fwd_workspace_size(const bk_alibi_fwd_plan *plan);
/* Computes Y. Runs can_implement first; on failure nothing is written. */
bk_status bk_alibi_fwd_run(const bk_alibi_fwd_plan *plan, void *stream, bk_workspace workspace,
                           const bk_alibi_fwd_args *args);

/* ----------------------------------------------------------- backward -- */

typedef bk_alibi_fwd_desc bk_alibi_bwd_desc;

typedef struct bk_alibi_bwd_args {
    bk_tensor dy;              /* [batch, heads, query_len, key_len], read */
    const bk_tensor *dscores;  /* dA, same shape as dy, written; NULL to skip */
    const bk_tensor *dslopes;  /* [heads], written; NULL to skip */
} bk_alibi_bwd_args;

typedef struct bk_alibi_bwd_plan {
    bk_alibi_bwd_desc desc;
    bk_plan_info info;
} bk_alibi_bwd_plan;

/* As bk_alibi_fwd_select. Every kernel of this op is deterministic: dslope is reduced
 * in a fixed order (no atomics), so BK_PREFER_DETERMINISTIC changes nothing. */
bk_status bk_alibi_bwd_select(const bk_alibi_bwd_desc *desc, bk_target target, bk_preference preference,
                              bk_alibi_bwd_plan *plan);
/* As bk_alibi_fwd_can_implement; also INVALID_PROBLEM when both outputs are NULL. */
bk_status bk_alibi_bwd_can_implement(const bk_alibi_bwd_plan *plan, const bk_alibi_bwd_args *args);
/* Bytes of scratch in the plan's memory space: 0 on the CPU; on CUDA, heads x parts
 * f64 partial sums of dslope (parts grows with batch * query_len * key_len, at most 512). */
size_t bk_alibi_bwd_workspace_size(const bk_alibi_bwd_plan *plan);
/* Computes the requested gradients. dslope is written, not accumulated. */
bk_status bk_alibi_bwd_run(const bk_alibi_bwd_plan *plan, void *stream, bk_workspace workspace,
                           const bk_alibi_bwd_args *args);

#ifdef __cplusplus
}
#endif

#endif /* BARACUDA_ALIBI_H */
