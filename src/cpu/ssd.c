/* ssd.c (CPU) - Mamba-2 SSD: the chunk scan forward and backward and the one-token step,
 * reference kernels with every option of include/baracuda/ssd.h.
 *
 * Math, per batch b and head h of group g (state [D, N], h_{-1} = the initial state or 0):
 *   dt'_t = clamp(softplus(dt_t + bias_h));  a_t = dt'_t A_h
 *   h_t = exp(a_t) h_{t-1} + dt'_t x_t B_{t,g}^T   (h_{t-1} taken as 0 where seq_idx changes)
 *   u_t = h_t C_{t,g} + skip_h . x_t;   y_t = u_t silu(z_t)  (or u_t)
 *
 * Shapes: x, y, dy, dx, z, dz [B, L, H, D]; dt, ddt [B, L, H]; A, dA, dt_bias [H];
 * B, C, dB, dC [B, L, G, N]; states [B, H, D, N]; any outer strides, rows read with their
 * inner stride.
 *
 * Forward, the chunked (SSD) algorithm. The sequence is cut into chunks of
 * Q = min(chunk_size, L) steps (the forward also ends a chunk at every cu_seqlens boundary,
 * to take the varlen states there). Inside a chunk, with cum_t = sum_{u = chunk start..t} a_u,
 * S the state carried in from the previous chunk, seg_t the number of seq_idx changes from
 * the chunk's first position (included, against the position before it) to t, in(t) =
 * [seg_t == 0] and m(s, t) = [seg_s == seg_t]:
 *   y_t = in(t) exp(cum_t) S C_t + sum_{s <= t} m(s,t) (C_t . B_s) exp(cum_t - cum_s) dt_s x_s
 *   S  <- in(l) exp(cum_l) S + sum_s m(s,l) exp(cum_l - cum_s) dt_s x_s B_s^T     (next chunk)
 * The first line is the quadratic "attention" form inside the chunk plus the carried state;
 * the second passes the state on. No per-step state is ever formed.
 *
 * Backward, exact, the same chunks (dy here is the gradient of u: dy silu(z) with the gate,
 * whose own gradient dz = dy u silu'(z) needs u, recomputed from the chunk's state):
 *   1. forward sweep: the state at the start of every chunk, kept in the workspace;
 *   2. reverse sweep over the chunks, carrying dS = dL/d(state at the chunk's end), which
 *      starts as dfinal_states (or 0); inside a chunk, with w_ts = m(s,t) exp(cum_t - cum_s)
 *      for s <= t and the chunk's last step l:
 *        g_s   = sum_{t >= s} w_ts (C_t . B_s) dy_t + w_ls dS B_s      dx_s = dt_s g_s + skip dy_s
 *        dB_s  = dt_s [sum_{t >= s} w_ts (dy_t . x_s) C_t + w_ls dS^T x_s]
 *        dC_t  = in(t) exp(cum_t) S^T dy_t + sum_{s <= t} w_ts dt_s (dy_t . x_s) B_s
 *      and dL/dcum_t collects every exp() factor that holds cum_t:
 *        + P_st to t and - P_st to s,  P_st = w_ts dt_s (C_t . B_s)(x_s . dy_t), s < t
 *        + R_s to l and - R_s to s,    R_s  = w_ls dt_s x_s . (dS B_s),      s < l
 *        + in(t) exp(cum_t) dy_t . (S C_t) to t,  + in(l) exp(cum_l) <dS, S> to l
 *      then da_u = sum_{t >= u} dL/dcum_t (a reverse running sum), and
 *        ddt'_u = x_u . g_u + A da_u,  ddt_u = ddt'_u dt'/ddt_u,  dbias_h += ddt_u,
 *        dA_h += dt'_u da_u,  dskip_h += dy_u x_u
 *      and dS <- in(l) exp(cum_l) dS + sum_t in(t) exp(cum_t) dy_t C_t^T for the previous
 *      chunk; after the first chunk that is dL/d(initial state).
 *
 * Step: per (request, head) the recurrence's one step on the pool state, row by row.
 *
 * Work: f64 arithmetic for every dtype. Forward: (batch, head) slices are dealt to
 * S = min(B*H, BK_CPU_SSD_SLOTS) work slots (slice i to slot i % S). Backward: (batch,
 * group) slices to S = min(B*G, BK_CPU_SSD_SLOTS) slots; a slot runs the heads of its group
 * in order and, when a group has several heads, sums their dB and dC rows in f64 in the
 * workspace before storing them. OpenMP runs the slots in parallel and each slot owns its
 * piece of the caller's workspace. Each slice is computed by one thread in a fixed order.
 * dA, ddt_bias and dskip: each head's partial sums go to the workspace, then they are
 * added over the batch in order, head by head. Problems below BK_CPU_SSD_PARALLEL_WORK
 * run on the calling thread. So every output is bit-identical whatever
 * the thread count, and no atomics are used. Step: heads in parallel, requests in order.
 * No allocation: the workspace (layouts below, the same function sizes and carves) and
 * stack rows of at most BK_SSD_MAX_DIM doubles.
 *
 * The cost is O(L (Q (D + N) + D N)) per slice; the backward keeps one state per chunk,
 * so a tiny chunk_size on a long sequence needs a large workspace.
 */
