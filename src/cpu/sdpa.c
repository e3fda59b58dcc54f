/* sdpa.c (CPU) - flash attention forward and backward, reference kernels.
 *
 * Math (see attention.h): for query row i of head h (kv head hk = h / group, group =
 * Hq / Hkv) and off = Sk - Sq, the visible keys are
 *     [max(0, i + off - window_left) if window_left >= 0 else 0,
 *      min(Sk - 1, i + off)          if causal           else Sk - 1]
 * and s_ij = scale <q_i, k_j>, then softcap * tanh(s / softcap), then + slope[h] (j - i - off).
 *   forward:  y_i = sum_j softmax(s_i.)_j v_j,  lse_i = log sum_j exp(s_ij)
 *             (bk_cpu_attend_row, the shared online-softmax row of src/cpu/attend.c)
 *   backward: p_ij = exp(s_ij - lse_i) / sum_j' exp(s_ij' - lse_i)  (renormalised: the
 *             f32 lse then costs nothing, even in f64), D_i = <dy_i, y_i>,
 *             dz_ij = p_ij (<dy_i, v_j> - D_i) * scale * (1 - tanh^2) [tanh term only
 *             with softcap], dq_i = sum_j dz_ij k_j, dk_j += dz_ij q_i, dv_j += p_ij dy_i.
 * Shapes: q [B,Hq,Sq,Dqk], k [B,Hkv,Sk,Dqk], v [B,Hkv,Sk,Dv], y/dy [B,Hq,Sq,Dv],
 *         lse f32 [B,Hq,Sq], slopes f32 [Hq]; dq, dk, dv like q, k, v. Rows are read
 *         and written with inner stride 1, outer strides from the views (stride 0 on
 *         the kv-head axis of k/v reads one head for all).
 * Work:   f64 arithmetic for every dtype, rows on the stack (head dims <= 256).
 *         Forward: one query row per OpenMP iteration over (b, h, i).
 *         Backward: one (b, kv head) per OpenMP iteration: it walks the q heads of its
 *         group and their rows in order, writes each dq row once, and accumulates dk/dv
 *         of its kv head in f64 in its own slice of the workspace, then stores them. No
 *         atomics, a fixed order: bit-identical whatever the thread count.
 * Not yet: no tiling or blocking (one key row at a time, re-read per query row); the
 *         backward recomputes the scores twice per row (row sum, then gradients);
 *         parallelism of the backward is limited to B * Hkv. */
#include "cpu/sdpa.h"
#include "core/core.h"
#include "cpu/attend.h"

#include <math.h>
#include <stdint.h>

_Static_assert(BK_SDPA_MAX_HEAD_DIM <= BK_CPU_MAX_HEAD_DIM, "sdpa rows must fit the CPU stack rows");

/* Pointer to element `off` of a tensor's data. */
static const void *elem(const void *base, bk_dtype dtype, int64_t off)
{
    return (const char *)base + (size_t)off * bk_dtype_size(dtype);
}

static void *elem_w(void *base, bk_dtype dtype, int64_t off)
{
    return (char *)base + (size_t)off * bk_dtype_size(dtype);
}

/* Key and value rows of one (batch, kv head): row j at base + j * row_stride. */
typedef struct kv_rows {
    int64_t k_base, k_row, v_base, v_row;
} kv_rows;

static int64_t k_row_offset(const void *ctx, int64_t j)
{
    const kv_rows *r = (const kv_rows *)ctx;
    return r->k_base + j * r->k_row;
}

static int64_t v_row_offset(const void *ctx, int64_t j)
{
    const kv_rows *r = (const kv_rows *)ctx;
    return r->v_base + j * r->v_row;
}

/* The visible keys and score transforms of query row i (bottom-right aligned). */
static bk_attend_mask row_mask(const bk_sdpa_fwd_desc *d, double slope, int64_t i)
{
    const int64_t pos = i + (int64_t)d->kv_len - (int64_t)d->q_len;
    int64_t lo = 0, hi = (int64_t)d->kv_len - 1;
    if (d->causal && pos < hi)
        hi = pos;
    if (d->window_left >= 0 && pos - d->window_left > lo)
        lo = pos - d->window_left;
    bk_attend_mask m = {lo, hi, d->scale, d->softcap, slope, pos};
    return m;
}

static double head_slope(const bk_sdpa_fwd_desc *d, const bk_tensor *slopes, int64_t h)
{
    return d->alibi ? bk_load_f64(slopes->data, BK_DTYPE_F32, h * slopes->strides[0]) : 0.0;
}

/* ------------------------------------------------------------ forward -- */

