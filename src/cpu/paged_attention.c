/* paged_attention.c (CPU) - paged_decode, paged_prefill and attention_merge, reference
 * kernels.
 *
 * Math:   request b's token t lives in page kv_indices[kv_indptr[b] + t / page_size],
 *         slot t % page_size (HND pool [num_pages, kv_heads, page_size, head_dim]).
 *         Query head h reads kv head h / (q_heads / kv_heads) (GQA).
 *         decode:  R rows per request, row r over keys [0, kv_len - R + 1 + r) (R = 1:
 *                  all of them); an empty range -> o = 0, lse = -inf.
 *         prefill: row i of a request with qo_len rows sees keys [0, key_hi],
 *                  key_hi = kv_len - 1 (causal: min(kv_len - 1, i + kv_len - qo_len));
 *                  key_hi < 0 -> o = 0, lse = -inf.
 *         Both go through bk_cpu_paged_attend_row: the shared online-softmax row
 *         (src/cpu/attend.c) with a key_offset callback that maps key j to its page slot.
 *         merge:   lse = m + log sum_p exp(lse_p - m), m = max_p lse_p;
 *                  o = sum_p exp(lse_p - lse) o_p, parts with lse_p = -inf skipped.
 * Shapes: q, o [rows, q_heads, head_dim] (decode: [batch, R, q_heads, head_dim], the R
 *         axis optional when R = 1; prefill: rows ragged by q_indptr), inner stride 1;
 *         lse [rows, q_heads] f32 (decode [batch, R, q_heads]). merge: o_parts
 *         [rows, parts, heads, head_dim], lse_parts [rows, parts, heads].
 * Work:   f64 for every dtype, rows on the stack (head_dim <= 256; merge walks head_dim in
 *         blocks of 256). One OpenMP iteration per (row, head) output, each computed by one
 *         thread in key (part) order, so results do not depend on the thread count.
 * Not yet: nothing of the ops' contract left out. The kernel re-reads the page table per
 *         key (no page-run batching) and does no split-KV: it is the reference, not fast. */
#include "cpu/paged_attention.h"
#include "core/core.h"
#include "core/paged.h"
#include "cpu/attend.h"

#include <math.h>

/* --------------------------------------------------- the shared paged row -- */

typedef struct paged_keys_ctx {
    const bk_paged_kv_desc *d;
    const bk_paged_kv *kv;
    int32_t b;
    int64_t kv_head;
} paged_keys_ctx;

/* K and V pools share one layout, so one callback serves both. */
static int64_t paged_key_offset(const void *ctx, int64_t j)
{
    const paged_keys_ctx *c = (const paged_keys_ctx *)ctx;
    return bk_paged_kv_offset(c->d, c->kv, c->b, c->kv_head, j);
}

void bk_cpu_paged_attend_row(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b, int64_t kv_head,
                             const double *q, int64_t key_hi, double scale, double *out, double *lse)
{
    paged_keys_ctx ctx = {d, kv, b, kv_head};
    bk_attend_keys keys = {kv->k_pages.data, kv->v_pages.data, d->dtype, d->head_dim, d->head_dim,
                           paged_key_offset,  paged_key_offset,  &ctx};
    bk_attend_mask mask = {0, key_hi, scale, 0.0, 0.0, 0};
    bk_cpu_attend_row(q, &keys, &mask, out, lse);
}

/* q row -> attend -> o row (+ lse) for query head h of request b over keys [0, key_hi];
 * the row's element offsets in q, o (units of elements) and lse are given. */
static void paged_row(const bk_paged_kv_desc *pd, const bk_paged_kv *kv, int32_t b, int64_t h, int64_t group,
                      int64_t key_hi, double scale, const bk_tensor *q, int64_t q_off, const bk_tensor *o,
                      int64_t o_off, const bk_tensor *lse_t, int64_t l_off)
{
    const bk_dtype dt = pd->dtype;
    const size_t es = bk_dtype_size(dt);
    double qrow[BK_CPU_MAX_HEAD_DIM], orow[BK_CPU_MAX_HEAD_DIM], lse;
    bk_gather_f64((const char *)q->data + (size_t)q_off * es, dt, 1, pd->head_dim, qrow);
    bk_cpu_paged_attend_row(pd, kv, b, h / group, qrow, key_hi, scale, orow, &lse);
    bk_scatter_f64((char *)o->data + (size_t)o_off * es, dt, 1, pd->head_dim, orow);
    if (lse_t)
        bk_store_f64(lse_t->data, BK_DTYPE_F32, l_off, lse);
}

/* ------------------------------------------------------------- decode -- */

