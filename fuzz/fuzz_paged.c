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

/* Keys a request can see at most: the pages listed times page_size. */
static double keys_of(const fz *f, const bk_paged_kv *kv, const bk_paged_kv_desc *p)
{
    return (double)kv->kv_indices.shape[0] * p->page_size + (double)(f->n > 0);
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
    fz_sel sel = fz_select_args(f);
    fz_plan_poison(&plan, sizeof plan);
    bk_status s = bk_paged_decode_select(sel.null_desc ? NULL : &d, sel.target, sel.preference,
                                         sel.null_plan ? NULL : &plan);
    if (fz_selected(f, "paged_decode", &plan, sizeof plan, s) != BK_STATUS_SUCCESS)
        return;
    const bk_paged_kv_desc *p = &d.paged_kv;
    int64_t sq[3] = {d.batch, d.q_heads, p->head_dim}, sl[2] = {d.batch, d.q_heads};
    bk_paged_decode_args a;
    bk_tensor lse;
    a.q = fz_tensor(f, p->dtype, 3, sq, FZ_IN);
    a.kv = fz_paged_kv(f, p, d.batch, FZ_IN);
    a.o = fz_tensor(f, p->dtype, 3, sq, FZ_OUT);
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 2, sl, FZ_OUT);
    bool null_args = fz_null(f);
    fz_status(f, "paged_decode", FZ_CAN_IMPLEMENT, bk_paged_decode_can_implement(&plan, null_args ? NULL : &a));
    bk_workspace ws = fz_workspace(f, bk_paged_decode_workspace_size(&plan));
    if (!fz_cheap((double)d.batch * d.q_heads * p->head_dim * keys_of(f, &a.kv, p)))
        return;
    fz_snapshot(f);
    s = bk_paged_decode_run(&plan, NULL, ws, null_args ? NULL : &a);
    fz_status(f, "paged_decode", FZ_RUN, s);
    fz_after_run(f, s);
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
    fz_sel sel = fz_select_args(f);
    fz_plan_poison(&plan, sizeof plan);
    bk_status s = bk_paged_prefill_select(sel.null_desc ? NULL : &d, sel.target, sel.preference,
                                          sel.null_plan ? NULL : &plan);
    if (fz_selected(f, "paged_prefill", &plan, sizeof plan, s) != BK_STATUS_SUCCESS)
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
    bool null_args = fz_null(f);
    fz_status(f, "paged_prefill", FZ_CAN_IMPLEMENT, bk_paged_prefill_can_implement(&plan, null_args ? NULL : &a));
    bk_workspace ws = fz_workspace(f, bk_paged_prefill_workspace_size(&plan));
    if (!fz_cheap((double)d.total_rows * d.q_heads * p->head_dim * keys_of(f, &a.kv, p)))
        return;
    fz_snapshot(f);
    s = bk_paged_prefill_run(&plan, NULL, ws, null_args ? NULL : &a);
    fz_status(f, "paged_prefill", FZ_RUN, s);
    fz_after_run(f, s);
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
    fz_sel sel = fz_select_args(f);
    fz_plan_poison(&plan, sizeof plan);
    bk_status s = bk_attention_merge_select(sel.null_desc ? NULL : &d, sel.target, sel.preference,
                                            sel.null_plan ? NULL : &plan);
    if (fz_selected(f, "attention_merge", &plan, sizeof plan, s) != BK_STATUS_SUCCESS)
        return;
    int64_t sop[4] = {d.rows, d.parts, d.heads, d.head_dim}, slp[3] = {d.rows, d.parts, d.heads};
    int64_t so[3] = {d.rows, d.heads, d.head_dim}, sl[2] = {d.rows, d.heads};
    bk_attention_merge_args a;
    bk_tensor lse;
    a.o_parts = fz_tensor(f, d.dtype, 4, sop, FZ_IN);
    a.lse_parts = fz_tensor(f, BK_DTYPE_F32, 3, slp, FZ_IN);
    a.o = fz_tensor(f, d.dtype, 3, so, FZ_OUT);
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 2, sl, FZ_OUT);
    bool null_args = fz_null(f);
    fz_status(f, "attention_merge", FZ_CAN_IMPLEMENT,
              bk_attention_merge_can_implement(&plan, null_args ? NULL : &a));
    bk_workspace ws = fz_workspace(f, bk_attention_merge_workspace_size(&plan));
    if (!fz_cheap((double)d.rows * d.parts * d.heads * d.head_dim))
        return;
    fz_snapshot(f);
    s = bk_attention_merge_run(&plan, NULL, ws, null_args ? NULL : &a);
    fz_status(f, "attention_merge", FZ_RUN, s);
    fz_after_run(f, s);
}

void fz_body(fz *f)
{
    switch (fz_u8(f) % 3) {
    case 0: decode(f); break;
    case 1: prefill(f); break;
    default: merge(f); break;
    }
}
