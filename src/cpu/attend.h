/* attend.h - the CPU attention row shared by sdpa_fwd, paged_decode and paged_prefill.
 *
 * One query row against a run of keys, in f64, with an online (streaming) softmax so
 * no buffer grows with the key count:
 *
 *   s_j  = scale * <q, k_j>
 *   s_j  = softcap * tanh(s_j / softcap)          if softcap > 0
 *   s_j += alibi_slope * (j - query_pos)          (alibi_slope 0 = none)
 *   keys j outside [key_lo, key_hi] are masked out
 *   out  = sum_j softmax(s)_j v_j,  lse = log sum_j exp(s_j)
 *
 * A row that sees no key gets out = 0 and lse = -inf.
 * Keys are addressed through `key_offset(ctx, j)`: the element offset of key/value row
 * j in k_base / v_base (contiguous rows of head_dim_qk / head_dim_v elements from
 * there), so strided tensors and page tables share this routine. */
#ifndef BK_CPU_ATTEND_H
#define BK_CPU_ATTEND_H
#include "baracuda/baracuda.h"

/* Largest head dim any op accepts (sdpa: 256); rows live on the stack. */
#define BK_CPU_MAX_HEAD_DIM 256

typedef int64_t (*bk_key_offset_fn)(const void *ctx, int64_t j);

typedef struct bk_attend_keys {
    const void *k_base;
    const void *v_base;
    bk_dtype dtype;
    int64_t head_dim_qk;
    int64_t head_dim_v;
    bk_key_offset_fn k_offset; /* offset of key row j in k_base */
    bk_key_offset_fn v_offset; /* offset of value row j in v_base */
    const void *ctx;
} bk_attend_keys;

typedef struct bk_attend_mask {
    int64_t key_lo;     /* first visible key (inclusive), >= 0 */
    int64_t key_hi;     /* last visible key (inclusive); < key_lo = none visible */
    double scale;
    double softcap;     /* 0 = off */
    double alibi_slope; /* 0 = off */
    int64_t query_pos;  /* the query's position on the key axis, for ALiBi */
} bk_attend_mask;

/* q[head_dim_qk] in f64; writes out[head_dim_v] and *lse (natural log). */
void bk_cpu_attend_row(const double *q, const bk_attend_keys *keys, const bk_attend_mask *mask, double *out,
                       double *lse);

/* The score s_j of one key under the mask's transforms (scale, softcap, ALiBi), without
 * masking; used by backward passes to recompute probabilities. */
double bk_cpu_attend_score(const double *q, const double *k, int64_t head_dim_qk, const bk_attend_mask *mask,
                           int64_t j);

#endif