bk_status bk_cpu_paged_decode(const bk_paged_decode_desc *d, const bk_paged_decode_args *a)
{
    const bk_paged_kv_desc *pd = &d->paged_kv;
    const int64_t B = d->batch, R = bk_paged_decode_rows(d), H = d->q_heads, group = d->q_heads / pd->kv_heads;
    int64_t sq[3], so[3], sl[3] = {0, 0, 0};
    bk_paged_decode_strides(d, &a->q, false, sq);
    bk_paged_decode_strides(d, &a->o, false, so);
    if (a->lse)
        bk_paged_decode_strides(d, a->lse, true, sl);
#pragma omp parallel for collapse(3) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t h = 0; h < H; h++) {
                /* row r sees keys [0, kv_len - R + 1 + r): key_hi < 0 -> o = 0, lse = -inf */
                int64_t key_hi = bk_paged_kv_len(pd, &a->kv, (int32_t)b) - R + r;
                paged_row(pd, &a->kv, (int32_t)b, h, group, key_hi, d->scale, &a->q,
                          b * sq[0] + r * sq[1] + h * sq[2], &a->o, b * so[0] + r * so[1] + h * so[2], a->lse,
                          b * sl[0] + r * sl[1] + h * sl[2]);
            }
    return BK_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ prefill -- */

/* The request owning row r (0 <= r < indptr[batch]): the last b with indptr[b] <= r.
 * Requests with no rows have indptr[b] == indptr[b+1] and are passed over. */
static int32_t request_of_row(const int32_t *indptr, int32_t batch, int64_t r)
{
    int32_t lo = 0, hi = batch - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo + 1) / 2;
        if (indptr[mid] <= r)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

bk_status bk_cpu_paged_prefill(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a)
{
    const bk_paged_kv_desc *pd = &d->paged_kv;
    const int32_t *q_indptr = (const int32_t *)a->q_indptr.data;
    const int64_t R = d->total_rows, H = d->q_heads, group = d->q_heads / pd->kv_heads;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            int32_t b = request_of_row(q_indptr, d->batch, r);
            int64_t kv_len = bk_paged_kv_len(pd, &a->kv, b);
            int64_t key_hi = kv_len - 1;
            if (d->causal) {
                int64_t qo_len = (int64_t)q_indptr[b + 1] - q_indptr[b], i = r - q_indptr[b];
                int64_t diag = i + kv_len - qo_len; /* bottom-right aligned */
                if (diag < key_hi)
                    key_hi = diag;
            }
            paged_row(pd, &a->kv, b, h, group, key_hi, d->scale, &a->q, bk_offset3(&a->q, r, h, 0), &a->o,
                      bk_offset3(&a->o, r, h, 0), a->lse, a->lse ? bk_offset2(a->lse, r, h) : 0);
        }
    return BK_STATUS_SUCCESS;
}

/* -------------------------------------------------------------- merge -- */

#define MERGE_BLOCK 256

bk_status bk_cpu_attention_merge(const bk_attention_merge_desc *d, const bk_attention_merge_args *a)
{
    const int64_t R = d->rows, P = d->parts, H = d->heads, D = d->head_dim;
    const bk_dtype dt = d->dtype;
    const size_t es = bk_dtype_size(dt);
    const bk_tensor *op = &a->o_parts, *lp = &a->lse_parts, *o = &a->o;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            double m = -INFINITY;
            for (int64_t p = 0; p < P; p++) {
                double l = bk_load_f64(lp->data, BK_DTYPE_F32, bk_offset3(lp, r, p, h));
                if (l > m || isnan(l))
                    m = l;
            }
            double lse = m;
            if (m != -INFINITY) {
                double s = 0.0;
                for (int64_t p = 0; p < P; p++)
                    s += exp(bk_load_f64(lp->data, BK_DTYPE_F32, bk_offset3(lp, r, p, h)) - m);
                lse = m + log(s);
            }
            /* head_dim in blocks, so any head_dim fits the stack */
            for (int64_t d0 = 0; d0 < D; d0 += MERGE_BLOCK) {
                int64_t n = D - d0 < MERGE_BLOCK ? D - d0 : MERGE_BLOCK;
                double acc[MERGE_BLOCK], part[MERGE_BLOCK];
                for (int64_t k = 0; k < n; k++)
                    acc[k] = 0.0;
                for (int64_t p = 0; p < P && m != -INFINITY; p++) {
                    double l = bk_load_f64(lp->data, BK_DTYPE_F32, bk_offset3(lp, r, p, h));
                    if (l == -INFINITY)
                        continue; /* saw no key: its o is not read */
                    double w = exp(l - lse);
                    bk_gather_f64((const char *)op->data + (size_t)bk_offset4(op, r, p, h, d0) * es, dt, 1, n,
                                  part);
                    for (int64_t k = 0; k < n; k++)
                        acc[k] += w * part[k];
                }
                bk_scatter_f64((char *)o->data + (size_t)bk_offset3(o, r, h, d0) * es, dt, 1, n, acc);
            }
            if (a->lse)
                bk_store_f64(a->lse->data, BK_DTYPE_F32, bk_offset2(a->lse, r, h), lse);
        }
    return BK_STATUS_SUCCESS;
}
