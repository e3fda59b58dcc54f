/* ssd.c (CPU) - Mamba-2 SSD chunk scan, forward and backward, reference kernels.
 *
 * Math, per batch b and head h (state [D, N], h_{-1} = 0):
 *   a_t = dt_t * A;   h_t = exp(a_t) h_{t-1} + dt_t x_t B_t^T;   y_t = h_t C_t
 *
 * Shapes: x, y, dy, dx [B, L, H, D]; dt, ddt [B, L, H]; A, dA [H]; B, C, dB, dC [B, L, H, N];
 * any outer strides, rows read with their inner stride.
 *
 * Forward, the chunked (SSD) algorithm. The sequence is cut into chunks of
 * Q = min(chunk_size, L) steps. Inside a chunk, with cum_t = sum_{u = chunk start..t} a_u
 * and S the state carried in from the previous chunk:
 *   y_t = exp(cum_t) S C_t + sum_{s <= t} (C_t . B_s) exp(cum_t - cum_s) dt_s x_s
 *   S  <- exp(cum_last) S + sum_s exp(cum_last - cum_s) dt_s x_s B_s^T      (next chunk)
 * The first line is the quadratic "attention" form inside the chunk plus the carried state;
 * the second passes the state on. No per-step state is ever formed.
 *
 * Backward, exact, the same chunks:
 *   1. forward sweep: the state at the start of every chunk, kept in the workspace;
 *   2. reverse sweep over the chunks, carrying dS = dL/d(state at the chunk's end); inside a
 *      chunk, with w_ts = exp(cum_t - cum_s) for s <= t and the chunk's last step l:
 *        g_s   = sum_{t >= s} w_ts (C_t . B_s) dy_t + w_ls dS B_s       dx_s = dt_s g_s
 *        dB_s  = dt_s [sum_{t >= s} w_ts (dy_t . x_s) C_t + w_ls dS^T x_s]
 *        dC_t  = exp(cum_t) S^T dy_t + sum_{s <= t} w_ts dt_s (dy_t . x_s) B_s
 *      and dL/dcum_t collects every exp() factor that holds cum_t:
 *        + P_st to t and - P_st to s,  P_st = w_ts dt_s (C_t . B_s)(x_s . dy_t), s < t
 *        + R_s to l and - R_s to s,    R_s  = w_ls dt_s x_s . (dS B_s),      s < l
 *        + exp(cum_t) dy_t . (S C_t) to t,  + exp(cum_l) <dS, S> to l
 *      then da_u = sum_{t >= u} dL/dcum_t (a reverse running sum), and
 *        ddt_u = x_u . g_u + A da_u,     dA_h += dt_u da_u
 *      and dS <- exp(cum_l) dS + sum_t exp(cum_t) dy_t C_t^T for the previous chunk.
 *
 * Work: f64 arithmetic for every dtype. (batch, head) slices are dealt to
 * S = min(B*H, BK_CPU_SSD_SLOTS) work slots (slice i to slot i % S); OpenMP runs the slots
 * in parallel and each slot owns its piece of the caller's workspace. Each slice is
 * computed by one thread in a fixed order. dA: each slice's partial sum (its steps in
 * reverse order) goes to the workspace, then one thread per head adds the partials over
 * the batch in order. So every output is bit-identical whatever the thread count, and no
 * atomics are used. No allocation: the workspace (layouts below, the same function sizes
 * and carves) and stack rows of at most BK_SSD_MAX_DIM doubles.
 *
 * Not yet: ngroups, the D skip, the z gate, dt_bias + softplus, initial/final states,
 * seq_idx. The cost is O(L (Q (D + N) + D N)) per slice; the backward keeps one state per
 * chunk, so a tiny chunk_size on a long sequence needs a large workspace.
 */
#include "cpu/ssd.h"
#include "core/core.h"

#include <math.h>
#include <string.h>

typedef struct ssd_geom {
    int64_t B, L, H, D, N;
    int64_t Q;     /* steps per chunk: min(chunk_size, L) */
    int64_t K;     /* chunks: ceil(L / Q) */
    int64_t BH;    /* slices */
    int64_t slots; /* work slots, 0 for an empty problem */
} ssd_geom;