bk_status bk_cpu_sdpa_fwd(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a)
{
    const int64_t B = d->batch, Hq = d->q_heads, Sq = d->q_len;
    const int64_t Dqk = d->head_dim_qk, Dv = d->head_dim_v, group = d->q_heads / d->kv_heads;
    const bk_dtype dt = d->dtype;
#pragma omp parallel for collapse(3) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < Sq; i++) {
                double q[BK_CPU_MAX_HEAD_DIM], y[BK_CPU_MAX_HEAD_DIM], lse;
                const int64_t hk = h / group;
                kv_rows rows = {bk_offset4(&a->k, b, hk, 0, 0), a->k.strides[2], bk_offset4(&a->v, b, hk, 0, 0),
                                a->v.strides[2]};
                bk_attend_keys keys = {a->k.data, a->v.data, dt, Dqk, Dv, k_row_offset, v_row_offset, &rows};
                bk_attend_mask mask = row_mask(d, head_slope(d, a->alibi_slopes, h), i);
                bk_gather_f64(elem(a->q.data, dt, bk_offset4(&a->q, b, h, i, 0)), dt, 1, Dqk, q);
                bk_cpu_attend_row(q, &keys, &mask, y, &lse);
                bk_scatter_f64(elem_w(a->y.data, dt, bk_offset4(&a->y, b, h, i, 0)), dt, 1, Dv, y);
                if (a->lse)
                    bk_store_f64(a->lse->data, BK_DTYPE_F32, bk_offset3(a->lse, b, h, i), lse);
            }
    return BK_STATUS_SUCCESS;
}

/* ----------------------------------------------------------- backward -- */

/* The workspace layout, for sizing (base NULL) and carving: the f64 dk accumulators
 * [B, Hkv, Sk, Dqk], then the dv accumulators [B, Hkv, Sk, Dv]. */
static size_t bwd_layout(const bk_sdpa_bwd_desc *d, void *base, double **acc_dk, double **acc_dv)
{
    const int64_t rows = bk_mul_sat(bk_mul_sat(d->batch, d->kv_heads), d->kv_len);
    bk_carver c = bk_carver_start(base);
    *acc_dk = (double *)bk_carve(&c, bk_bytes(bk_mul_sat(rows, d->head_dim_qk), sizeof(double)));
    *acc_dv = (double *)bk_carve(&c, bk_bytes(bk_mul_sat(rows, d->head_dim_v), sizeof(double)));
    return c.offset;
}

size_t bk_cpu_sdpa_bwd_workspace_size(const bk_sdpa_bwd_desc *d)
{
    /* int32 extents: the product can pass 2^64; the layout's sizes saturate to SIZE_MAX */
    double *dk, *dv;
    return bwd_layout(d, NULL, &dk, &dv);
}

/* Everything one backward row needs to find its data. */
typedef struct bwd_ctx {
    const bk_sdpa_bwd_desc *d;
    const bk_sdpa_bwd_args *a;
    int64_t b, hk;
    kv_rows rows;
} bwd_ctx;

