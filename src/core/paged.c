/* paged.c - validation of the paged KV cache and of ragged index arrays, shared by
 * paged_kv_append, paged_decode and paged_prefill; the shapes of paged_decode's q, o and
 * lse (with or without the R axis), read by its op, CPU and CUDA code alike. */
#include "core/paged.h"

bk_status bk_check_paged_desc(const char *op, const bk_paged_kv_desc *d, uint32_t dtypes)
{
    BK_TRY(bk_check_extent(op, "desc.paged_kv.num_pages", d->num_pages, 1));
    BK_TRY(bk_check_extent(op, "desc.paged_kv.kv_heads", d->kv_heads, 1));
    BK_TRY(bk_check_extent(op, "desc.paged_kv.page_size", d->page_size, 1));
    BK_TRY(bk_check_extent(op, "desc.paged_kv.head_dim", d->head_dim, 1));
    return bk_check_dtype_in(op, "desc.paged_kv.dtype", d->dtype, dtypes);
}

bk_status bk_check_paged_attention(const char *op, int32_t q_heads, double scale, const bk_paged_kv_desc *d,
                                   uint32_t dtypes)
{
    BK_TRY(bk_check_extent(op, "desc.q_heads", q_heads, 1));
    BK_TRY(bk_check_finite(op, "desc.scale", scale));
    BK_TRY(bk_check_paged_desc(op, d, dtypes));
    BK_TRY(bk_check_gqa(op, q_heads, d->kv_heads, "kv_heads"));
    if (d->head_dim != 64 && d->head_dim != 128 && d->head_dim != 256)
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: desc.paged_kv.head_dim is %d, expected 64, 128 or 256", op,
                       (int)d->head_dim);
    return BK_STATUS_SUCCESS;
}

bk_status bk_check_paged_tensors(const char *op, const bk_paged_kv_desc *d, int32_t batch,
                                 const bk_paged_kv *kv, bool pages_written)
{
    uint32_t pool_layout = BK_LAYOUT_CONTIGUOUS | (pages_written ? BK_LAYOUT_OUTPUT : 0u);
    bk_tensor_spec k = {"k_pages", d->dtype, 4, {d->num_pages, d->kv_heads, d->page_size, d->head_dim},
                        "num_pages,kv_heads,page_size,head_dim", pool_layout};
    bk_tensor_spec v = k;
    v.name = "v_pages";
    BK_TRY(bk_check_tensor(op, &kv->k_pages, &k));
    BK_TRY(bk_check_tensor(op, &kv->v_pages, &v));
    if (kv->kv_indices.rank != 1)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: kv_indices.rank is %d, expected 1", op, (int)kv->kv_indices.rank);
    bk_tensor_spec idx = {"kv_indices", BK_DTYPE_I32, 1, {kv->kv_indices.shape[0]}, "n", BK_LAYOUT_CONTIGUOUS};
    bk_tensor_spec ptr = {"kv_indptr", BK_DTYPE_I32, 1, {(int64_t)batch + 1}, "batch+1", BK_LAYOUT_CONTIGUOUS};
    bk_tensor_spec last = {"last_page_len", BK_DTYPE_I32, 1, {batch}, "batch", BK_LAYOUT_CONTIGUOUS};
    BK_TRY(bk_check_tensor(op, &kv->kv_indices, &idx));
    BK_TRY(bk_check_tensor(op, &kv->kv_indptr, &ptr));
    return bk_check_tensor(op, &kv->last_page_len, &last);
}

bk_status bk_check_paged_values(const char *op, const bk_paged_kv_desc *d, int32_t batch, const bk_paged_kv *kv,
                                bool allow_empty)
{
    const int32_t *indptr = (const int32_t *)kv->kv_indptr.data;
    const int32_t *indices = (const int32_t *)kv->kv_indices.data;
    const int32_t *last = (const int32_t *)kv->last_page_len.data;
    if (indptr[0] != 0)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: kv_indptr[0] is %d, expected 0", op, (int)indptr[0]);
    for (int32_t b = 0; b < batch; b++) {
        if (allow_empty && indptr[b + 1] < indptr[b])
            return bk_fail(BK_STATUS_INVALID_PROBLEM,
                           "%s: kv_indptr[%d] is %d after kv_indptr[%d] = %d, expected a value >= it", op,
                           (int)(b + 1), (int)indptr[b + 1], (int)b, (int)indptr[b]);
        if (!allow_empty && indptr[b + 1] <= indptr[b])
            return bk_fail(BK_STATUS_INVALID_PROBLEM,
                           "%s: kv_indptr[%d] is %d after kv_indptr[%d] = %d, expected a larger value (every "
                           "request owns at least one page)",
                           op, (int)(b + 1), (int)indptr[b + 1], (int)b, (int)indptr[b]);
        if (indptr[b + 1] == indptr[b])
            continue; /* no page (allow_empty): kv_len 0, last_page_len not read */
        if (last[b] < 1 || last[b] > d->page_size)
            return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: last_page_len[%d] is %d, expected 1..page_size = %d", op,
                           (int)b, (int)last[b], (int)d->page_size);
    }
    if (indptr[batch] > kv->kv_indices.shape[0])
        return bk_fail(BK_STATUS_OUT_OF_RANGE, "%s: kv_indptr[%d] is %d, beyond kv_indices of %lld entries", op,
                       (int)batch, (int)indptr[batch], (long long)kv->kv_indices.shape[0]);
    for (int32_t i = 0; i < indptr[batch]; i++)
        if (indices[i] < 0 || indices[i] >= d->num_pages)
            return bk_fail(BK_STATUS_OUT_OF_RANGE, "%s: kv_indices[%d] is %d, expected a page id in 0..%d", op, (int)i,
                           (int)indices[i], (int)(d->num_pages - 1));
    return BK_STATUS_SUCCESS;
}

