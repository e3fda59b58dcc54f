/* fuzz_kvcache.c - kv_append and paged_kv_append from fuzz bytes (see fuzz.h). */
#include "fuzz.h"

static void kv_append(fz *f)
{
    bk_kv_append_desc d;
    d.batch = fz_extent(f);
    d.heads = fz_extent(f);
    d.new_len = fz_extent(f);
    d.max_cache_len = fz_extent(f);
    d.head_dim_k = fz_extent(f);
    d.head_dim_v = fz_bool(f) ? d.head_dim_k : fz_extent(f);
    d.dtype = fz_dtype(f);
    bk_kv_append_plan plan;
    if (!FZ_SELECT(f, kv_append, &d, &plan))
        return;
    int64_t kn[4] = {d.batch, d.heads, d.new_len, d.head_dim_k}, vn[4] = {d.batch, d.heads, d.new_len, d.head_dim_v};
    int64_t kc[4] = {d.batch, d.heads, d.max_cache_len, d.head_dim_k};
    int64_t vc[4] = {d.batch, d.heads, d.max_cache_len, d.head_dim_v};
    int64_t so[1] = {d.batch}, sd[1] = {1};
    bk_kv_append_args a;
    bk_tensor dropped;
    a.k_new = fz_tensor(f, d.dtype, 4, kn, FZ_IN);
    a.v_new = fz_tensor(f, d.dtype, 4, vn, FZ_IN);
    a.cache_offsets = fz_tensor(f, BK_DTYPE_I64, 1, so, FZ_IN);
    fz_fill_index(f, &a.cache_offsets, FZ_IDX_OFFSET, (int64_t)d.max_cache_len - d.new_len);
    a.k_cache = fz_tensor(f, d.dtype, 4, kc, FZ_OUT);
    a.v_cache = fz_tensor(f, d.dtype, 4, vc, FZ_OUT);
    a.dropped_rows = fz_optional(f, &dropped, BK_DTYPE_I64, 1, sd, FZ_IN); /* never written on the CPU */
    FZ_FINISH(f, kv_append, &plan, &a, (double)d.batch * d.heads * d.new_len * ((double)d.head_dim_k + d.head_dim_v));
}

static void paged_kv_append(fz *f)
{
    bk_paged_kv_append_desc d;
    d.batch = fz_extent(f);
    d.nnz = fz_extent(f);
    d.paged_kv.num_pages = fz_extent(f);
    d.paged_kv.kv_heads = fz_extent(f);
    d.paged_kv.page_size = fz_extent(f);
    d.paged_kv.head_dim = fz_extent(f);
    d.paged_kv.dtype = fz_dtype(f);
    bk_paged_kv_append_plan plan;
    if (!FZ_SELECT(f, paged_kv_append, &d, &plan))
        return;
    const bk_paged_kv_desc *p = &d.paged_kv;
    int64_t sn[3] = {d.nnz, p->kv_heads, p->head_dim}, sp[1] = {(int64_t)d.batch + 1}, sd[1] = {1};
    bk_paged_kv_append_args a;
    bk_tensor dropped;
    a.k_new = fz_tensor(f, p->dtype, 3, sn, FZ_IN);
    a.v_new = fz_tensor(f, p->dtype, 3, sn, FZ_IN);
    a.append_indptr = fz_tensor(f, BK_DTYPE_I32, 1, sp, FZ_IN);
    fz_fill_index(f, &a.append_indptr, FZ_IDX_PTR, d.nnz);
    a.kv = fz_paged_kv(f, p, d.batch, FZ_OUT);
    a.dropped_rows = fz_optional(f, &dropped, BK_DTYPE_I64, 1, sd, FZ_IN);
    FZ_FINISH(f, paged_kv_append, &plan, &a, (double)d.nnz * p->kv_heads * p->head_dim + (double)d.batch * p->kv_heads);
}

void fz_body(fz *f)
{
    if (fz_bool(f))
        paged_kv_append(f);
    else
        kv_append(f);
}