#include "cpu/ssd.h"
#include "core/core.h"
#include "core/ssd_check.h"

#include <math.h>
#include <string.h>

typedef struct ssd_geom {
    int64_t B, L, H, D, N;
    int64_t G, P;  /* groups, heads per group */
    int64_t Q;     /* steps per chunk: min(chunk_size, L) */
    int64_t K;     /* chunks: ceil(L / Q) */
    int64_t BH;    /* (batch, head) slices */
    int64_t slots; /* work slots, 0 for an empty problem */
} ssd_geom;

/* per_group: the backward deals (batch, group) slices to the slots. */
static ssd_geom ssd_geometry(const bk_ssd_desc *d, bool per_group)
{
    ssd_geom g;
    g.B = d->batch;
    g.L = d->seq_len;
    g.H = d->heads;
    g.D = d->head_dim;
    g.N = d->state_dim;
    g.G = d->ngroups > 0 ? d->ngroups : d->heads;
    g.P = g.G > 0 ? g.H / g.G : 1;
    g.Q = g.L < d->chunk_size ? g.L : d->chunk_size;
    g.K = g.Q > 0 ? (g.L + g.Q - 1) / g.Q : 0;
    g.BH = g.B * g.H;
    const int64_t slices = per_group ? g.B * g.G : g.BH;
    g.slots = (g.BH == 0 || g.L == 0) ? 0 : (slices < BK_CPU_SSD_SLOTS ? slices : BK_CPU_SSD_SLOTS);
    return g;
}

/* Whether a chunk scan is worth a parallel region: one step of every state element of
 * every slice at least BK_CPU_SSD_PARALLEL_WORK (smaller problems run on one thread: a
 * parallel region costs more than they do). The result never depends on it. */
static bool parallel_worth(const ssd_geom *g)
{
    return g->BH * g->L * (g->D + 1) * (g->N + 1) >= BK_CPU_SSD_PARALLEL_WORK;
}

/* Bytes of n doubles (SIZE_MAX past size_t: the carver then saturates). */
static size_t f64s(int64_t n)
{
    return bk_bytes(n, sizeof(double));
}

/* ------------------------------------------------------------ helpers -- */

/* Address of element `off` of t. */
static void *elem(const bk_tensor *t, int64_t off)
{
    return (char *)t->data + off * (int64_t)bk_dtype_size(t->dtype);
}

/* Rows l0 .. l0+n-1 of slice (b, h) of a [B, L, H, W] tensor into dst[n][W]. */
static void load_rows(const bk_tensor *t, int64_t b, int64_t l0, int64_t h, int64_t n, int64_t w, double *dst)
{
    if (w == 0)
        return;
    for (int64_t i = 0; i < n; i++)
        bk_gather_f64(elem(t, bk_offset4(t, b, l0 + i, h, 0)), t->dtype, t->strides[3], w, dst + i * w);
}

static void store_row(const bk_tensor *t, int64_t b, int64_t l, int64_t h, int64_t w, const double *src)
{
    if (w > 0)
        bk_scatter_f64(elem(t, bk_offset4(t, b, l, h, 0)), t->dtype, t->strides[3], w, src);
}

/* State (i0, i1) of a [.., .., D, N] tensor into or out of S[D][N] (store: S -> t). */
static void state_io(const bk_tensor *t, int64_t i0, int64_t i1, int64_t D, int64_t N, double *S, bool store)
{
    for (int64_t d = 0; d < D; d++) {
        if (store)
            store_row(t, i0, i1, d, N, S + d * N);
        else
            load_rows(t, i0, i1, d, 1, N, S + d * N);
    }
}

static double dot(const double *u, const double *v, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += u[i] * v[i];
    return s;
}