/* Row i of query head h: writes dq_i, adds its terms to dk/dv (f64, this kv head). */
static void bwd_row(const bwd_ctx *c, int64_t h, int64_t i, double *dk, double *dv)
{
    const bk_sdpa_bwd_desc *d = c->d;
    const bk_sdpa_bwd_args *a = c->a;
    const bk_dtype dt = d->dtype;
    const int64_t Dqk = d->head_dim_qk, Dv = d->head_dim_v, b = c->b;
    double q[BK_CPU_MAX_HEAD_DIM], dy[BK_CPU_MAX_HEAD_DIM], y[BK_CPU_MAX_HEAD_DIM];
    double k[BK_CPU_MAX_HEAD_DIM], v[BK_CPU_MAX_HEAD_DIM], dq[BK_CPU_MAX_HEAD_DIM];
    for (int64_t e = 0; e < Dqk; e++)
        dq[e] = 0.0;
    const double slope = head_slope(d, a->alibi_slopes, h);
    const bk_attend_mask mask = row_mask(d, slope, i);
    const double lse = bk_load_f64(a->lse.data, BK_DTYPE_F32, bk_offset3(&a->lse, b, h, i));
    void *dq_row = elem_w(a->dq.data, dt, bk_offset4(&a->dq, b, h, i, 0));
    if (lse == -INFINITY || mask.key_lo > mask.key_hi) { /* a row that saw no key */
        bk_scatter_f64(dq_row, dt, 1, Dqk, dq);
        return;
    }
    bk_gather_f64(elem(a->q.data, dt, bk_offset4(&a->q, b, h, i, 0)), dt, 1, Dqk, q);
    bk_gather_f64(elem(a->dy.data, dt, bk_offset4(&a->dy, b, h, i, 0)), dt, 1, Dv, dy);
    bk_gather_f64(elem(a->y.data, dt, bk_offset4(&a->y, b, h, i, 0)), dt, 1, Dv, y);
    double dsum = 0.0; /* D_i = <dy_i, y_i> = sum_j p_ij <dy_i, v_j> */
    for (int64_t e = 0; e < Dv; e++)
        dsum += dy[e] * y[e];
    double l = 0.0; /* the row sum of exp(s - lse): 1 up to the rounding of lse */
    for (int64_t j = mask.key_lo; j <= mask.key_hi; j++) {
        bk_gather_f64(elem(a->k.data, dt, k_row_offset(&c->rows, j)), dt, 1, Dqk, k);
        l += exp(bk_cpu_attend_score(q, k, Dqk, &mask, j) - lse);
    }
    if (l > 0.0) {
        for (int64_t j = mask.key_lo; j <= mask.key_hi; j++) {
            bk_gather_f64(elem(a->k.data, dt, k_row_offset(&c->rows, j)), dt, 1, Dqk, k);
            bk_gather_f64(elem(a->v.data, dt, v_row_offset(&c->rows, j)), dt, 1, Dv, v);
            const double s = bk_cpu_attend_score(q, k, Dqk, &mask, j);
            const double p = exp(s - lse) / l;
            double dp = 0.0;
            for (int64_t e = 0; e < Dv; e++)
                dp += dy[e] * v[e];
            double g = p * (dp - dsum) * d->scale;
            if (d->softcap > 0.0) { /* d/dx softcap tanh(x / softcap) = 1 - tanh^2 */
                const double th = (s - slope * (double)(j - mask.query_pos)) / d->softcap;
                g *= 1.0 - th * th;
            }
            double *dk_j = dk + j * Dqk, *dv_j = dv + j * Dv;
            for (int64_t e = 0; e < Dqk; e++) {
                dq[e] += g * k[e];
                dk_j[e] += g * q[e];
            }
            for (int64_t e = 0; e < Dv; e++)
                dv_j[e] += p * dy[e];
        }
    }
    bk_scatter_f64(dq_row, dt, 1, Dqk, dq);
}

bk_status bk_cpu_sdpa_bwd(const bk_sdpa_bwd_desc *d, bk_workspace workspace, const bk_sdpa_bwd_args *a)
{
    const int64_t B = d->batch, Hkv = d->kv_heads, Sq = d->q_len, Sk = d->kv_len;
    const int64_t Dqk = d->head_dim_qk, Dv = d->head_dim_v, group = d->q_heads / d->kv_heads;
    const bk_dtype dt = d->dtype;
    double *acc_dk, *acc_dv;
    if (Sq == 0 && Sk == 0)
        return BK_STATUS_SUCCESS; /* every output is empty: no walk over the (b, kv head) pairs */
    bwd_layout(d, workspace.data, &acc_dk, &acc_dv);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t hk = 0; hk < Hkv; hk++) {
            const int64_t slice = b * Hkv + hk;
            /* no keys: the workspace is empty (possibly NULL); no pointer arithmetic on it */
            double *dk = Sk > 0 ? acc_dk + slice * Sk * Dqk : NULL, *dv = Sk > 0 ? acc_dv + slice * Sk * Dv : NULL;
            for (int64_t e = 0; e < Sk * Dqk; e++)
                dk[e] = 0.0;
            for (int64_t e = 0; e < Sk * Dv; e++)
                dv[e] = 0.0;
            bwd_ctx c = {d, a, b, hk,
                         {bk_offset4(&a->k, b, hk, 0, 0), a->k.strides[2], bk_offset4(&a->v, b, hk, 0, 0),
                          a->v.strides[2]}};
            for (int64_t h = hk * group; Sq > 0 && h < (hk + 1) * group; h++) /* no walk over an empty group */
                for (int64_t i = 0; i < Sq; i++)
                    bwd_row(&c, h, i, dk, dv);
            for (int64_t j = 0; j < Sk; j++) {
                bk_scatter_f64(elem_w(a->dk.data, dt, bk_offset4(&a->dk, b, hk, j, 0)), dt, 1, Dqk, dk + j * Dqk);
                bk_scatter_f64(elem_w(a->dv.data, dt, bk_offset4(&a->dv, b, hk, j, 0)), dt, 1, Dv, dv + j * Dv);
            }
        }
    return BK_STATUS_SUCCESS;
}
