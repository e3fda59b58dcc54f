/* kvcache.c (CPU) - kv_append and paged_kv_append, reference kernels.
 *
 * Math:   kv_append:        K_cache[b,h,off[b]+l,:] = K_new[b,h,l,:]   (same for V)
 *         paged_kv_append:  K_pages[page(b,t),h,t%P,:] = K_new[indptr[b]+r,h,:],
 *                           t = kv_len[b] - n_b + r                    (same for V)
 * Shapes: kv_append: new [B,H,L_new,D], cache [B,H,L_max,D], D_k != D_v allowed, inner
 *         stride 1, outer strides arbitrary. paged: new [nnz,Hkv,D] (inner stride 1),
 *         pool [pages,Hkv,P,D] contiguous (paged.h).
 * Work:   a row is D contiguous elements on both sides, so each row is one memcpy of
 *         D * bk_dtype_size bytes: the copy is bit-exact for every dtype (no trip
 *         through f64, which would canonicalise NaN payloads), with no per-dtype code.
 *         kv_append runs one (b, h) pair per OpenMP iteration; paged_kv_append one kv
 *         head per iteration, walking (b, r) in order, so even if two rows share a
 *         slot (shared pages) the result does not depend on the thread count.
 * Checks: the callers have validated shapes, strides and every offset / index value;
 *         nothing here can fail or write outside the caches.
 * Not yet: no dropped-row counting (the CPU refuses out-of-range input instead). */
#include "cpu/kvcache.h"
#include "core/core.h"
#include "core/paged.h"

#include <string.h>

/* Copies `rows` rows of `width` elements (inner stride 1) from src (row stride
 * src_stride elements) to dst (row stride dst_stride). */
static void copy_rows(char *dst, int64_t dst_stride, const char *src, int64_t src_stride, int64_t rows,
                      int64_t width, size_t esize)
{
    size_t bytes = (size_t)width * esize;
    for (int64_t l = 0; l < rows; l++)
        memcpy(dst + (size_t)(l * dst_stride) * esize, src + (size_t)(l * src_stride) * esize, bytes);
}

bk_status bk_cpu_kv_append(const bk_kv_append_desc *d, const bk_kv_append_args *a)
{
    const int64_t B = d->batch, H = d->heads, L = d->new_len;
    const size_t es = bk_dtype_size(d->dtype);
    const int64_t *off = (const int64_t *)a->cache_offsets.data;
    if (B == 0 || H == 0 || L == 0 || (d->head_dim_k == 0 && d->head_dim_v == 0))
        return BK_STATUS_SUCCESS; /* nothing to copy: no walk over up to 2^62 empty (b, h) pairs */
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const bk_tensor *kn = &a->k_new, *vn = &a->v_new, *kc = &a->k_cache, *vc = &a->v_cache;
            if (d->head_dim_k > 0)
                copy_rows((char *)kc->data + (size_t)bk_offset4(kc, b, h, off[b], 0) * es, kc->strides[2],
                          (const char *)kn->data + (size_t)bk_offset4(kn, b, h, 0, 0) * es, kn->strides[2], L,
                          d->head_dim_k, es);
            if (d->head_dim_v > 0)
                copy_rows((char *)vc->data + (size_t)bk_offset4(vc, b, h, off[b], 0) * es, vc->strides[2],
                          (const char *)vn->data + (size_t)bk_offset4(vn, b, h, 0, 0) * es, vn->strides[2], L,
                          d->head_dim_v, es);
        }
    return BK_STATUS_SUCCESS;
}

bk_status bk_cpu_paged_kv_append(const bk_paged_kv_append_desc *d, const bk_paged_kv_append_args *a)
{
    const bk_paged_kv_desc *p = &d->paged_kv;
    const int64_t Hkv = p->kv_heads, D = p->head_dim;
    const size_t es = bk_dtype_size(p->dtype);
    const int32_t *indptr = (const int32_t *)a->append_indptr.data;
    if (d->nnz == 0)
        return BK_STATUS_SUCCESS;
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < Hkv; h++) {
        const bk_tensor *kn = &a->k_new, *vn = &a->v_new;
        char *kp = (char *)a->kv.k_pages.data, *vp = (char *)a->kv.v_pages.data;
        for (int32_t b = 0; b < d->batch; b++) {
            int64_t n = indptr[b + 1] - indptr[b];
            int64_t first = bk_paged_kv_len(p, &a->kv, b) - n; /* token of the first new row */
            for (int64_t r = 0; r < n; r++) {
                int64_t row = indptr[b] + r;
                int64_t slot = bk_paged_kv_offset(p, &a->kv, b, h, first + r);
                memcpy(kp + (size_t)slot * es, (const char *)kn->data + (size_t)bk_offset3(kn, row, h, 0) * es,
                       (size_t)D * es);
                memcpy(vp + (size_t)slot * es, (const char *)vn->data + (size_t)bk_offset3(vn, row, h, 0) * es,
                       (size_t)D * es);
            }
        }
    }
    return BK_STATUS_SUCCESS;
}
