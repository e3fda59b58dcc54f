/* fuzz_ssd.c - ssd_fwd and ssd_bwd from fuzz bytes (see fuzz.h). */
#include "fuzz.h"

static bk_ssd_desc read_desc(fz *f)
{
    bk_ssd_desc d;
    d.batch = fz_extent(f);
    d.seq_len = fz_extent(f);
    d.heads = fz_extent(f);
    d.head_dim = fz_extent(f);
    d.state_dim = fz_extent(f);
    d.chunk_size = fz_extent(f);
    d.dtype = fz_dtype(f);
    return d;
}

/* The shapes of the x-like, dt-like, A-like and B/C-like tensors. */
typedef struct shapes {
    int64_t x[4], dt[3], a[1], bc[4];
} shapes;

static shapes shapes_of(const bk_ssd_desc *d)
{
    shapes s = {{d->batch, d->seq_len, d->heads, d->head_dim},
                {d->batch, d->seq_len, d->heads},
                {d->heads},
                {d->batch, d->seq_len, d->heads, d->state_dim}};
    return s;
}

static double work_of(const bk_ssd_desc *d)
{
    double q = d->chunk_size < d->seq_len ? d->chunk_size : d->seq_len;
    return (double)d->batch * d->heads * d->seq_len * ((q + 1) * (d->head_dim + d->state_dim + 1) +
                                                       (double)d->head_dim * d->state_dim);
}

static void fwd(fz *f)
{
    bk_ssd_desc d = read_desc(f);
    bk_ssd_fwd_plan plan;
    fz_sel sel = fz_select_args(f);
    fz_plan_poison(&plan, sizeof plan);
    bk_status s = bk_ssd_fwd_select(sel.null_desc ? NULL : &d, sel.target, sel.preference,
                                    sel.null_plan ? NULL : &plan);
    if (fz_selected(f, "ssd_fwd", &plan, sizeof plan, s) != BK_STATUS_SUCCESS)
        return;
    shapes sh = shapes_of(&d);
    bk_ssd_fwd_args a;
    a.x = fz_tensor(f, d.dtype, 4, sh.x, FZ_IN);
    a.dt = fz_tensor(f, d.dtype, 3, sh.dt, FZ_IN);
    a.a = fz_tensor(f, d.dtype, 1, sh.a, FZ_IN);
    a.b = fz_tensor(f, d.dtype, 4, sh.bc, FZ_IN);
    a.c = fz_tensor(f, d.dtype, 4, sh.bc, FZ_IN);
    a.y = fz_tensor(f, d.dtype, 4, sh.x, FZ_OUT);
    bool null_args = fz_null(f);
    fz_status(f, "ssd_fwd", FZ_CAN_IMPLEMENT, bk_ssd_fwd_can_implement(&plan, null_args ? NULL : &a));
    bk_workspace ws = fz_workspace(f, bk_ssd_fwd_workspace_size(&plan));
    if (!fz_cheap(work_of(&d)))
        return;
    fz_snapshot(f);
    s = bk_ssd_fwd_run(&plan, NULL, ws, null_args ? NULL : &a);
    fz_status(f, "ssd_fwd", FZ_RUN, s);
    fz_after_run(f, s);
}

static void bwd(fz *f)
{
    bk_ssd_desc d = read_desc(f);
    bk_ssd_bwd_plan plan;
    fz_sel sel = fz_select_args(f);
    fz_plan_poison(&plan, sizeof plan);
    bk_status s = bk_ssd_bwd_select(sel.null_desc ? NULL : &d, sel.target, sel.preference,
                                    sel.null_plan ? NULL : &plan);
    if (fz_selected(f, "ssd_bwd", &plan, sizeof plan, s) != BK_STATUS_SUCCESS)
        return;
    shapes sh = shapes_of(&d);
    bk_ssd_bwd_args a;
    a.x = fz_tensor(f, d.dtype, 4, sh.x, FZ_IN);
    a.dt = fz_tensor(f, d.dtype, 3, sh.dt, FZ_IN);
    a.a = fz_tensor(f, d.dtype, 1, sh.a, FZ_IN);
    a.b = fz_tensor(f, d.dtype, 4, sh.bc, FZ_IN);
    a.c = fz_tensor(f, d.dtype, 4, sh.bc, FZ_IN);
    a.dy = fz_tensor(f, d.dtype, 4, sh.x, FZ_IN);
    a.dx = fz_tensor(f, d.dtype, 4, sh.x, FZ_OUT);
    a.ddt = fz_tensor(f, d.dtype, 3, sh.dt, FZ_OUT);
    a.da = fz_tensor(f, d.dtype, 1, sh.a, FZ_OUT);
    a.db = fz_tensor(f, d.dtype, 4, sh.bc, FZ_OUT);
    a.dc = fz_tensor(f, d.dtype, 4, sh.bc, FZ_OUT);
    bool null_args = fz_null(f);
    fz_status(f, "ssd_bwd", FZ_CAN_IMPLEMENT, bk_ssd_bwd_can_implement(&plan, null_args ? NULL : &a));
    bk_workspace ws = fz_workspace(f, bk_ssd_bwd_workspace_size(&plan));
    if (!fz_cheap(3.0 * work_of(&d)))
        return;
    fz_snapshot(f);
    s = bk_ssd_bwd_run(&plan, NULL, ws, null_args ? NULL : &a);
    fz_status(f, "ssd_bwd", FZ_RUN, s);
    fz_after_run(f, s);
}

void fz_body(fz *f)
{
    if (fz_bool(f))
        bwd(f);
    else
        fwd(f);
}
