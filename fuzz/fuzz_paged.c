/* fuzz_paged.c - paged_decode, paged_prefill and attention_merge from fuzz bytes (see
 * fuzz.h). */
#include "fuzz.h"

static bk_paged_kv_desc read_pool(fz *f)
{
    static const int32_t dims[] = {64, 128, 256, 64, 64, 32, 0, 65};
    bk_paged_kv_desc p;
    p.num_pages = fz_extent(f);
    p.kv_heads = fz_extent(f);
    p.page_size = fz_extent(f);
    p.head_dim = fz_bool(f) ? fz_pick(f, dims, 8) : fz_extent(f);
    p.dtype = fz_dtype(f);
    return p;
}

/* Keys a request can see at most: the pages listed times page_size (the view's extent may
 * be a mutated, negative one: then its magnitude). */
static double keys_of(const bk_paged_kv *kv, const bk_paged_kv_desc *p)
{
    double n = (double)kv->kv_indices.shape[0];
    return (n < 0 ? -n : n) * p->page_size + 1.0;
}

static void decode(fz *f)
{
    bk_paged_decode_desc d;
    d.batch = fz_extent(f);
    d.q_heads = fz_extent(f);
    d.scale = fz_scalar(f);
    d.kv_splits = fz_bool(f) ? 0 : fz_extent(f);
    d.paged_kv = read_pool(f);
    bk_paged_decode_plan plan;
    if (!FZ_SELECT(f, paged_decode, &d, &plan))
        return;
    const bk_paged_kv_desc *p = &d.paged_kv;
    int64_t sq[3] = {d.batch, d.q_heads, p->head_dim}, sl[2] = {d.batch, d.q_heads};
    bk_paged_decode_args a;
    bk_tensor lse;
    a.q = fz_tensor(f, p->dtype, 3, sq, FZ_IN);
    a.kv = fz_paged_kv(f, p, d.batch, FZ_IN);
    a.o = fz_tensor(f, p->dtype, 3, sq, FZ_OUT);
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 2, sl, FZ_OUT);
    FZ_FINISH(f, paged_decode, &plan, &a, (double)d.batch * d.q_heads * p->head_dim * keys_of(&a.kv, p));
}

static void prefill(fz *f)
{
    bk_paged_prefill_desc d;
    d.batch = fz_extent(f);
    d.total_rows = fz_extent(f);
    d.q_heads = fz_extent(f);
    d.scale = fz_scalar(f);
    d.causal = fz_bool(f);
    d.enable_kv_split = fz_bool(f);
    d.paged_kv = read_pool(f);
    bk_paged_prefill_plan plan;
    if (!FZ_SELECT(f, paged_prefill, &d, &plan))
        return;
    const bk_paged_kv_desc *p = &d.paged_kv;
    int64_t sq[3] = {d.total_rows, d.q_heads, p->head_dim}, sl[2] = {d.total_rows, d.q_heads};
    int64_t sp[1] = {(int64_t)d.batch + 1};
    bk_paged_prefill_args a;
    bk_tensor lse;
    a.q = fz_tensor(f, p->dtype, 3, sq, FZ_IN);
    a.q_indptr = fz_tensor(f, BK_DTYPE_I32, 1, sp, FZ_IN);
    fz_fill_index(f, &a.q_indptr, FZ_IDX_PTR, d.total_rows);
    a.kv = fz_paged_kv(f, p, d.batch, FZ_IN);
    a.o = fz_tensor(f, p->dtype, 3, sq, FZ_OUT);
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 2, sl, FZ_OUT);
    FZ_FINISH(f, paged_prefill, &plan, &a, (double)d.total_rows * d.q_heads * p->head_dim * keys_of(&a.kv, p));
}

static void merge(fz *f)
{
    bk_attention_merge_desc d;
    d.rows = fz_extent(f);
    d.parts = fz_extent(f);
    d.heads = fz_extent(f);
    d.head_dim = fz_extent(f);
    d.dtype = fz_dtype(f);
    bk_attention_merge_plan plan;
    if (!FZ_SELECT(f, attention_merge, &d, &plan))
        return;
    int64_t sop[4] = {d.rows, d.parts, d.heads, d.head_dim}, slp[3] = {d.rows, d.parts, d.heads};
    int64_t so[3] = {d.rows, d.heads, d.head_dim}, sl[2] = {d.rows, d.heads};
    bk_attention_merge_args a;
    bk_tensor lse;
    a.o_parts = fz_tensor(f, d.dtype, 4, sop, FZ_IN);
    a.lse_parts = fz_tensor(f, BK_DTYPE_F32, 3, slp, FZ_IN);
    a.o = fz_tensor(f, d.dtype, 3, so, FZ_OUT);
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 2, sl, FZ_OUT);
    FZ_FINISH(f, attention_merge, &plan, &a, (double)d.rows * d.parts * d.heads * d.head_dim);
}

void fz_body(fz *f)
{
    switch (fz_u8(f) % 3) {
    case 0: decode(f); break;
    case 1: prefill(f); break;
    default: merge(f); break;
    }
}