static double sigmoid(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/* dt' from a raw dt with the bias added: the softplus (the identity above 20, as mamba)
 * and the clamp; *slope = d dt' / d raw (0 where the clamp bites). */
static double dt_effective(const bk_ssd_opts *o, double v, double *slope)
{
    double g = 1.0;
    if (o->dt_softplus && v <= 20.0) {
        g = sigmoid(v);
        v = log1p(exp(v));
    }
    if (o->has_dt_limit) {
        if (v < o->dt_min) {
            v = o->dt_min;
            g = 0.0;
        } else if (v > o->dt_max) {
            v = o->dt_max;
            g = 0.0;
        }
    }
    *slope = g;
    return v;
}

/* The per-head constants: A, dt_bias (0 without) and the skip per channel (0 without). */
typedef struct head_consts {
    double A, bias;
    double skip[BK_SSD_MAX_DIM];
} head_consts;

static void load_head(const bk_ssd_opts *o, const bk_tensor *a, const bk_tensor *dt_bias, const bk_tensor *skip,
                      int64_t h, head_consts *hc)
{
    hc->A = bk_load_f64(a->data, a->dtype, h * a->strides[0]);
    hc->bias = o->has_dt_bias ? bk_load_f64(dt_bias->data, dt_bias->dtype, h * dt_bias->strides[0]) : 0.0;
    for (int64_t d = 0; d < o->head_dim; d++) {
        double v = 0.0;
        if (o->skip == BK_SSD_SKIP_PER_HEAD)
            v = bk_load_f64(skip->data, skip->dtype, h * skip->strides[0]);
        else if (o->skip == BK_SSD_SKIP_PER_CHANNEL)
            v = bk_load_f64(skip->data, skip->dtype, bk_offset2(skip, h, d));
        hc->skip[d] = v;
    }
}

/* y[d] = (u[d] + skip[d] x[d]) silu(z[d]) (z NULL: no gate). */
static void finish_row(const head_consts *hc, const double *x, const double *z, int64_t D, const double *u, double *y)
{
    for (int64_t d = 0; d < D; d++) {
        const double v = u[d] + hc->skip[d] * x[d];
        y[d] = z ? v * z[d] * sigmoid(z[d]) : v;
    }
}

/* ------------------------------------------------------------- chunks -- */

/* The inputs both chunk-scan directions read. */
typedef struct ssd_in {
    const bk_tensor *x, *dt, *a, *b, *c, *skip, *z, *dt_bias, *init, *seq_idx;
} ssd_in;

/* One chunk of one (batch, head) slice, rows in f64. */
typedef struct chunk {
    int64_t n, D, N;
    double *x;     /* [Q][D] */
    double *b, *c; /* [Q][N] */
    double *dt;    /* [Q]: dt' */
    double *slope; /* [Q]: d dt' / d raw dt (NULL when not needed) */
    double *cum;   /* [Q]: running sum of dt' A */
    double *seg;   /* [Q]: seq_idx changes from the chunk's first position (included) */
} chunk;

/* Steps l0 .. l0+n-1 of slice (b, h) of group grp; C only when need_c. */
static void load_chunk(const bk_ssd_opts *o, const ssd_in *in, const head_consts *hc, int64_t b, int64_t h,
                       int64_t grp, int64_t l0, int64_t n, bool need_c, chunk *ck)
{
    ck->n = n;
    load_rows(in->x, b, l0, h, n, ck->D, ck->x);
    load_rows(in->b, b, l0, grp, n, ck->N, ck->b);
    if (need_c)
        load_rows(in->c, b, l0, grp, n, ck->N, ck->c);
    const bk_tensor *dt = in->dt, *si = in->seq_idx;
    double acc = 0.0, seg = 0.0, slope;
    double prev = si && l0 > 0 ? bk_load_f64(si->data, si->dtype, bk_offset2(si, b, l0 - 1)) : 0.0;
    for (int64_t i = 0; i < n; i++) {
        ck->dt[i] = dt_effective(o, bk_load_f64(dt->data, dt->dtype, bk_offset3(dt, b, l0 + i, h)) + hc->bias, &slope);
        if (ck->slope)
            ck->slope[i] = slope;
        acc += ck->dt[i] * hc->A;
        ck->cum[i] = acc;
        if (si) {
            const double cur = bk_load_f64(si->data, si->dtype, bk_offset2(si, b, l0 + i));
            if (l0 + i > 0 && cur != prev)
                seg += 1.0;
            prev = cur;
        }
        ck->seg[i] = seg;
    }
}

/* u[d] of step t: the carried-in state S decayed to t and the chunk's own steps s <= t. */
static void chunk_out_row(const chunk *ck, const double *S, int64_t t, double *u)
{
    const int64_t D = ck->D, N = ck->N;
    const double *ct = ck->c + t * N;
    const double et = ck->seg[t] == 0.0 ? exp(ck->cum[t]) : 0.0;
    for (int64_t d = 0; d < D; d++)
        u[d] = et != 0.0 ? et * dot(S + d * N, ct, N) : 0.0;
    for (int64_t s = t; s >= 0 && ck->seg[s] == ck->seg[t]; s--) {
        const double ws = exp(ck->cum[t] - ck->cum[s]) * ck->dt[s] * dot(ct, ck->b + s * N, N);
        const double *xs = ck->x + s * D;
        for (int64_t d = 0; d < D; d++)
            u[d] += ws * xs[d];
    }
}

/* S[D][N] <- the state after the chunk's last step, from S entering it. */
static void advance_state(double *S, const chunk *ck)
{
    const int64_t D = ck->D, N = ck->N, l = ck->n - 1;
    const double cl = ck->cum[l], el = ck->seg[l] == 0.0 ? exp(cl) : 0.0;
    for (int64_t i = 0; i < D * N; i++)
        S[i] = el != 0.0 ? S[i] * el : 0.0;
    for (int64_t s = l; s >= 0 && ck->seg[s] == ck->seg[l]; s--) {
        const double w = exp(cl - ck->cum[s]) * ck->dt[s];
        const double *xs = ck->x + s * D, *bs = ck->b + s * N;
        for (int64_t d = 0; d < D; d++) {
            const double wx = w * xs[d];
            double *row = S + d * N;
            for (int64_t k = 0; k < N; k++)
                row[k] += wx * bs[k];
        }
    }
}

/* S = the initial state of slice (b, h), or 0. */
static void start_state(const ssd_in *in, int64_t b, int64_t h, int64_t D, int64_t N, double *S)
{
    if (in->init)
        state_io(in->init, b, h, D, N, S, false);
    else
        memset(S, 0, f64s(D * N));
}

/* ------------------------------------------------------------ forward -- */

/* One slot's piece of every workspace array. */
typedef struct fwd_buf {
    double *state;  /* [D][N] */
    double *x;      /* [Q][D] */
    double *b, *c;  /* [Q][N] */
    double *dt;     /* [Q] */
    double *cum;    /* [Q] */
    double *seg;    /* [Q] */
} fwd_buf;

/* The one layout of the forward workspace: sizes it (base NULL) or carves it. Each array
 * holds `slots` consecutive per-slot pieces. */
static size_t fwd_layout(const ssd_geom *g, void *base, fwd_buf *w)
{
    bk_carver cv = bk_carver_start(base);
    const int64_t S = g->slots;
    w->state = bk_carve(&cv, f64s(S * g->D * g->N));
    w->x = bk_carve(&cv, f64s(S * g->Q * g->D));
    w->b = bk_carve(&cv, f64s(S * g->Q * g->N));
    w->c = bk_carve(&cv, f64s(S * g->Q * g->N));
    w->dt = bk_carve(&cv, f64s(S * g->Q));
    w->cum = bk_carve(&cv, f64s(S * g->Q));
    w->seg = bk_carve(&cv, f64s(S * g->Q));
    return cv.offset;
}

static fwd_buf fwd_slot(const ssd_geom *g, const fwd_buf *w, int64_t slot)
{
    fwd_buf p = {w->state + slot * g->D * g->N, w->x + slot * g->Q * g->D, w->b + slot * g->Q * g->N,
                 w->c + slot * g->Q * g->N,     w->dt + slot * g->Q,        w->cum + slot * g->Q,
                 w->seg + slot * g->Q};
    return p;
}

size_t bk_cpu_ssd_fwd_workspace(const bk_ssd_desc *d)
{
    ssd_geom g = ssd_geometry(d, false);
    fwd_buf w;
    return g.slots == 0 ? 0 : fwd_layout(&g, NULL, &w);
}

static ssd_in fwd_inputs(const bk_ssd_fwd_args *a)
{
    ssd_in in = {&a->x, &a->dt, &a->a, &a->b, &a->c, a->skip, a->z, a->dt_bias, a->initial_states, a->seq_idx};
    return in;
}

/* y (and the final / varlen states) of slice (b, h), chunk by chunk. */
static void fwd_slice(const bk_ssd_desc *desc, const ssd_geom *g, const bk_ssd_fwd_args *a, int64_t b, int64_t h,
                      const fwd_buf *w)
{
    const int64_t D = g->D, N = g->N, L = g->L, Q = g->Q, grp = h / g->P;
    const bk_ssd_opts o = bk_ssd_desc_opts(desc);
    const ssd_in in = fwd_inputs(a);
    head_consts hc;
    load_head(&o, &a->a, a->dt_bias, a->skip, h, &hc);
    chunk ck = {0, D, N, w->x, w->b, w->c, w->dt, NULL, w->cum, w->seg};
    double *S = w->state;
    double u[BK_SSD_MAX_DIM], z[BK_SSD_MAX_DIM], y[BK_SSD_MAX_DIM];
    const int32_t nv = desc->n_varlen_seqs;
    const int32_t *cu = nv > 0 ? (const int32_t *)a->cu_seqlens->data : NULL;
    int32_t seq = 0; /* the first sequence that does not end before l0 */
    start_state(&in, b, h, D, N, S);
    if (cu) { /* an empty sequence's state is zero */
        memset(u, 0, sizeof u);
        for (int32_t i = 0; i < nv; i++)
            if (cu[i + 1] == cu[i])
                for (int64_t d = 0; d < D; d++)
                    store_row(a->varlen_states, i, h, d, N, u);
    }
    for (int64_t l0 = 0; l0 < L;) {
        int64_t n = L - l0 < Q ? L - l0 : Q;
        while (cu && seq < nv && cu[seq + 1] <= l0)
            seq++;
        if (cu && seq < nv && cu[seq + 1] - l0 < n)
            n = cu[seq + 1] - l0; /* end the chunk where a sequence ends */
        load_chunk(&o, &in, &hc, b, h, grp, l0, n, true, &ck);
        for (int64_t t = 0; t < n; t++) {
            chunk_out_row(&ck, S, t, u);
            if (a->z)
                load_rows(a->z, b, l0 + t, h, 1, D, z);
            finish_row(&hc, ck.x + t * D, a->z ? z : NULL, D, u, y);
            store_row(&a->y, b, l0 + t, h, D, y);
        }
        const bool ends_seq = cu && seq < nv && cu[seq + 1] == l0 + n;
        if (l0 + n < L || a->final_states || ends_seq)
            advance_state(S, &ck);
        for (int32_t i = seq; ends_seq && i < nv && cu[i + 1] == l0 + n; i++)
            if (cu[i] < cu[i + 1])
                state_io(a->varlen_states, i, h, D, N, S, true);
        l0 += n;
    }
    if (a->final_states)
        state_io(a->final_states, b, h, D, N, S, true);
}

/* Empty sequence (seq_len 0): the final states are the initial ones, the varlen ones 0. */
static void fwd_empty(const bk_ssd_desc *d, const bk_ssd_fwd_args *a)
{
    double row[BK_SSD_MAX_DIM] = {0};
    if (d->seq_len != 0)
        return;
    for (int64_t b = 0; a->final_states && b < d->batch; b++)
        for (int64_t h = 0; h < d->heads; h++)
            for (int64_t k = 0; k < d->head_dim; k++) {
                if (a->initial_states)
                    load_rows(a->initial_states, b, h, k, 1, d->state_dim, row);
                store_row(a->final_states, b, h, k, d->state_dim, row);
            }
    memset(row, 0, sizeof row);
    for (int64_t i = 0; i < d->n_varlen_seqs; i++)
        for (int64_t h = 0; h < d->heads; h++)
            for (int64_t k = 0; k < d->head_dim; k++)
                store_row(a->varlen_states, i, h, k, d->state_dim, row);
}

bk_status bk_cpu_ssd_fwd(const bk_ssd_desc *d, const bk_ssd_fwd_args *a, void *workspace)
{
    const ssd_geom g = ssd_geometry(d, false);
    if (g.slots == 0) { /* y is empty */
        fwd_empty(d, a);
        return BK_STATUS_SUCCESS;
    }
    fwd_buf w;
    fwd_layout(&g, workspace, &w);
#pragma omp parallel for schedule(static) if (parallel_worth(&g))
    for (int64_t slot = 0; slot < g.slots; slot++) {
        const fwd_buf p = fwd_slot(&g, &w, slot);
        for (int64_t bh = slot; bh < g.BH; bh += g.slots)
            fwd_slice(d, &g, a, bh / g.H, bh % g.H, &p);
    }
    return BK_STATUS_SUCCESS;
}

/* ----------------------------------------------------------- backward -- */

typedef struct bwd_buf {
    double *states;      /* [K][D][N]: state at the start of each chunk */
    double *dstate;      /* [D][N]: dL/d(state at the end of the current chunk) */
    double *x, *dy;      /* [Q][D] */
    double *b, *c;       /* [Q][N] */
    double *dt, *cum;    /* [Q] */
    double *slope, *seg; /* [Q] */
    double *dcum;        /* [Q]: dL/dcum */
    double *ddt0;        /* [Q]: x_s . g_s, the part of ddt' that is not through the decay */
    double *accb, *accc; /* [L][N] when P > 1: the group's dB, dC summed over its heads */
    double *pa, *pbias;  /* [B*H] (shared by all slots): dA, ddt_bias of each (b, h) */
    double *pskip;       /* [B*H][W] (shared): dskip of each (b, h) */
} bwd_buf;

/* Width of a dskip partial: head_dim per channel, 1 per head, 0 without a skip. */
static int64_t skip_width(const bk_ssd_desc *d)
{
    return d->skip == BK_SSD_SKIP_PER_CHANNEL ? d->head_dim : d->skip == BK_SSD_SKIP_PER_HEAD ? 1 : 0;
}

static size_t bwd_layout(const bk_ssd_desc *d, const ssd_geom *g, void *base, bwd_buf *w)
{
    bk_carver cv = bk_carver_start(base);
    const int64_t S = g->slots, DN = g->D * g->N, acc = g->P > 1 ? S * g->L * g->N : 0;
    w->states = bk_carve(&cv, f64s(S * g->K * DN));
    w->dstate = bk_carve(&cv, f64s(S * DN));
    w->x = bk_carve(&cv, f64s(S * g->Q * g->D));
    w->dy = bk_carve(&cv, f64s(S * g->Q * g->D));
    w->b = bk_carve(&cv, f64s(S * g->Q * g->N));
    w->c = bk_carve(&cv, f64s(S * g->Q * g->N));
    w->dt = bk_carve(&cv, f64s(S * g->Q));
    w->cum = bk_carve(&cv, f64s(S * g->Q));
    w->slope = bk_carve(&cv, f64s(S * g->Q));
    w->seg = bk_carve(&cv, f64s(S * g->Q));
    w->dcum = bk_carve(&cv, f64s(S * g->Q));
    w->ddt0 = bk_carve(&cv, f64s(S * g->Q));
    w->accb = bk_carve(&cv, f64s(acc));
    w->accc = bk_carve(&cv, f64s(acc));
    w->pa = bk_carve(&cv, f64s(g->BH));
    w->pbias = bk_carve(&cv, f64s(g->BH));
    w->pskip = bk_carve(&cv, f64s(g->BH * skip_width(d)));
    return cv.offset;
}

static bwd_buf bwd_slot(const ssd_geom *g, const bwd_buf *w, int64_t slot)
{
    const int64_t DN = g->D * g->N, QD = g->Q * g->D, QN = g->Q * g->N;
    bwd_buf p = *w;
    p.states += slot * g->K * DN;
    p.dstate += slot * DN;
    p.x += slot * QD;
    p.dy += slot * QD;
    p.b += slot * QN;
    p.c += slot * QN;
    p.dt += slot * g->Q;
    p.cum += slot * g->Q;
    p.slope += slot * g->Q;
    p.seg += slot * g->Q;
    p.dcum += slot * g->Q;
    p.ddt0 += slot * g->Q;
    if (g->P > 1) {
        p.accb += slot * g->L * g->N;
        p.accc += slot * g->L * g->N;
    } else {
        p.accb = p.accc = NULL;
    }
    return p;
}

size_t bk_cpu_ssd_bwd_workspace(const bk_ssd_desc *d)
{
    ssd_geom g = ssd_geometry(d, true);
    bwd_buf w;
    return g.slots == 0 ? 0 : bwd_layout(d, &g, NULL, &w);
}

/* Row l of dB or dC: stored, or added to the group's f64 sum (acc non-NULL). */
static void emit_bc(const bk_tensor *t, double *acc, int64_t b, int64_t l, int64_t grp, int64_t N, const double *row)
{
    if (acc == NULL) {
        store_row(t, b, l, grp, N, row);
        return;
    }
    for (int64_t m = 0; m < N; m++)
        acc[l * N + m] += row[m];
}

/* dy of the chunk's rows -> the gradient of u (through the gate, dz stored), and the
 * head's dskip partial. */
static void bwd_gate(const bk_ssd_bwd_args *a, const head_consts *hc, const chunk *ck, const double *S, int64_t b,
                     int64_t l0, int64_t h, double *DY, double *dskip)
{
    const int64_t D = ck->D;
    double u[BK_SSD_MAX_DIM], z[BK_SSD_MAX_DIM], dz[BK_SSD_MAX_DIM];
    for (int64_t t = 0; t < ck->n; t++) {
        double *dyt = DY + t * D;
        const double *xt = ck->x + t * D;
        if (a->z) {
            chunk_out_row(ck, S, t, u);
            load_rows(a->z, b, l0 + t, h, 1, D, z);
            for (int64_t d = 0; d < D; d++) {
                const double v = u[d] + hc->skip[d] * xt[d], sg = sigmoid(z[d]);
                dz[d] = dyt[d] * v * sg * (1.0 + z[d] * (1.0 - sg));
                dyt[d] *= z[d] * sg;
            }
            store_row(a->dz, b, l0 + t, h, D, dz);
        }
        if (a->dskip) {
            for (int64_t d = 0; d < D; d++)
                dskip[a->dskip->rank == 1 ? 0 : d] += dyt[d] * xt[d];
        }
    }
}

/* Gradients of slice (b, h) (head h of group grp): dx, ddt, dz, dinitial_states stored,
 * dB and dC rows emitted, dA / ddt_bias / dskip partials written to the workspace. */
static void bwd_head(const bk_ssd_desc *desc, const ssd_geom *g, const bk_ssd_bwd_args *a, int64_t b, int64_t h,
                     const bwd_buf *w)
{
    const int64_t D = g->D, N = g->N, L = g->L, Q = g->Q, K = g->K, DN = D * N, grp = h / g->P;
    const bk_ssd_opts o = bk_ssd_desc_opts(desc);
    const ssd_in in = {&a->x, &a->dt, &a->a, &a->b, &a->c, a->skip, a->z, a->dt_bias, a->initial_states, a->seq_idx};
    head_consts hc;
    load_head(&o, &a->a, a->dt_bias, a->skip, h, &hc);
    const double A = hc.A;
    chunk ck = {0, D, N, w->x, w->b, w->c, w->dt, w->slope, w->cum, w->seg};
    double *DY = w->dy, *dcum = w->dcum, *ddt0 = w->ddt0, *dS = w->dstate;
    double g_row[BK_SSD_MAX_DIM], hb[BK_SSD_MAX_DIM], v[BK_SSD_MAX_DIM], dc_row[BK_SSD_MAX_DIM];
    const int64_t bh = b * g->H + h, sw = skip_width(desc);
    double *dskip = w->pskip + bh * sw;
    memset(dskip, 0, f64s(sw));

    /* 1. forward sweep: states[k] = state entering chunk k */
    start_state(&in, b, h, D, N, w->states);
    for (int64_t k = 0; k + 1 < K; k++) {
        load_chunk(&o, &in, &hc, b, h, grp, k * Q, Q, false, &ck);
        memcpy(w->states + (k + 1) * DN, w->states + k * DN, f64s(DN));
        advance_state(w->states + (k + 1) * DN, &ck);
    }

    /* 2. reverse sweep */
    double dA = 0.0, dbias = 0.0;
    if (a->dfinal_states)
        state_io(a->dfinal_states, b, h, D, N, dS, false);
    else
        memset(dS, 0, f64s(DN));
    for (int64_t k = K - 1; k >= 0; k--) {
        const int64_t l0 = k * Q, n = L - l0 < Q ? L - l0 : Q, last = n - 1;
        const double *S = w->states + k * DN;
        const double *seg = ck.seg, *cum = ck.cum, *dtv = ck.dt;
        load_chunk(&o, &in, &hc, b, h, grp, l0, n, true, &ck);
        load_rows(&a->dy, b, l0, h, n, D, DY);
        bwd_gate(a, &hc, &ck, S, b, l0, h, DY, dskip);
        memset(dcum, 0, f64s(n));

        /* inputs at s: dx_s, dB_s, the direct part of ddt_s */
        for (int64_t s = 0; s < n; s++) {
            const double *xs = ck.x + s * D, *bs = ck.b + s * N;
            const bool to_last = seg[s] == seg[last];
            const double wl = to_last ? exp(cum[last] - cum[s]) : 0.0;
            for (int64_t d = 0; d < D; d++)
                g_row[d] = to_last ? wl * dot(dS + d * N, bs, N) : 0.0;
            for (int64_t m = 0; m < N; m++)
                hb[m] = 0.0;
            for (int64_t d = 0; to_last && d < D; d++)
                for (int64_t m = 0; m < N; m++)
                    hb[m] += xs[d] * dS[d * N + m];
            for (int64_t m = 0; m < N; m++)
                hb[m] *= wl;
            if (s < last && to_last) { /* R_s: the carried-out state's factor exp(cum_l - cum_s) */
                const double r = dtv[s] * dot(xs, g_row, D);
                dcum[last] += r;
                dcum[s] -= r;
            }
            for (int64_t t = s; t < n && seg[t] == seg[s]; t++) {
                const double *ct = ck.c + t * N, *dyt = DY + t * D;
                const double wts = exp(cum[t] - cum[s]);
                const double cb = dot(ct, bs, N), xd = dot(xs, dyt, D);
                const double wc = wts * cb, wx = wts * xd;
                for (int64_t d = 0; d < D; d++)
                    g_row[d] += wc * dyt[d];
                for (int64_t m = 0; m < N; m++)
                    hb[m] += wx * ct[m];
                if (t > s) { /* P_st */
                    const double p = dtv[s] * wc * xd;
                    dcum[t] += p;
                    dcum[s] -= p;
                }
            }
            ddt0[s] = dot(xs, g_row, D);
            for (int64_t d = 0; d < D; d++)
                g_row[d] = dtv[s] * g_row[d] + hc.skip[d] * DY[s * D + d];
            for (int64_t m = 0; m < N; m++)
                hb[m] *= dtv[s];
            store_row(&a->dx, b, l0 + s, h, D, g_row);
            emit_bc(&a->db, w->accb, b, l0 + s, grp, N, hb);
        }

        /* outputs at t: dC_t and the carried-in state's factor exp(cum_t) */
        for (int64_t t = 0; t < n; t++) {
            const double *ct = ck.c + t * N, *dyt = DY + t * D;
            const double et = seg[t] == 0.0 ? exp(cum[t]) : 0.0;
            for (int64_t m = 0; m < N; m++)
                v[m] = 0.0;
            for (int64_t d = 0; et != 0.0 && d < D; d++)
                for (int64_t m = 0; m < N; m++)
                    v[m] += dyt[d] * S[d * N + m];
            for (int64_t m = 0; m < N; m++)
                dc_row[m] = et * v[m];
            dcum[t] += et * dot(v, ct, N);
            for (int64_t s = t; s >= 0 && seg[s] == seg[t]; s--) {
                const double ws = exp(cum[t] - cum[s]) * dtv[s] * dot(dyt, ck.x + s * D, D);
                const double *bs = ck.b + s * N;
                for (int64_t m = 0; m < N; m++)
                    dc_row[m] += ws * bs[m];
            }
            emit_bc(&a->dc, w->accc, b, l0 + t, grp, N, dc_row);
        }

        /* the carried-out state's factor exp(cum_l) on the carried-in state */
        const double el = seg[last] == 0.0 ? exp(cum[last]) : 0.0;
        if (el != 0.0)
            dcum[last] += el * dot(dS, S, DN);

        /* da_u = sum_{t >= u} dcum_t; ddt (of the raw dt), ddt_bias and dA */
        double da = 0.0;
        for (int64_t u = last; u >= 0; u--) {
            da += dcum[u];
            const double ddt = (ddt0[u] + A * da) * ck.slope[u];
            bk_store_f64(a->ddt.data, a->ddt.dtype, bk_offset3(&a->ddt, b, l0 + u, h), ddt);
            dbias += ddt;
            dA += dtv[u] * da;
        }

        /* dS for the previous chunk (or the initial state): dL/d(state entering this chunk) */
        if (k > 0 || a->dinitial_states) {
            for (int64_t i = 0; i < DN; i++)
                dS[i] = el != 0.0 ? dS[i] * el : 0.0;
            for (int64_t t = 0; t < n && seg[t] == 0.0; t++) {
                const double et = exp(cum[t]);
                const double *ct = ck.c + t * N, *dyt = DY + t * D;
                for (int64_t d = 0; d < D; d++) {
                    const double e = et * dyt[d];
                    double *row = dS + d * N;
                    for (int64_t m = 0; m < N; m++)
                        row[m] += e * ct[m];
                }
            }
        }
    }
    if (a->dinitial_states)
        state_io(a->dinitial_states, b, h, D, N, dS, true);
    w->pa[bh] = dA;
    w->pbias[bh] = dbias;
}

/* Every head of group grp of batch row b; the group's dB, dC sums stored at the end. */
static void bwd_group(const bk_ssd_desc *desc, const ssd_geom *g, const bk_ssd_bwd_args *a, int64_t b, int64_t grp,
                      const bwd_buf *w)
{
    if (w->accb) {
        memset(w->accb, 0, f64s(g->L * g->N));
        memset(w->accc, 0, f64s(g->L * g->N));
    }
    for (int64_t h = grp * g->P; h < (grp + 1) * g->P; h++)
        bwd_head(desc, g, a, b, h, w);
    for (int64_t l = 0; w->accb && l < g->L; l++) {
        store_row(&a->db, b, l, grp, g->N, w->accb + l * g->N);
        store_row(&a->dc, b, l, grp, g->N, w->accc + l * g->N);
    }
}

/* The per-head sums: dA, ddt_bias and dskip from the (b, h) partials (NULL: zeros), the
 * batch in order. */
static void bwd_head_sums(const bk_ssd_desc *d, const bk_ssd_bwd_args *a, const bwd_buf *w)
{
    const int64_t H = d->heads, sw = skip_width(d);
    for (int64_t h = 0; h < H; h++) { /* O(B H W): one thread */
        double sa = 0.0, sb = 0.0, ss[BK_SSD_MAX_DIM] = {0};
        for (int64_t b = 0; w && b < d->batch; b++) {
            sa += w->pa[b * H + h];
            sb += w->pbias[b * H + h];
            for (int64_t k = 0; k < sw; k++)
                ss[k] += w->pskip[(b * H + h) * sw + k];
        }
        bk_store_f64(a->da.data, a->da.dtype, h * a->da.strides[0], sa);
        if (a->ddt_bias)
            bk_store_f64(a->ddt_bias->data, a->ddt_bias->dtype, h * a->ddt_bias->strides[0], sb);
        if (sw == 1)
            bk_store_f64(a->dskip->data, a->dskip->dtype, h * a->dskip->strides[0], ss[0]);
        else if (sw > 1)
            bk_scatter_f64(elem(a->dskip, h * a->dskip->strides[0]), a->dskip->dtype, a->dskip->strides[1], sw, ss);
    }
}

bk_status bk_cpu_ssd_bwd(const bk_ssd_desc *d, const bk_ssd_bwd_args *a, void *workspace)
{
    const ssd_geom g = ssd_geometry(d, true);
    if (g.slots == 0) { /* empty batch or sequence: the sums are 0, dinit = dfinal (or 0) */
        bwd_head_sums(d, a, NULL);
        double row[BK_SSD_MAX_DIM] = {0};
        for (int64_t b = 0; a->dinitial_states && b < g.B; b++)
            for (int64_t h = 0; h < g.H; h++)
                for (int64_t k = 0; k < g.D; k++) {
                    if (a->dfinal_states)
                        load_rows(a->dfinal_states, b, h, k, 1, g.N, row);
                    store_row(a->dinitial_states, b, h, k, g.N, row);
                }
        return BK_STATUS_SUCCESS;
    }
    bwd_buf w;
    bwd_layout(d, &g, workspace, &w);
    const int64_t BG = g.B * g.G;
#pragma omp parallel for schedule(static) if (parallel_worth(&g))
    for (int64_t slot = 0; slot < g.slots; slot++) {
        const bwd_buf p = bwd_slot(&g, &w, slot);
        for (int64_t bg = slot; bg < BG; bg += g.slots)
            bwd_group(d, &g, a, bg / g.G, bg % g.G, &p);
    }
    bwd_head_sums(d, a, &w);
    return BK_STATUS_SUCCESS;
}

/* ---------------------------------------------------------------- step -- */

bk_status bk_cpu_ssd_step(const bk_ssd_step_desc *d, const bk_ssd_step_args *a)
{
    const bk_ssd_opts o = bk_ssd_step_opts(d);
    const int64_t R = d->batch, H = d->heads, D = d->head_dim, N = d->state_dim, P = o.groups > 0 ? H / o.groups : 1;
    const bk_tensor *st = &a->state;
    /* heads in parallel (disjoint states), requests in order */
#pragma omp parallel for schedule(static) if (R * H * D * N >= BK_CPU_SSD_PARALLEL_WORK)
    for (int64_t h = 0; h < H; h++) {
        head_consts hc;
        load_head(&o, &a->a, a->dt_bias, a->skip, h, &hc);
        double x[BK_SSD_MAX_DIM], z[BK_SSD_MAX_DIM], u[BK_SSD_MAX_DIM], y[BK_SSD_MAX_DIM];
        double bv[BK_SSD_MAX_DIM], cv[BK_SSD_MAX_DIM], row[BK_SSD_MAX_DIM];
        for (int64_t r = 0; r < R; r++) {
            const int64_t p = a->state_indices ? (int64_t)((const int32_t *)a->state_indices->data)[r] : r;
            const int64_t grp = h / P;
            double slope;
            const double dt =
                dt_effective(&o, bk_load_f64(a->dt.data, a->dt.dtype, bk_offset2(&a->dt, r, h)) + hc.bias, &slope);
            const double decay = exp(dt * hc.A);
            bk_gather_f64(elem(&a->x, bk_offset3(&a->x, r, h, 0)), a->x.dtype, a->x.strides[2], D, x);
            bk_gather_f64(elem(&a->b, bk_offset3(&a->b, r, grp, 0)), a->b.dtype, a->b.strides[2], N, bv);
            bk_gather_f64(elem(&a->c, bk_offset3(&a->c, r, grp, 0)), a->c.dtype, a->c.strides[2], N, cv);
            for (int64_t k = 0; k < D; k++) {
                load_rows(st, p, h, k, 1, N, row);
                for (int64_t m = 0; m < N; m++)
                    row[m] = decay * row[m] + dt * x[k] * bv[m];
                store_row(st, p, h, k, N, row);
                u[k] = dot(row, cv, N);
            }
            if (a->z)
                bk_gather_f64(elem(a->z, bk_offset3(a->z, r, h, 0)), a->z->dtype, a->z->strides[2], D, z);
            finish_row(&hc, x, a->z ? z : NULL, D, u, y);
            bk_scatter_f64(elem(&a->y, bk_offset3(&a->y, r, h, 0)), a->y.dtype, a->y.strides[2], D, y);
        }
    }
    return BK_STATUS_SUCCESS;
}
