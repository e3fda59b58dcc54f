/* fuzz_attention.c - sdpa_fwd and sdpa_bwd from fuzz bytes (see fuzz.h). */
#include "fuzz.h"

static bk_sdpa_fwd_desc read_desc(fz *f)
{
    bk_sdpa_fwd_desc d;
    d.batch = fz_extent(f);
    d.q_heads = fz_extent(f);
    d.kv_heads = fz_extent(f);
    d.q_len = fz_extent(f);
    d.kv_len = fz_extent(f);
    d.head_dim_qk = fz_extent(f);
    d.head_dim_v = fz_bool(f) ? d.head_dim_qk : fz_extent(f);
    d.scale = fz_scalar(f);
    d.causal = fz_bool(f);
    d.window_left = fz_bool(f) ? -1 : fz_extent(f);
    d.softcap = fz_bool(f) ? 0.0 : fz_scalar(f);
    d.alibi = fz_bool(f);
    d.dtype = fz_dtype(f);
    return d;
}

/* The shapes of q, k, v, y and lse for the descriptor. */
typedef struct shapes {
    int64_t q[4], k[4], v[4], y[4], lse[3], slopes[1];
} shapes;

static shapes shapes_of(const bk_sdpa_fwd_desc *d)
{
    shapes s = {{d->batch, d->q_heads, d->q_len, d->head_dim_qk},
                {d->batch, d->kv_heads, d->kv_len, d->head_dim_qk},
                {d->batch, d->kv_heads, d->kv_len, d->head_dim_v},
                {d->batch, d->q_heads, d->q_len, d->head_dim_v},
                {d->batch, d->q_heads, d->q_len},
                {d->q_heads}};
    return s;
}

static double work_of(const bk_sdpa_fwd_desc *d)
{
    return (double)d->batch * d->q_heads * d->q_len * ((double)d->kv_len + 1) * (d->head_dim_qk + d->head_dim_v);
}

static void fwd(fz *f)
{
    bk_sdpa_fwd_desc d = read_desc(f);
    bk_sdpa_fwd_plan plan;
    fz_sel sel = fz_select_args(f);
    fz_plan_poison(&plan, sizeof plan);
    bk_status s = bk_sdpa_fwd_select(sel.null_desc ? NULL : &d, sel.target, sel.preference,
                                     sel.null_plan ? NULL : &plan);
    if (fz_selected(f, "sdpa_fwd", &plan, sizeof plan, s) != BK_STATUS_SUCCESS)
        return;
    shapes sh = shapes_of(&d);
    bk_sdpa_fwd_args a;
    bk_tensor lse, slopes;
    a.q = fz_tensor(f, d.dtype, 4, sh.q, FZ_IN);
    a.k = fz_tensor(f, d.dtype, 4, sh.k, FZ_IN);
    a.v = fz_tensor(f, d.dtype, 4, sh.v, FZ_IN);
    a.y = fz_tensor(f, d.dtype, 4, sh.y, FZ_OUT);
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 3, sh.lse, FZ_OUT);
    a.alibi_slopes = fz_optional(f, &slopes, BK_DTYPE_F32, 1, sh.slopes, FZ_IN);
    bool null_args = fz_null(f);
    fz_status(f, "sdpa_fwd", FZ_CAN_IMPLEMENT, bk_sdpa_fwd_can_implement(&plan, null_args ? NULL : &a));
    bk_workspace ws = fz_workspace(f, bk_sdpa_fwd_workspace_size(&plan));
    if (!fz_cheap(work_of(&d)))
        return;
    fz_snapshot(f);
    s = bk_sdpa_fwd_run(&plan, NULL, ws, null_args ? NULL : &a);
    fz_status(f, "sdpa_fwd", FZ_RUN, s);
    fz_after_run(f, s);
}

static void bwd(fz *f)
{
    bk_sdpa_bwd_desc d = read_desc(f);
    bk_sdpa_bwd_plan plan;
    fz_sel sel = fz_select_args(f);
    fz_plan_poison(&plan, sizeof plan);
    bk_status s = bk_sdpa_bwd_select(sel.null_desc ? NULL : &d, sel.target, sel.preference,
                                     sel.null_plan ? NULL : &plan);
    if (fz_selected(f, "sdpa_bwd", &plan, sizeof plan, s) != BK_STATUS_SUCCESS)
        return;
    shapes sh = shapes_of(&d);
    bk_sdpa_bwd_args a;
    bk_tensor slopes;
    a.q = fz_tensor(f, d.dtype, 4, sh.q, FZ_IN);
    a.k = fz_tensor(f, d.dtype, 4, sh.k, FZ_IN);
    a.v = fz_tensor(f, d.dtype, 4, sh.v, FZ_IN);
    a.y = fz_tensor(f, d.dtype, 4, sh.y, FZ_IN);
    a.dy = fz_tensor(f, d.dtype, 4, sh.y, FZ_IN);
    a.lse = fz_tensor(f, BK_DTYPE_F32, 3, sh.lse, FZ_IN);
    a.alibi_slopes = fz_optional(f, &slopes, BK_DTYPE_F32, 1, sh.slopes, FZ_IN);
    a.dq = fz_tensor(f, d.dtype, 4, sh.q, FZ_OUT);
    a.dk = fz_tensor(f, d.dtype, 4, sh.k, FZ_OUT);
    a.dv = fz_tensor(f, d.dtype, 4, sh.v, FZ_OUT);
    bool null_args = fz_null(f);
    fz_status(f, "sdpa_bwd", FZ_CAN_IMPLEMENT, bk_sdpa_bwd_can_implement(&plan, null_args ? NULL : &a));
    bk_workspace ws = fz_workspace(f, bk_sdpa_bwd_workspace_size(&plan));
    if (!fz_cheap(3.0 * work_of(&d)))
        return;
    fz_snapshot(f);
    s = bk_sdpa_bwd_run(&plan, NULL, ws, null_args ? NULL : &a);
    fz_status(f, "sdpa_bwd", FZ_RUN, s);
    fz_after_run(f, s);
}

void fz_body(fz *f)
{
    if (fz_bool(f))
        bwd(f);
    else
        fwd(f);
}
