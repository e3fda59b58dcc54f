/* test_ssd_step.c - ssd_step (one token per request on a pool of states) against the
 * fixture's sequential f64 reference (bk_ssd_test.c, one step from the pool's states):
 * every dtype, every option (ngroups 1 / 2 / 8 / heads, skip per head and per channel, z,
 * dt_bias, softplus, dt limit), state indices in any order and none (request r uses state
 * r), every state outside the requests' untouched; prefill with ssd_fwd writing its final
 * states into the pool, then steps, equals ssd_fwd over the whole sequence; out-of-pool
 * indices (CPU: OUT_OF_RANGE, nothing written; CUDA: skipped and counted); bad inputs with
 * their exact status; every case on every backend present. */
#include "bk_ssd_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const bk_dtype k_dtypes[] = {BK_DTYPE_F32, BK_DTYPE_F64, BK_DTYPE_F16, BK_DTYPE_BF16};

/* A view of position t of a [B, L, X, W] view: [B, X, W] (or [B, X] for a rank-3 one). */
static bk_tensor at_step(const bk_tensor *t, int64_t pos)
{
    bk_tensor v = *t;
    v.data = (char *)t->data + pos * t->strides[1] * (int64_t)bk_dtype_size(t->dtype);
    v.rank = t->rank - 1;
    v.shape[1] = t->shape[2], v.strides[1] = t->strides[2];
    v.shape[2] = t->shape[3], v.strides[2] = t->strides[3];
    v.shape[3] = 0, v.strides[3] = 0;
    v.capacity = 0; /* unknown: the view starts inside the buffer */
    return v;
}

static bk_ssd_step_desc step_desc(const bkt_ssd_opts *o, bk_dtype dt, int64_t pool, bool indices)
{
    bk_ssd_step_desc d = {.batch = (int32_t)o->b,
                          .pool = (int32_t)pool,
                          .heads = (int32_t)o->h,
                          .head_dim = (int32_t)o->d,
                          .state_dim = (int32_t)o->n,
                          .dtype = dt,
                          .ngroups = o->ngroups,
                          .skip = o->skip,
                          .has_z = o->z,
                          .has_dt_bias = o->bias,
                          .dt_softplus = o->softplus,
                          .has_dt_limit = o->limit,
                          .dt_min = o->lo,
                          .dt_max = o->hi,
                          .has_state_indices = indices};
    return d;
}

/* The step's tensors at position t of the fixture's sequence tensors. */
static bk_ssd_step_args step_args(const bkt_ssd_problem *p, int64_t t, bk_tensor state, bk_tensor y,
                                  bk_tensor *z_at)
{
    const bk_ssd_fwd_args f = bkt_ssd_fwd_inputs(p);
    bk_ssd_step_args a = {.state = state,
                          .x = at_step(&f.x, t),
                          .dt = at_step(&f.dt, t),
                          .a = f.a,
                          .b = at_step(&f.b, t),
                          .c = at_step(&f.c, t),
                          .y = y,
                          .skip = f.skip,
                          .dt_bias = f.dt_bias};
    if (f.z) {
        *z_at = at_step(f.z, t);
        a.z = z_at;
    }
    return a;
}

/* Runs the step on `target`: the fixture's buffers go up whole (the views point inside
 * them), the pool and y come back, dropped_requests too when given. */
