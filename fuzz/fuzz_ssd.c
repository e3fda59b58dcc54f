/* fuzz_ssd.c - ssd_fwd and ssd_bwd from fuzz bytes (see fuzz.h). */
#include "fuzz.h"

static bk_ssd_desc read_desc(fz *f)
{
    bk_ssd_desc d = {0}; /* every option off */
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

/* One tensor of each role (x-like, dt-like, A-like, two B/C-like): the five inputs both
 * directions read (role FZ_IN) or the backward's five gradients (FZ_OUT). */
static void five(fz *f, const bk_ssd_desc *d, fz_role role, bk_tensor t[5])
{
    shapes s = shapes_of(d);
    t[0] = fz_tensor(f, d->dtype, 4, s.x, role);
    t[1] = fz_tensor(f, d->dtype, 3, s.dt, role);
    t[2] = fz_tensor(f, d->dtype, 1, s.a, role);
    t[3] = fz_tensor(f, d->dtype, 4, s.bc, role);
    t[4] = fz_tensor(f, d->dtype, 4, s.bc, role);
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
    if (!FZ_SELECT(f, ssd_fwd, &d, &plan))
        return;
    bk_tensor in[5];
    five(f, &d, FZ_IN, in);
    shapes s = shapes_of(&d);
    /* the options' tensors stay NULL: read_desc leaves every option off */
    bk_ssd_fwd_args a = {.x = in[0], .dt = in[1], .a = in[2], .b = in[3], .c = in[4],
                         .y = fz_tensor(f, d.dtype, 4, s.x, FZ_OUT)};
    FZ_FINISH(f, ssd_fwd, &plan, &a, work_of(&d));
}

static void bwd(fz *f)
{
    bk_ssd_desc d = read_desc(f);
    bk_ssd_bwd_plan plan;
    if (!FZ_SELECT(f, ssd_bwd, &d, &plan))
        return;
    bk_tensor in[5], out[5];
    five(f, &d, FZ_IN, in);
    shapes s = shapes_of(&d);
    bk_tensor dy = fz_tensor(f, d.dtype, 4, s.x, FZ_IN);
    five(f, &d, FZ_OUT, out);
    bk_ssd_bwd_args a = {.x = in[0], .dt = in[1], .a = in[2], .b = in[3], .c = in[4], .dy = dy,
                         .dx = out[0], .ddt = out[1], .da = out[2], .db = out[3], .dc = out[4]};
    FZ_FINISH(f, ssd_bwd, &plan, &a, 3.0 * work_of(&d));
}

void fz_body(fz *f)
{
    if (fz_bool(f))
        bwd(f);
    else
        fwd(f);
}