static ssd_geom ssd_geometry(const bk_ssd_desc *d)
{
    ssd_geom g;
    g.B = d->batch;
    g.L = d->seq_len;
    g.H = d->heads;
    g.D = d->head_dim;
    g.N = d->state_dim;
    g.Q = g.L < d->chunk_size ? g.L : d->chunk_size;
    g.K = g.Q > 0 ? (g.L + g.Q - 1) / g.Q : 0;
    g.BH = g.B * g.H;
    g.slots = (g.BH == 0 || g.L == 0) ? 0 : (g.BH < BK_CPU_SSD_SLOTS ? g.BH : BK_CPU_SSD_SLOTS);
    return g;
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

/* dt of steps l0 .. l0+n-1 of slice (b, h), and cum[i] = sum_{u <= i} dt[u] * A. */
static void load_dt(const bk_tensor *dt, int64_t b, int64_t l0, int64_t h, int64_t n, double A, double *dtv,
                    double *cum)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        dtv[i] = bk_load_f64(dt->data, dt->dtype, bk_offset3(dt, b, l0 + i, h));
        acc += dtv[i] * A;
        cum[i] = acc;
    }
}

static double dot(const double *u, const double *v, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += u[i] * v[i];
    return s;
}

/* S[D][N] <- exp(cum_l) S + sum_s exp(cum_l - cum_s) dt_s x_s B_s^T over a chunk of n steps. */
static void advance_state(double *S, const double *X, const double *Bm, const double *dtv, const double *cum,
                          int64_t n, int64_t D, int64_t N)
{
    const double cl = cum[n - 1], el = exp(cl);
    for (int64_t i = 0; i < D * N; i++)
        S[i] *= el;
    for (int64_t s = 0; s < n; s++) {
        const double w = exp(cl - cum[s]) * dtv[s];
        const double *xs = X + s * D, *bs = Bm + s * N;
        for (int64_t d = 0; d < D; d++) {
            const double wx = w * xs[d];
            double *row = S + d * N;
            for (int64_t k = 0; k < N; k++)
                row[k] += wx * bs[k];
        }
    }
}

/* ------------------------------------------------------------ forward -- */

/* One slot's piece of every workspace array. */
typedef struct fwd_buf {
    double *state; /* [D][N] */
    double *x;     /* [Q][D] */
    double *b, *c; /* [Q][N] */
    double *dt;    /* [Q] */
    double *cum;   /* [Q] */
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
    return cv.offset;
}

static fwd_buf fwd_slot(const ssd_geom *g, const fwd_buf *w, int64_t slot)
{
    fwd_buf p = {w->state + slot * g->D * g->N, w->x + slot * g->Q * g->D, w->b + slot * g->Q * g->N,
                 w->c + slot * g->Q * g->N,     w->dt + slot * g->Q,        w->cum + slot * g->Q};
    return p;
}

size_t bk_cpu_ssd_fwd_workspace(const bk_ssd_desc *d)
{
    ssd_geom g = ssd_geometry(d);
    fwd_buf w;
    return g.slots == 0 ? 0 : fwd_layout(&g, NULL, &w);
}

/* y of slice (b, h), chunk by chunk. */
static void fwd_slice(const ssd_geom *g, const bk_ssd_fwd_args *a, int64_t b, int64_t h, const fwd_buf *w)
{
    const int64_t D = g->D, N = g->N, L = g->L, Q = g->Q;
    const double A = bk_load_f64(a->a.data, a->a.dtype, h * a->a.strides[0]);
    double *S = w->state, *X = w->x, *Bm = w->b, *Cm = w->c, *dtv = w->dt, *cum = w->cum;
    double y[BK_SSD_MAX_DIM];
    memset(S, 0, f64s(D * N));
    for (int64_t l0 = 0; l0 < L; l0 += Q) {
        const int64_t n = L - l0 < Q ? L - l0 : Q;
        load_rows(&a->x, b, l0, h, n, D, X);
        load_rows(&a->b, b, l0, h, n, N, Bm);
        load_rows(&a->c, b, l0, h, n, N, Cm);
        load_dt(&a->dt, b, l0, h, n, A, dtv, cum);
        for (int64_t t = 0; t < n; t++) {
            const double *ct = Cm + t * N;
            /* the state carried in, decayed to step t */
            const double et = exp(cum[t]);
            for (int64_t d = 0; d < D; d++)
                y[d] = et * dot(S + d * N, ct, N);
            /* the chunk's own steps s <= t */
            for (int64_t s = 0; s <= t; s++) {
                const double ws = exp(cum[t] - cum[s]) * dtv[s] * dot(ct, Bm + s * N, N);
                const double *xs = X + s * D;
                for (int64_t d = 0; d < D; d++)
                    y[d] += ws * xs[d];
            }
            store_row(&a->y, b, l0 + t, h, D, y);
        }
        if (l0 + n < L)
            advance_state(S, X, Bm, dtv, cum, n, D, N);
    }
}