static bk_status run_step_on(bk_target target, const bk_ssd_step_plan *plan, const bkt_ssd_problem *p,
                             const bk_ssd_step_args *host, int64_t pool_span, int64_t y_span)
{
    const size_t es = bk_dtype_size(p->dtype);
    bkt_dev dev = bkt_dev_begin(target);
    bk_ssd_step_args a = *host;
    bk_tensor opt_copy[5];
    a.x = bkt_moved(&dev, a.x, p->x.data, (size_t)p->x.span * es, false);
    a.dt = bkt_moved(&dev, a.dt, p->dt.data, (size_t)p->dt.span * es, false);
    a.a = bkt_moved(&dev, a.a, p->a.data, (size_t)p->a.span * es, false);
    a.b = bkt_moved(&dev, a.b, p->b.data, (size_t)p->b.span * es, false);
    a.c = bkt_moved(&dev, a.c, p->c.data, (size_t)p->c.span * es, false);
    a.state = bkt_moved(&dev, a.state, host->state.data, (size_t)pool_span * es, true);
    a.y = bkt_moved(&dev, a.y, host->y.data, (size_t)y_span * es, true);
    const bk_tensor **opt[5] = {&a.skip, &a.z, &a.dt_bias, &a.state_indices, &a.dropped_requests};
    void *from[5] = {p->skip.data, p->z.data, p->bias.data, NULL, NULL};
    size_t bytes[5] = {(size_t)p->skip.span * es, (size_t)p->z.span * es, (size_t)p->bias.span * es, 0, 8};
    if (a.state_indices) {
        from[3] = a.state_indices->data;
        bytes[3] = (size_t)(a.state_indices->shape[0] + 1) * 4;
    }
    if (a.dropped_requests)
        from[4] = a.dropped_requests->data;
    for (int i = 0; i < 5; i++)
        if (*opt[i]) {
            opt_copy[i] = bkt_moved(&dev, **opt[i], from[i], bytes[i], i == 4);
            *opt[i] = &opt_copy[i];
        }
    bk_status st = bk_ssd_step_run(plan, bkt_dev_stream(&dev), (bk_workspace){NULL, 0}, &a);
    if (!bkt_dev_end(&dev) && st == BK_STATUS_SUCCESS)
        st = BK_STATUS_DEVICE_ERROR;
    return st;
}

/* One step of R requests on a pool of R + 3 states: request r uses state idx[r] (a random
 * permutation slice), or state r without indices. Checks y and the new states against the
 * reference and every other state's bytes. */
