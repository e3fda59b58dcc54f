/* alibi.c (CPU) - ALiBi forward and backward, reference kernels.
 *
 * Math:   Y[b,h,i,j] = A[b,h,i,j] + slope[h] * (j - i)
 *         dA = dY;  dslope[h] = sum_{b,i,j} dY[b,h,i,j] * (j - i)
 * Shapes: A, Y, dY, dA [B, H, Q, K] with any strides; slopes, dslopes [H].
 * Work:   f64 arithmetic for every dtype. The forward runs one (b, h) slice per
 *         OpenMP iteration; the backward reduces each head's dslope in one thread, in
 *         (b, i, j) order, so the result does not depend on the thread count.
 * Not yet: nothing left out. */
#include "cpu/alibi.h"
#include "core/core.h"

bk_status bk_cpu_alibi_fwd(const bk_alibi_fwd_desc *d, const bk_alibi_fwd_args *a)
{
    const int64_t B = d->batch, H = d->heads, Q = d->query_len, K = d->key_len;
    const bk_dtype dt = d->dtype;
    if (Q == 0 || K == 0)
        return BK_STATUS_SUCCESS; /* y is empty: no walk over up to 2^62 empty (b, h) slices */
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            double slope = bk_load_f64(a->slopes.data, dt, h * a->slopes.strides[0]);
            for (int64_t i = 0; i < Q; i++)
                for (int64_t j = 0; j < K; j++) {
                    double v = bk_load_f64(a->scores.data, dt, bk_offset4(&a->scores, b, h, i, j));
                    bk_store_f64(a->y.data, dt, bk_offset4(&a->y, b, h, i, j), v + slope * (double)(j - i));
                }
        }
    return BK_STATUS_SUCCESS;
}

bk_status bk_cpu_alibi_bwd(const bk_alibi_bwd_desc *d, const bk_alibi_bwd_args *a)
{
    const int64_t B = d->batch, H = d->heads, Q = d->query_len, K = d->key_len;
    const bk_dtype dt = d->dtype;
    const bk_tensor *dy = &a->dy;
    const int64_t Bn = Q == 0 || K == 0 ? 0 : B; /* dy empty: dslope = 0 without walking the batch */
    if (Bn == 0 && !a->dslopes)
        return BK_STATUS_SUCCESS; /* nothing to write: no walk over up to 2^31 heads */
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < H; h++) {
        double sum = 0.0;
        for (int64_t b = 0; b < Bn; b++)
            for (int64_t i = 0; i < Q; i++)
                for (int64_t j = 0; j < K; j++) {
                    double g = bk_load_f64(dy->data, dt, bk_offset4(dy, b, h, i, j));
                    if (a->dscores)
                        bk_store_f64(a->dscores->data, dt, bk_offset4(a->dscores, b, h, i, j), g);
                    sum += g * (double)(j - i);
                }
        if (a->dslopes)
            bk_store_f64(a->dslopes->data, dt, h * a->dslopes->strides[0], sum);
    }
    return BK_STATUS_SUCCESS;
}