bk_status bk_cpu_ssd_fwd(const bk_ssd_desc *d, const bk_ssd_fwd_args *a, void *workspace)
{
    const ssd_geom g = ssd_geometry(d);
    if (g.slots == 0)
        return BK_STATUS_SUCCESS; /* y is empty */
    fwd_buf w;
    fwd_layout(&g, workspace, &w);
#pragma omp parallel for schedule(static)
    for (int64_t slot = 0; slot < g.slots; slot++) {
        const fwd_buf p = fwd_slot(&g, &w, slot);
        for (int64_t bh = slot; bh < g.BH; bh += g.slots)
            fwd_slice(&g, a, bh / g.H, bh % g.H, &p);
    }
    return BK_STATUS_SUCCESS;
}

/* ----------------------------------------------------------- backward -- */

typedef struct bwd_buf {
    double *states;   /* [K][D][N]: state at the start of each chunk */
    double *dstate;   /* [D][N]: dL/d(state at the end of the current chunk) */
    double *x, *dy;   /* [Q][D] */
    double *b, *c;    /* [Q][N] */
    double *dt, *cum; /* [Q] */
    double *dcum;     /* [Q]: dL/dcum */
    double *ddt0;     /* [Q]: x_s . g_s, the part of ddt that is not through the decay */
    double *partial;  /* [B*H] (shared by all slots): dA of each slice */
} bwd_buf;

static size_t bwd_layout(const ssd_geom *g, void *base, bwd_buf *w)
{
    bk_carver cv = bk_carver_start(base);
    const int64_t S = g->slots, DN = g->D * g->N;
    w->states = bk_carve(&cv, f64s(S * g->K * DN));
    w->dstate = bk_carve(&cv, f64s(S * DN));
    w->x = bk_carve(&cv, f64s(S * g->Q * g->D));
    w->dy = bk_carve(&cv, f64s(S * g->Q * g->D));
    w->b = bk_carve(&cv, f64s(S * g->Q * g->N));
    w->c = bk_carve(&cv, f64s(S * g->Q * g->N));
    w->dt = bk_carve(&cv, f64s(S * g->Q));
    w->cum = bk_carve(&cv, f64s(S * g->Q));
    w->dcum = bk_carve(&cv, f64s(S * g->Q));
    w->ddt0 = bk_carve(&cv, f64s(S * g->Q));
    w->partial = bk_carve(&cv, f64s(g->BH));
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
    p.dcum += slot * g->Q;
    p.ddt0 += slot * g->Q;
    return p;
}

size_t bk_cpu_ssd_bwd_workspace(const bk_ssd_desc *d)
{
    ssd_geom g = ssd_geometry(d);
    bwd_buf w;
    return g.slots == 0 ? 0 : bwd_layout(&g, NULL, &w);
}