static void test_step(bk_target target, bk_dtype dt, bkt_ssd_opts o, bool indices, int64_t pad)
{
    char what[256], txt[200];
    o.l = 1, o.chunk = 1, o.init = true, o.final = true, o.seq = false, o.nv = 0;
    bkt_ssd_opts_text(&o, txt, sizeof txt);
    snprintf(what, sizeof what, "ssd_step %s%s%s%s%s", bk_dtype_name(dt), txt, indices ? " indices" : "",
             pad ? " strided" : "", target.kind == BK_TARGET_CUDA ? " cuda" : "");
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, dt, pad);
    const int64_t R = o.b, H = o.h, D = o.d, N = o.n, HDN = H * D * N, pool = R + 3;
    /* the pool, and the indices: a shuffled 0..pool-1, first R */
    bkt_buf st;
    int64_t sp[4] = {pool, H, D, N}, sy[3] = {R, H, D};
    bkt_buf_make(&st, dt, 4, sp, pad, -1, 1);
    int32_t idx[64];
    for (int64_t i = 0; i < pool; i++)
        idx[i] = (int32_t)i;
    for (int64_t i = pool - 1; indices && i > 0; i--) {
        int64_t j = bkt_randint(0, i);
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    for (int64_t r = 0; r < R; r++) /* the reference starts from the pool's states */
        memcpy(p.init.val + r * HDN, st.val + idx[r] * HDN, (size_t)HDN * sizeof(double));
    double *y = malloc((size_t)(R * H * D + 1) * sizeof(double)), *fin = malloc((size_t)(R * HDN + 1) * sizeof(double));
    bkt_ssd_ref(&p, y, fin, NULL);
    double *want = malloc((size_t)(pool * HDN + 1) * sizeof(double));
    memcpy(want, st.val, (size_t)(pool * HDN) * sizeof(double));
    for (int64_t r = 0; r < R; r++)
        memcpy(want + idx[r] * HDN, fin + r * HDN, (size_t)HDN * sizeof(double));
    bkt_buf yb;
    bkt_buf_make(&yb, dt, 3, sy, pad, 0, 0);
    bkt_poison(yb.data, dt, yb.span);
    int64_t one[1] = {R};
    bk_tensor tidx = bkt_view(idx, BK_DTYPE_I32, 1, one);
    bk_tensor z_at;
    bk_ssd_step_args a = step_args(&p, 0, st.view, yb.view, &z_at);
    a.state_indices = indices ? &tidx : NULL;
    bk_ssd_step_desc d = step_desc(&o, dt, pool, indices);
    bk_ssd_step_plan plan;
    void *before = bkt_snapshot(st.data, (size_t)st.span * bk_dtype_size(dt));
    const double slack = target.kind == BK_TARGET_CUDA && dt != BK_DTYPE_F32 && dt != BK_DTYPE_F64 ? 3.0 : 1.0;
    if (bkt_expect_status(bk_ssd_step_select(&d, target, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what) &&
        bkt_expect_status(run_step_on(target, &plan, &p, &a, st.span, yb.span), BK_STATUS_SUCCESS, what)) {
        bkt_check_close(what, &yb.view, y, slack);
        /* untouched states keep their bytes; the requests' states match the reference */
        bkt_check_close(what, &st.view, want, slack);
        bkt_check(bkt_untouched_outside(&st.view, before, st.span), what, "the pool's padding was written");
        double *after = malloc((size_t)(pool * HDN + 1) * sizeof(double));
        bkt_gather(&st.view, after);
        for (int64_t i = R; i < pool; i++)
            bkt_check(memcmp(after + idx[i] * HDN, st.val + idx[i] * HDN, (size_t)HDN * sizeof(double)) == 0, what,
                      "state %d (no request) changed", (int)idx[i]);
        free(after);
    }
    bkt_free(before);
    free(y);
    free(fin);
    free(want);
    bkt_buf_free(&yb);
    bkt_buf_free(&st);
    bkt_ssd_free(&p);
}

/* Runs the forward on `target` with `host`'s views, which point into p's buffers (inputs),
 * y_buf and fin_buf (outputs, fin_bytes long): each moved to the device copy of its buffer,
 * the outputs back at the end; a zeroed workspace of exactly workspace_size bytes. */
static bk_status run_fwd_on(bk_target target, const bk_ssd_fwd_plan *plan, const bkt_ssd_problem *p,
                            const bk_ssd_fwd_args *host, const bkt_buf *y_buf, void *fin_buf, size_t fin_bytes)
{
    const size_t es = bk_dtype_size(p->dtype), bytes = bk_ssd_fwd_workspace_size(plan);
    bkt_dev dev = bkt_dev_begin(target);
    bk_ssd_fwd_args a = *host;
    bk_tensor opt_copy[5];
    const bkt_buf *in[5] = {&p->x, &p->dt, &p->a, &p->b, &p->c};
    bk_tensor *req[5] = {&a.x, &a.dt, &a.a, &a.b, &a.c};
    for (int i = 0; i < 5; i++)
        *req[i] = bkt_moved(&dev, *req[i], in[i]->data, (size_t)in[i]->span * es, false);
    const bkt_buf *from[4] = {&p->skip, &p->z, &p->bias, &p->init};
    const bk_tensor **opt[4] = {&a.skip, &a.z, &a.dt_bias, &a.initial_states};
    for (int i = 0; i < 4; i++)
        if (*opt[i]) {
            opt_copy[i] = bkt_moved(&dev, **opt[i], from[i]->data, (size_t)from[i]->span * es, false);
            *opt[i] = &opt_copy[i];
        }
    a.y = bkt_moved(&dev, a.y, y_buf->data, (size_t)y_buf->span * es, true);
    opt_copy[4] = bkt_moved(&dev, *a.final_states, fin_buf, fin_bytes, true);
    a.final_states = &opt_copy[4];
    void *ws = bytes ? calloc(1, bytes) : NULL;
    void *dws = ws ? bkt_dev_in(&dev, ws, bytes) : NULL;
    bk_status st = bk_ssd_fwd_run(plan, bkt_dev_stream(&dev), (bk_workspace){dws, bytes}, &a);
    if (!bkt_dev_end(&dev) && st == BK_STATUS_SUCCESS)
        st = BK_STATUS_DEVICE_ERROR;
    free(ws);
    return st;
}

/* Prefill + steps == the whole forward. ssd_fwd over the first L0 tokens writes its final
 * states straight into the pool (a strided view: request b's state is pool state 2b + 1),
 * then ssd_step runs tokens L0 .. L-1 from the pool; every step's y equals ssd_fwd's y over
 * the whole sequence at that position, and the pool ends at its final states. Every call
 * runs on `target`. */
static void test_prefill_then_steps(bk_target target, bk_dtype dt, bkt_ssd_opts o, int64_t L0)
{
    char what[256], txt[200];
    o.init = true, o.final = true, o.seq = false, o.nv = 0;
    bkt_ssd_opts_text(&o, txt, sizeof txt);
    snprintf(what, sizeof what, "ssd prefill %lld + steps %s%s%s", (long long)L0, bk_dtype_name(dt), txt,
             target.kind == BK_TARGET_CUDA ? " cuda" : "");
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, dt, 0);
    const int64_t B = o.b, L = o.l, H = o.h, D = o.d, N = o.n, HDN = H * D * N, pool = 2 * B + 1;
    const size_t es = bk_dtype_size(dt);
    /* the whole sequence: y_all, fin_all */
    bkt_buf y_all, fin_all, ystep, pool_buf;
    int64_t sy[4] = {B, L, H, D}, sf[4] = {B, H, D, N}, s1[3] = {B, H, D}, sp[4] = {pool, H, D, N};
    bkt_buf_make(&y_all, dt, 4, sy, 0, 0, 0);
    bkt_buf_make(&fin_all, dt, 4, sf, 0, 0, 0);
    bkt_buf_make(&ystep, dt, 3, s1, 0, 0, 0);
    bkt_buf_make(&pool_buf, dt, 4, sp, 0, 0, 0);
    bkt_poison(pool_buf.data, dt, pool_buf.span);
    bk_ssd_desc d = bkt_ssd_desc(&p);
    bk_ssd_fwd_plan fplan;
    bk_ssd_step_plan splan;
    bk_ssd_step_desc sd = step_desc(&o, dt, pool, true);
    int32_t idx[32];
    for (int64_t b = 0; b < B; b++)
        idx[b] = (int32_t)(2 * b + 1);
    int64_t nb[1] = {B};
    bk_tensor tidx = bkt_view(idx, BK_DTYPE_I32, 1, nb);
    double *ref = malloc((size_t)(B * L * H * D + 1) * sizeof(double)), *rfin = malloc((size_t)(B * HDN + 1) * sizeof(double));
    double *got = malloc((size_t)(B * H * D + 1) * sizeof(double)), *want = malloc((size_t)(B * H * D + 1) * sizeof(double));
    bkt_ssd_ref(&p, ref, rfin, NULL);
    const double slack = dt == BK_DTYPE_F64 ? 10.0 : 3.0; /* states rounded to the dtype between calls */
    if (!bkt_expect_status(bk_ssd_fwd_select(&d, target, BK_PREFER_FASTEST, &fplan), BK_STATUS_SUCCESS, what) ||
        !bkt_expect_status(bk_ssd_step_select(&sd, target, BK_PREFER_FASTEST, &splan), BK_STATUS_SUCCESS, what))
        goto done;
    bk_ssd_fwd_args fa = bkt_ssd_fwd_inputs(&p);
    fa.y = y_all.view;
    fa.final_states = &fin_all.view;
    bkt_expect_status(run_fwd_on(target, &fplan, &p, &fa, &y_all, fin_all.data, (size_t)fin_all.span * es),
                      BK_STATUS_SUCCESS, what);
    bkt_check_close(what, &y_all.view, ref, target.kind == BK_TARGET_CUDA ? 3.0 : 1.0);
    /* prefill: the first L0 tokens, final states into pool states 1, 3, 5, ... */
    bk_ssd_desc dp = d;
    dp.seq_len = (int32_t)L0;
    bk_ssd_fwd_plan pplan;
    bk_tensor pool_view = pool_buf.view;
    pool_view.data = (char *)pool_buf.data + (size_t)HDN * es;
    pool_view.shape[0] = B;
    pool_view.strides[0] = 2 * HDN;
    pool_view.capacity = (2 * B - 1) * HDN;
    bk_ssd_fwd_args pa = fa;
    bk_tensor *cut[5] = {&pa.x, &pa.dt, &pa.b, &pa.c, NULL};
    bk_tensor zcut;
    if (pa.z) {
        zcut = *pa.z;
        pa.z = &zcut;
        cut[4] = &zcut;
    }
    for (int i = 0; i < 5; i++)
        if (cut[i])
            cut[i]->shape[1] = L0;
    bk_tensor ypre = y_all.view;
    ypre.shape[1] = L0;
    bkt_buf yp;
    bkt_buf_make(&yp, dt, 4, ypre.shape, 0, 0, 0);
    pa.y = yp.view;
    pa.final_states = &pool_view;
    bkt_expect_status(bk_ssd_fwd_select(&dp, target, BK_PREFER_FASTEST, &pplan), BK_STATUS_SUCCESS, what);
    bkt_expect_status(run_fwd_on(target, &pplan, &p, &pa, &yp, pool_buf.data, (size_t)pool_buf.span * es),
                      BK_STATUS_SUCCESS, what);
    bkt_buf_free(&yp);
    /* the steps */
    double worst = 0.0;
    for (int64_t t = L0; t < L; t++) {
        bkt_poison(ystep.data, dt, ystep.span);
        bk_tensor z_at;
        bk_ssd_step_args a = step_args(&p, t, pool_buf.view, ystep.view, &z_at);
        a.state_indices = &tidx;
        if (!bkt_expect_status(run_step_on(target, &splan, &p, &a, pool_buf.span, ystep.span), BK_STATUS_SUCCESS,
                               what))
            goto done;
        bkt_gather(&ystep.view, got);
        for (int64_t b = 0; b < B; b++) /* the whole forward's y at position t */
            for (int64_t i = 0; i < H * D; i++)
                want[b * H * D + i] = bkt_get(y_all.data, dt, (b * L + t) * H * D + i);
        double e = bkt_rel_err(got, want, B * H * D) / bkt_tol(dt, want, B * H * D);
        worst = e > worst ? e : worst;
    }
    bkt_check(worst <= slack, what, "step y vs the whole forward's y: %.2f x the tolerance (allowed %.0f)", worst,
              slack);
    bkt_check_close(what, &pool_view, rfin, slack);
done:
    free(ref);
    free(rfin);
    free(got);
    free(want);
    bkt_buf_free(&y_all);
    bkt_buf_free(&fin_all);
    bkt_buf_free(&ystep);
    bkt_buf_free(&pool_buf);
    bkt_ssd_free(&p);
}