int64_t bk_paged_kv_len(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b)
{
    const int32_t *indptr = (const int32_t *)kv->kv_indptr.data;
    const int32_t *last = (const int32_t *)kv->last_page_len.data;
    if (indptr[b + 1] == indptr[b])
        return 0;
    return (int64_t)(indptr[b + 1] - indptr[b] - 1) * d->page_size + last[b];
}

int64_t bk_paged_kv_offset(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b, int64_t h, int64_t t)
{
    const int32_t *indptr = (const int32_t *)kv->kv_indptr.data;
    const int32_t *indices = (const int32_t *)kv->kv_indices.data;
    int64_t page = indices[indptr[b] + t / d->page_size];
    return ((page * d->kv_heads + h) * d->page_size + t % d->page_size) * d->head_dim;
}

bk_status bk_check_indptr_values(const char *op, const char *name, const int32_t *indptr, int32_t batch,
                                 int64_t total)
{
    if (indptr[0] != 0)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s[0] is %d, expected 0", op, name, (int)indptr[0]);
    for (int32_t b = 0; b < batch; b++)
        if (indptr[b + 1] < indptr[b])
            return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s[%d] is %d after %s[%d] = %d, expected non-decreasing",
                           op, name, (int)(b + 1), (int)indptr[b + 1], name, (int)b, (int)indptr[b]);
    if (indptr[batch] != total)
        return bk_fail(BK_STATUS_OUT_OF_RANGE, "%s: %s[%d] is %d, expected the row count %lld", op, name, (int)batch,
                       (int)indptr[batch], (long long)total);
    return BK_STATUS_SUCCESS;
}

/* ---------------------------------------------------------- paged_decode -- */

int32_t bk_paged_decode_rows(const bk_paged_decode_desc *d)
{
    return d->q_rows_per_request > 1 ? d->q_rows_per_request : 1;
}

/* The R axis is there when R > 1, or when the caller's view has the rank with it. */
static bool decode_has_rows(const bk_paged_decode_desc *d, const bk_tensor *t, bool lse)
{
    return bk_paged_decode_rows(d) > 1 || (t != NULL && t->rank == (lse ? 3 : 4));
}

bk_tensor_spec bk_paged_decode_spec(const bk_paged_decode_desc *d, const bk_tensor *t, bool lse, const char *name,
                                    uint32_t layout)
{
    const int64_t B = d->batch, R = bk_paged_decode_rows(d), H = d->q_heads, D = d->paged_kv.head_dim;
    bk_tensor_spec s = {name, lse ? BK_DTYPE_F32 : d->paged_kv.dtype, 0, {0}, NULL, layout};
    if (decode_has_rows(d, t, lse)) {
        s.rank = lse ? 3 : 4;
        s.shape[0] = B;
        s.shape[1] = R;
        s.shape[2] = H;
        s.shape[3] = D;
        s.dims = lse ? "batch,q_rows_per_request,q_heads" : "batch,q_rows_per_request,q_heads,head_dim";
    } else {
        s.rank = lse ? 2 : 3;
        s.shape[0] = B;
        s.shape[1] = H;
        s.shape[2] = D;
        s.dims = lse ? "batch,q_heads" : "batch,q_heads,head_dim";
    }
    return s;
}

void bk_paged_decode_strides(const bk_paged_decode_desc *d, const bk_tensor *t, bool lse, int64_t strides[3])
{
    if (decode_has_rows(d, t, lse)) {
        strides[0] = t->strides[0];
        strides[1] = t->strides[1];
        strides[2] = t->strides[2];
    } else {
        strides[0] = t->strides[0];
        strides[1] = 0;
        strides[2] = t->strides[1];
    }
}