/* Gradients of slice (b, h); returns its part of dA[h]. */
static double bwd_slice(const ssd_geom *g, const bk_ssd_bwd_args *a, int64_t b, int64_t h, const bwd_buf *w)
{
    const int64_t D = g->D, N = g->N, L = g->L, Q = g->Q, K = g->K, DN = D * N;
    const double A = bk_load_f64(a->a.data, a->a.dtype, h * a->a.strides[0]);
    double *X = w->x, *DY = w->dy, *Bm = w->b, *Cm = w->c, *dtv = w->dt, *cum = w->cum;
    double *dcum = w->dcum, *ddt0 = w->ddt0, *dS = w->dstate;
    double g_row[BK_SSD_MAX_DIM], hb[BK_SSD_MAX_DIM], v[BK_SSD_MAX_DIM], dc_row[BK_SSD_MAX_DIM];

    /* 1. forward sweep: states[k] = state entering chunk k */
    memset(w->states, 0, f64s(DN));
    for (int64_t k = 0; k + 1 < K; k++) {
        const int64_t l0 = k * Q;
        load_rows(&a->x, b, l0, h, Q, D, X);
        load_rows(&a->b, b, l0, h, Q, N, Bm);
        load_dt(&a->dt, b, l0, h, Q, A, dtv, cum);
        memcpy(w->states + (k + 1) * DN, w->states + k * DN, f64s(DN));
        advance_state(w->states + (k + 1) * DN, X, Bm, dtv, cum, Q, D, N);
    }

    /* 2. reverse sweep */
    double dA = 0.0;
    memset(dS, 0, f64s(DN));
    for (int64_t k = K - 1; k >= 0; k--) {
        const int64_t l0 = k * Q, n = L - l0 < Q ? L - l0 : Q, last = n - 1;
        const double *S = w->states + k * DN;
        load_rows(&a->x, b, l0, h, n, D, X);
        load_rows(&a->dy, b, l0, h, n, D, DY);
        load_rows(&a->b, b, l0, h, n, N, Bm);
        load_rows(&a->c, b, l0, h, n, N, Cm);
        load_dt(&a->dt, b, l0, h, n, A, dtv, cum);
        memset(dcum, 0, f64s(n));

        /* inputs at s: dx_s, dB_s, the direct part of ddt_s */
        for (int64_t s = 0; s < n; s++) {
            const double *xs = X + s * D, *bs = Bm + s * N;
            const double wl = exp(cum[last] - cum[s]);
            for (int64_t d = 0; d < D; d++)
                g_row[d] = wl * dot(dS + d * N, bs, N);
            for (int64_t m = 0; m < N; m++)
                hb[m] = 0.0;
            for (int64_t d = 0; d < D; d++)
                for (int64_t m = 0; m < N; m++)
                    hb[m] += xs[d] * dS[d * N + m];
            for (int64_t m = 0; m < N; m++)
                hb[m] *= wl;
            if (s < last) { /* R_s: the carried-out state's factor exp(cum_l - cum_s) */
                const double r = dtv[s] * dot(xs, g_row, D);
                dcum[last] += r;
                dcum[s] -= r;
            }
            for (int64_t t = s; t < n; t++) {
                const double *ct = Cm + t * N, *dyt = DY + t * D;
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
                g_row[d] *= dtv[s];
            for (int64_t m = 0; m < N; m++)
                hb[m] *= dtv[s];
            store_row(&a->dx, b, l0 + s, h, D, g_row);
            store_row(&a->db, b, l0 + s, h, N, hb);
        }

        /* outputs at t: dC_t and the carried-in state's factor exp(cum_t) */
        for (int64_t t = 0; t < n; t++) {
            const double *ct = Cm + t * N, *dyt = DY + t * D;
            const double et = exp(cum[t]);
            for (int64_t m = 0; m < N; m++)
                v[m] = 0.0;
            for (int64_t d = 0; d < D; d++)
                for (int64_t m = 0; m < N; m++)
                    v[m] += dyt[d] * S[d * N + m];
            for (int64_t m = 0; m < N; m++)
                dc_row[m] = et * v[m];
            dcum[t] += et * dot(v, ct, N);
            for (int64_t s = 0; s <= t; s++) {
                const double ws = exp(cum[t] - cum[s]) * dtv[s] * dot(dyt, X + s * D, D);
                const double *bs = Bm + s * N;
                for (int64_t m = 0; m < N; m++)
                    dc_row[m] += ws * bs[m];
            }
            store_row(&a->dc, b, l0 + t, h, N, dc_row);
        }

        /* the carried-out state's factor exp(cum_l) on the carried-in state */
        const double el = exp(cum[last]);
        dcum[last] += el * dot(dS, S, DN);

        /* da_u = sum_{t >= u} dcum_t; ddt and dA */
        double da = 0.0;
        for (int64_t u = last; u >= 0; u--) {
            da += dcum[u];
            bk_store_f64(a->ddt.data, a->ddt.dtype, bk_offset3(&a->ddt, b, l0 + u, h), ddt0[u] + A * da);
            dA += dtv[u] * da;
        }

        /* dS for the previous chunk: dL/d(state entering this chunk) */
        if (k > 0) {
            for (int64_t i = 0; i < DN; i++)
                dS[i] *= el;
            for (int64_t t = 0; t < n; t++) {
                const double et = exp(cum[t]);
                const double *ct = Cm + t * N, *dyt = DY + t * D;
                for (int64_t d = 0; d < D; d++) {
                    const double e = et * dyt[d];
                    double *row = dS + d * N;
                    for (int64_t m = 0; m < N; m++)
                        row[m] += e * ct[m];
                }
            }
        }
    }
    return dA;
}

bk_status bk_cpu_ssd_bwd(const bk_ssd_desc *d, const bk_ssd_bwd_args *a, void *workspace)
{
    const ssd_geom g = ssd_geometry(d);
    if (g.slots == 0) { /* empty batch or sequence: dA = 0, every other output is empty */
        for (int64_t h = 0; h < g.H; h++)
            bk_store_f64(a->da.data, a->da.dtype, h * a->da.strides[0], 0.0);
        return BK_STATUS_SUCCESS;
    }
    bwd_buf w;
    bwd_layout(&g, workspace, &w);
#pragma omp parallel for schedule(static)
    for (int64_t slot = 0; slot < g.slots; slot++) {
        const bwd_buf p = bwd_slot(&g, &w, slot);
        for (int64_t bh = slot; bh < g.BH; bh += g.slots)
            p.partial[bh] = bwd_slice(&g, a, bh / g.H, bh % g.H, &p);
    }
    /* dA[h]: one thread per head, the batch in order */
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < g.H; h++) {
        double sum = 0.0;
        for (int64_t b = 0; b < g.B; b++)
            sum += w.partial[b * g.H + h];
        bk_store_f64(a->da.data, a->da.dtype, h * a->da.strides[0], sum);
    }
    return BK_STATUS_SUCCESS;
}