/* Out-of-pool indices: CPU refuses (OUT_OF_RANGE, nothing written, dropped_requests not
 * touched); CUDA skips the request (its y and every state untouched) and counts it. */
static void test_out_of_pool(bk_target target)
{
    const bool gpu = target.kind == BK_TARGET_CUDA;
    static const int32_t bad_index[] = {5, -1, 1 << 30};
    for (size_t k = 0; k < sizeof bad_index / sizeof bad_index[0]; k++) {
        char what[128];
        snprintf(what, sizeof what, "ssd_step index %d outside a pool of 5%s", (int)bad_index[k], gpu ? " cuda" : "");
        bkt_ssd_opts o = {3, 1, 2, 3, 4, 1, 0, BK_SSD_SKIP_PER_HEAD, true, false, false, false, 0, 0,
                          true, true, false, 0, 0};
        bkt_ssd_problem p;
        bkt_ssd_make(&p, &o, BK_DTYPE_F32, 0);
        bkt_buf st, yb;
        int64_t sp[4] = {5, 2, 3, 4}, sy[3] = {3, 2, 3};
        bkt_buf_make(&st, BK_DTYPE_F32, 4, sp, 0, -1, 1);
        bkt_buf_make(&yb, BK_DTYPE_F32, 3, sy, 0, 0, 0);
        bkt_poison(yb.data, BK_DTYPE_F32, yb.span);
        int32_t idx[3] = {4, bad_index[k], 0};
        int64_t n3[1] = {3}, n1[1] = {1};
        int64_t dropped = gpu ? 0 : 0x5a5a;
        bk_tensor tidx = bkt_view(idx, BK_DTYPE_I32, 1, n3), tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, n1);
        bk_tensor z_at;
        bk_ssd_step_args a = step_args(&p, 0, st.view, yb.view, &z_at);
        a.state_indices = &tidx;
        a.dropped_requests = &tdrop;
        bk_ssd_step_desc d = step_desc(&o, BK_DTYPE_F32, 5, true);
        bk_ssd_step_plan plan;
        void *s0 = bkt_snapshot(st.data, (size_t)st.span * 4), *y0 = bkt_snapshot(yb.data, (size_t)yb.span * 4);
        if (bkt_expect_status(bk_ssd_step_select(&d, target, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
            bk_status s = run_step_on(target, &plan, &p, &a, st.span, yb.span);
            if (!gpu) {
                bkt_expect_status(s, BK_STATUS_OUT_OF_RANGE, what);
                bkt_check(bkt_same_bytes(s0, st.data, (size_t)st.span * 4) &&
                              bkt_same_bytes(y0, yb.data, (size_t)yb.span * 4) && dropped == 0x5a5a,
                          what, "something was written");
                bkt_check(strstr(bk_last_error(), "state_indices[1]") != NULL, what, "message \"%s\"",
                          bk_last_error());
            } else if (bkt_expect_status(s, BK_STATUS_SUCCESS, what)) {
                bkt_check(dropped == 1, what, "dropped_requests is %lld, expected 1", (long long)dropped);
                /* request 1's y rows untouched (NaN), states 1..3 untouched */
                bool y_kept = true;
                for (int64_t i = 6; i < 12; i++)
                    y_kept = y_kept && isnan(((float *)yb.data)[i]);
                bkt_check(y_kept && bkt_same_bytes((char *)s0 + 24 * 4, (char *)st.data + 24 * 4, 3 * 24 * 4), what,
                          "a skipped request wrote");
            }
        }
        bkt_free(s0);
        bkt_free(y0);
        bkt_buf_free(&st);
        bkt_buf_free(&yb);
        bkt_ssd_free(&p);
    }
}

/* Bad descriptors and tensors: the exact status, an error sentence, nothing written. */
static void test_bad_inputs(void)
{
    const bk_target cpu = bk_target_cpu();
    bkt_ssd_opts o = {2, 1, 4, 3, 5, 1, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, false, 0, 0,
                      true, true, false, 0, 0};
    bk_ssd_step_desc d = step_desc(&o, BK_DTYPE_F32, 3, true), bad;
    bk_ssd_step_plan plan;
    struct {
        const char *what;
        int field;
        int32_t value;
        bk_status want;
    } dcases[] = {
        {"ssd_step negative batch", 0, -1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_step negative pool", 1, -1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_step ngroups 3 of 4 heads", 2, 3, BK_STATUS_INVALID_PROBLEM},
        {"ssd_step ngroups -1", 2, -1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_step skip 7", 3, 7, BK_STATUS_INVALID_PROBLEM},
        {"ssd_step head_dim 257", 4, 257, BK_STATUS_UNSUPPORTED},
        {"ssd_step dtype i32", 5, BK_DTYPE_I32, BK_STATUS_UNSUPPORTED},
        {"ssd_step pool < batch without indices", 6, 1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_step dt_min > dt_max", 7, 0, BK_STATUS_INVALID_PROBLEM},
        {"ssd_step dt_min NaN", 8, 0, BK_STATUS_INVALID_PROBLEM},
    };
    for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
        bad = d;
        switch (dcases[i].field) {
        case 0: bad.batch = dcases[i].value; break;
        case 1: bad.pool = dcases[i].value; break;
        case 2: bad.ngroups = dcases[i].value; break;
        case 3: bad.skip = (bk_ssd_skip)dcases[i].value; break;
        case 4: bad.head_dim = dcases[i].value; break;
        case 5: bad.dtype = (bk_dtype)dcases[i].value; break;
        case 6: bad.has_state_indices = false, bad.pool = 1; break;
        case 7: bad.has_dt_limit = true, bad.dt_min = 2, bad.dt_max = 1; break;
        case 8: bad.has_dt_limit = true, bad.dt_min = NAN, bad.dt_max = 1; break;
        }
        memset(&plan, 0xab, sizeof plan);
        bk_ssd_step_plan before = plan;
        bkt_expect_status(bk_ssd_step_select(&bad, cpu, BK_PREFER_FASTEST, &plan), dcases[i].want, dcases[i].what);
        bkt_check(bk_last_error()[0] != '\0', dcases[i].what, "no error sentence");
        bkt_check(memcmp(&before, &plan, sizeof plan) == 0, dcases[i].what, "plan written on failure");
    }
    bad = d;
    bad.ngroups = 3;
    bk_ssd_step_select(&bad, cpu, BK_PREFER_FASTEST, &plan);
    bkt_check(strcmp(bk_last_error(), "ssd_step: desc.heads (4) is not a multiple of desc.ngroups (3)") == 0,
              "ssd_step ngroups message", "got \"%s\"", bk_last_error());
    bkt_expect_status(bk_ssd_step_select(NULL, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "ssd_step NULL desc");
    bkt_expect_status(bk_ssd_step_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_step no CUDA kernel below sm_80");

    /* tensors */
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, BK_DTYPE_F32, 0);
    bkt_buf st, yb;
    int64_t sp[4] = {3, 4, 3, 5}, sy[3] = {2, 4, 3};
    bkt_buf_make(&st, BK_DTYPE_F32, 4, sp, 0, -1, 1);
    bkt_buf_make(&yb, BK_DTYPE_F32, 3, sy, 0, 0, 0);
    int32_t idx[2] = {2, 0};
    int64_t n2[1] = {2}, n1[1] = {1};
    bk_tensor tidx = bkt_view(idx, BK_DTYPE_I32, 1, n2), tidx_bad = tidx;
    tidx_bad.dtype = BK_DTYPE_I64;
    int64_t dropped = 0;
    bk_tensor tdrop_bad = bkt_view(&dropped, BK_DTYPE_I32, 1, n1);
    bk_tensor z_at;
    bk_ssd_step_args good = step_args(&p, 0, st.view, yb.view, &z_at);
    good.state_indices = &tidx;
    bkt_expect_status(bk_ssd_step_select(&d, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, "ssd_step select");
    void *s0 = bkt_snapshot(st.data, (size_t)st.span * 4), *y0 = bkt_snapshot(yb.data, (size_t)yb.span * 4);
    BKT_BAD_TABLE(bk_ssd_step_args, cases, 16);
    BKT_BAD(cases, good, "ssd_step state.shape[0] != pool", state.shape[0], 2, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step b.shape[1] != ngroups", b.shape[1], 4, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step x.shape[2] != head_dim", x.shape[2], 2, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step dt rank 3", dt.rank, 3, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step skip NULL", skip, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step z NULL", z, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step dt_bias NULL", dt_bias, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step state_indices NULL", state_indices, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step state_indices i64", state_indices, &tidx_bad, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step dropped_requests i32", dropped_requests, &tdrop_bad, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step state overlapping", state.strides[0], 1, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_step x inner stride 2", x.strides[2], 2, BK_STATUS_UNSUPPORTED);
    BKT_BAD(cases, good, "ssd_step state capacity", state.capacity, 10, BK_STATUS_BUFFER_TOO_SMALL);
    BKT_BAD(cases, good, "ssd_step y NULL data", y.data, NULL, BK_STATUS_INVALID_PROBLEM);
    for (int c = 0; c < cases_n; c++) {
        bkt_expect_status(bk_ssd_step_run(&plan, NULL, (bk_workspace){NULL, 0}, &cases[c].args), cases[c].want,
                          cases[c].what);
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        bkt_check(bkt_same_bytes(s0, st.data, (size_t)st.span * 4) && bkt_same_bytes(y0, yb.data, (size_t)yb.span * 4),
                  cases[c].what, "written on failure");
    }
    bk_ssd_step_run(&plan, NULL, (bk_workspace){NULL, 0}, &cases[4].args);
    bkt_check(strcmp(bk_last_error(), "ssd_step: skip is NULL, expected a [heads,head_dim] tensor since desc.skip is on") == 0,
              "ssd_step optional message", "got \"%s\"", bk_last_error());
    /* an option's tensor given while the option is off */
    bk_ssd_step_desc off = d;
    off.has_z = false;
    bk_ssd_step_plan oplan;
    bk_ssd_step_select(&off, cpu, BK_PREFER_FASTEST, &oplan);
    bkt_expect_status(bk_ssd_step_run(&oplan, NULL, (bk_workspace){NULL, 0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "ssd_step z given with has_z off");
    bkt_expect_status(bk_ssd_step_run(&plan, NULL, (bk_workspace){NULL, 0}, &good), BK_STATUS_SUCCESS,
                      "ssd_step good call after bad ones");
    char name[96];
    bk_sku_name(&plan.info.sku, name, sizeof name);
    bkt_check(strcmp(name, "ssm/ssd_step/f32/cpu/reference") == 0, "ssd_step sku", "%s", name);
    bkt_check(bk_ssd_step_workspace_size(&plan) == 0, "ssd_step workspace", "not 0");
    bkt_free(s0);
    bkt_free(y0);
    bkt_buf_free(&st);
    bkt_buf_free(&yb);
    bkt_ssd_free(&p);
}

static const bkt_ssd_opts k_step_cases[] = {
    /* b  l  h  d  n  chunk G  skip                     z      bias   splus  limit  lo    hi */
    {3, 1, 4, 3, 5, 1, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {3, 1, 4, 3, 5, 1, 1, BK_SSD_SKIP_PER_HEAD, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 1, 8, 4, 3, 1, 2, BK_SSD_SKIP_PER_CHANNEL, true, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 1, 8, 4, 3, 1, 8, BK_SSD_SKIP_NONE, false, true, true, false, 0, 0, false, false, false, 0, 0},
    {5, 1, 4, 7, 9, 1, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, true, 0.05, 0.8, false, false, false, 0, 0},
    {1, 1, 3, 1, 1, 1, 0, BK_SSD_SKIP_PER_CHANNEL, true, false, true, false, 0, 0, false, false, false, 0, 0},
    {4, 1, 2, 64, 128, 1, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, false, false, false, 0, 0},
    /* 16-byte rows on CUDA with rows left over: D 70 over 32 / 16 rows per pass, N 32 */
    {3, 1, 6, 70, 32, 1, 3, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.05, 0.8, false, false, false, 0, 0},
    {0, 1, 2, 3, 4, 1, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, false, false, false, 0, 0},
};

static void test_all(bk_target target, const bk_dtype *dts, size_t ndt)
{
    for (size_t t = 0; t < ndt; t++)
        for (size_t c = 0; c < sizeof k_step_cases / sizeof k_step_cases[0]; c++) {
            test_step(target, dts[t], k_step_cases[c], true, 0);
            test_step(target, dts[t], k_step_cases[c], (c & 1) == 0, 2);
        }
    static const bkt_ssd_opts seq[] = {
        {2, 23, 4, 3, 5, 4, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, false, 0, 0},
        {1, 19, 8, 4, 4, 8, 1, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1.2, true, true, false, 0, 0},
        {3, 9, 2, 5, 3, 64, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, false, 0, 0},
    };
    static const bk_dtype fdt[] = {BK_DTYPE_F64, BK_DTYPE_F32};
    for (size_t t = 0; t < 2; t++) {
        if (target.kind == BK_TARGET_CUDA && fdt[t] == BK_DTYPE_F64)
            continue;
        test_prefill_then_steps(target, fdt[t], seq[0], 10);
        test_prefill_then_steps(target, fdt[t], seq[1], 1);
        test_prefill_then_steps(target, fdt[t], seq[2], 0);
    }
    test_out_of_pool(target);
}

int main(void)
{
    bkt_init("test_ssd_step");
    test_all(bk_target_cpu(), k_dtypes, sizeof k_dtypes / sizeof k_dtypes[0]);
    test_bad_inputs();
    bk_target gpu;
    if (bkt_cuda_target("ssd_step cuda", &gpu)) {
        static const bk_dtype gdt[] = {BK_DTYPE_F32, BK_DTYPE_F16, BK_DTYPE_BF16};
        test_all(gpu, gdt, 3);
        bk_ssd_step_desc d = {.batch = 2, .pool = 2, .heads = 2, .head_dim = 4, .state_dim = 4, .dtype = BK_DTYPE_F64};
        bk_ssd_step_plan plan;
        bkt_expect_status(bk_ssd_step_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_UNSUPPORTED,
                          "ssd_step cuda f64");
    }
    return bkt_finish();
}
