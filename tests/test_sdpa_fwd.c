/* test_sdpa_fwd.c - sdpa_fwd against a naive f64 reference with the whole score row
 * materialised (two-pass softmax), for every dtype, causal and not, q_len != kv_len
 * both ways (empty rows), GQA/MQA (also through stride-0 kv heads), Dqk != Dv,
 * padded views, sliding window, softcap, ALiBi, lse present and absent, D = 256,
 * empty extents; then bad inputs, determinism and the CUDA section.
 * Every case runs on the CPU and, when a GPU is present, on CUDA through bkt_dev (same
 * references, poisoned outputs, a non-default stream). The tensor-core cases (f16/bf16,
 * D 64/128/256) check that select picked the tensor-core kernel, the others the generic
 * one. Slack for the tensor-core kernel (k_mma_slack): it rounds P to the input dtype
 * before P V (as flash-attn does), which adds about one more rounding of the output
 * (flash-attn's rule: at most 2x the error of a same-precision naive reference). */
#include "bk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const bk_dtype k_dtypes[] = {BK_DTYPE_F32, BK_DTYPE_F64, BK_DTYPE_F16, BK_DTYPE_BF16};

typedef struct cfg {
    const char *name;
    int32_t b, hq, hkv, sq, sk, dqk, dv;
    bool causal;
    int32_t window;  /* -1 = off */
    double softcap;  /* 0 = off */
    bool alibi;
    double scale;    /* 0 = 1 / sqrt(dqk) */
    bool kv_bcast;   /* k/v come from one head, read through stride 0 on the head axis */
    int64_t pad;     /* padding of every outer stride */
    bool lse;        /* ask for lse */
} cfg;

static const cfg k_cases[] = {
    /* name                         b  hq hkv sq   sk  dqk dv  causal win cap  alibi scale bcast pad lse */
    {"plain 7x33",                  2, 3, 3,  7,   33, 16, 16, false, -1, 0.0, false, 0, false, 0, true},
    {"causal square",               1, 2, 2,  33,  33, 32, 32, true,  -1, 0.0, false, 0, false, 0, true},
    {"causal q<kv 7x33",            2, 2, 1,  7,   33, 16, 8,  true,  -1, 0.0, false, 0, false, 0, true},
    {"causal q>kv 33x7 empty rows", 2, 2, 2,  33,  7,  8,  16, true,  -1, 0.0, false, 0, false, 0, true},
    {"noncausal q>kv 33x7",         1, 2, 2,  33,  7,  8,  8,  false, -1, 0.0, false, 0, false, 0, true},
    {"gqa 6/2 dqk!=dv padded",      2, 6, 2,  13,  29, 24, 40, true,  -1, 0.0, false, 0, false, 3, true},
    {"gqa 6/2 stride-0 kv heads",   2, 6, 2,  11,  17, 16, 12, false, -1, 0.0, false, 0, true,  2, true},
    {"mqa 4/1",                     1, 4, 1,  9,   23, 8,  8,  true,  -1, 0.0, false, 0, false, 0, true},
    {"window causal 5",             1, 2, 2,  33,  33, 16, 16, true,  5,  0.0, false, 0, false, 0, true},
    {"window 0 causal q<kv",        1, 2, 2,  7,   33, 16, 16, true,  0,  0.0, false, 0, false, 0, true},
    {"window 4 noncausal",          1, 2, 1,  7,   33, 8,  8,  false, 4,  0.0, false, 0, false, 0, true},
    {"softcap 0.7",                 2, 2, 2,  13,  17, 16, 16, false, -1, 0.7, false, 1.0, false, 0, true},
    {"alibi causal gqa",            1, 4, 2,  17,  31, 16, 16, true,  -1, 0.0, true,  0, false, 0, true},
    {"everything",                  2, 6, 3,  19,  37, 20, 12, true,  9,  2.5, true,  0.9, false, 5, true},
    {"everything stride-0 q>kv",    1, 6, 2,  37,  19, 12, 20, true,  6,  1.5, true,  0, true,  1, true},
    {"no lse",                      2, 3, 1,  7,   33, 16, 24, true,  -1, 0.0, false, 0, false, 2, false},
    {"no lse alibi softcap",        1, 2, 2,  5,   5,  4,  4,  false, 2,  3.0, true,  0, false, 0, false},
    {"D=256",                       1, 2, 1,  5,   9,  256, 256, true, -1, 0.0, false, 0, false, 1, true},
    {"ones",                        1, 1, 1,  1,   1,  1,  1,  true,  -1, 0.0, true,  0, false, 0, true},
    {"130 x 130",                   1, 2, 1,  130, 130, 64, 64, true, -1, 0.0, false, 0, false, 0, true},
    {"kv_len 0",                    2, 2, 1,  5,   0,  8,  8,  false, -1, 0.0, false, 0, false, 1, true},
    {"q_len 0",                     2, 2, 2,  0,   7,  8,  8,  true,  -1, 0.0, false, 0, false, 0, true},
    {"batch 0",                     0, 2, 2,  3,   7,  8,  8,  true,  -1, 0.0, false, 0, false, 0, true},
};

/* Shapes the tensor-core kernel takes for f16/bf16 (Dqk == Dv in {64, 128, 256}):
 * lengths not multiples of 64, causal both ways, GQA, stride-0 kv heads, padded views
 * (pad 8 keeps rows 16-byte aligned: the cp.async path; odd pads take the plain-load
 * path), window/softcap/ALiBi in the score epilogue. */
static const cfg k_mma_cases[] = {
    /* name                         b  hq hkv sq   sk   dqk  dv   causal win cap  alibi scale bcast pad lse */
    {"mma d64 7x33 causal",         2, 4, 2,  7,   33,  64,  64,  true,  -1, 0.0, false, 0, false, 0, true},
    {"mma d64 130x257 gqa",         1, 4, 1,  130, 257, 64,  64,  false, -1, 0.0, false, 0, false, 8, true},
    {"mma d64 257x130 causal q>kv", 1, 2, 2,  257, 130, 64,  64,  true,  -1, 0.0, false, 0, false, 0, true},
    {"mma d128 1x1",                1, 1, 1,  1,   1,   128, 128, true,  -1, 0.0, false, 0, false, 0, true},
    {"mma d128 33x130 causal pad3", 2, 4, 2,  33,  130, 128, 128, true,  -1, 0.0, false, 0, false, 3, true},
    {"mma d128 130x130 stride-0",   1, 4, 2,  130, 130, 128, 128, true,  -1, 0.0, false, 0, true,  8, false},
    {"mma d128 window softcap alibi", 1, 4, 2, 70, 200, 128, 128, true,  37, 1.5, true,  0, false, 0, true},
    {"mma d256 33x257 causal",      1, 2, 1,  33,  257, 256, 256, true,  -1, 0.0, false, 0, false, 8, true},
    {"mma d256 7x7 window",         1, 2, 2,  7,   7,   256, 256, false, 2,  0.0, false, 0, false, 1, true},
    {"mma d64 kv_len 0",            1, 2, 1,  5,   0,   64,  64,  false, -1, 0.0, false, 0, false, 0, true},
    {"mma d64 9x4 q>kv",            1, 4, 4,  9,   4,   64,  64,  false, -1, 0.0, false, 0, false, 0, true},
    {"mma d128 13x12 q>kv gqa",     2, 8, 2,  13,  12,  128, 128, false, -1, 0.0, false, 0, false, 0, true},
    /* large scales: row maxima jump by more than the lazy-rescale threshold (2^8) across
     * key tiles, so both the skipped and the taken rescale run (default scales skip it on
     * most tiles after the first) */
    {"mma d64 scale 2 peaky",       1, 2, 2,  100, 300, 64,  64,  false, -1, 0.0, false, 2.0, false, 0, true},
    {"mma d128 scale 0.6 causal",   1, 2, 1,  150, 260, 128, 128, true,  -1, 0.0, false, 0.6, false, 8, true},
    /* non-causal D 128 takes the 256-row tile: rows past Sq, plain loads (pad 3), window
     * and the general score path */
    {"mma d128 300x200 gqa",        1, 4, 2,  300, 200, 128, 128, false, -1, 0.0, false, 0, false, 8, true},
    {"mma d128 270x150 win cap alibi", 1, 2, 1, 270, 150, 128, 128, false, 20, 1.5, true, 0, false, 3, true},
    {"mma d256 scale 0.4",          1, 1, 1,  40,  200, 256, 256, false, -1, 0.0, false, 0.4, false, 0, true},
    /* non-causal D 64 takes 3 consumer warpgroups (192-row tiles) on the Hopper kernel
     * (the cases above); with softcap / ALiBi, 2 */
    {"mma d64 200x150 stride-0",    1, 4, 2,  200, 150, 64,  64,  false, -1, 0.0, false, 0, true,  8, true},
    {"mma d64 200x150 cap alibi",   1, 4, 2,  200, 150, 64,  64,  false, -1, 1.5, true,  0, false, 0, true},
    /* non-causal D 128 over several key tiles: a partial last one with stride-0 K/V, and
     * whole ones (352 = 11 x 32) */
    {"mma d128 90x353 stride-0",    1, 4, 2,  90,  353, 128, 128, false, -1, 0.0, false, 0, true,  0, true},
    {"mma d128 40x352 pad8",        2, 2, 1,  40,  352, 128, 128, false, -1, 0.0, false, 0, false, 8, true},
};

/* See the header: the tensor-core kernel's P is rounded to 16 bits. */
static const double k_mma_slack = 2.0;

static double cfg_scale(const cfg *c)
{
    return c->scale != 0.0 ? c->scale : 1.0 / sqrt((double)c->dqk);
}

/* A 4-d input view [s0,s1,s2,s3] over a fresh buffer filled with uniform values in
 * [lo, hi); with `bcast` the buffer holds one head and the view reads it through
 * stride 0 on axis 1. *n gets the buffer's element count. */
static bk_tensor make_input(bk_dtype dt, const int64_t *shape, int64_t pad, bool bcast, double lo, double hi,
                            void **buf, int64_t *n)
{
    int64_t s[4] = {shape[0], bcast ? 1 : shape[1], shape[2], shape[3]};
    bk_tensor probe = bkt_view_padded(NULL, dt, 4, s, pad);
    *n = bkt_view_span(&probe) + 1;
    *buf = bkt_alloc(dt, *n);
    bkt_fill(*buf, dt, *n, lo, hi);
    bk_tensor t = bkt_view_padded(*buf, dt, 4, s, pad);
    if (bcast) {
        t.shape[1] = shape[1];
        t.strides[1] = 0;
    }
    return t;
}

/* An output view over a fresh NaN-poisoned buffer. */
static bk_tensor make_output(bk_dtype dt, int32_t rank, const int64_t *shape, int64_t pad, void **buf, int64_t *n)
{
    bk_tensor probe = bkt_view_padded(NULL, dt, rank, shape, pad);
    *n = bkt_view_span(&probe) + 1;
    *buf = bkt_alloc(dt, *n);
    bkt_poison(*buf, dt, *n);
    return bkt_view_padded(*buf, dt, rank, shape, pad);
}

/* Independent reference: for each row, every score s_j materialised (masked ones
 * skipped), then max, exponentials, sum, weighted sum of v; all in f64.
 * q [B,Hq,Sq,Dqk], k [B,Hkv,Sk,Dqk], v [B,Hkv,Sk,Dv] row-major; y, lse out. */
static void ref_forward(const cfg *c, const double *q, const double *k, const double *v, const double *slopes,
                        double *y, double *lse)
{
    const int64_t group = c->hq / c->hkv, off = (int64_t)c->sk - c->sq;
    const double scale = cfg_scale(c);
    double *s = malloc((size_t)(c->sk + 1) * sizeof(double));
    bool *vis = malloc((size_t)(c->sk + 1));
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t h = 0; h < c->hq; h++)
            for (int64_t i = 0; i < c->sq; i++) {
                const int64_t hk = h / group, pos = i + off;
                const double *qi = q + ((b * c->hq + h) * c->sq + i) * c->dqk;
                double *yi = y + ((b * c->hq + h) * c->sq + i) * c->dv;
                double m = -INFINITY;
                for (int64_t j = 0; j < c->sk; j++) {
                    vis[j] = (!c->causal || j <= pos) && (c->window < 0 || j >= pos - c->window);
                    const double *kj = k + ((b * c->hkv + hk) * c->sk + j) * c->dqk;
                    double dot = 0.0;
                    for (int64_t e = 0; e < c->dqk; e++)
                        dot += qi[e] * kj[e];
                    s[j] = dot * scale;
                    if (c->softcap > 0.0)
                        s[j] = c->softcap * tanh(s[j] / c->softcap);
                    if (c->alibi)
                        s[j] += slopes[h] * (double)(j - pos);
                    if (vis[j] && s[j] > m)
                        m = s[j];
                }
                for (int64_t e = 0; e < c->dv; e++)
                    yi[e] = 0.0;
                if (m == -INFINITY) {
                    lse[(b * c->hq + h) * c->sq + i] = -INFINITY;
                    continue;
                }
                double l = 0.0;
                for (int64_t j = 0; j < c->sk; j++) {
                    if (!vis[j])
                        continue;
                    const double p = exp(s[j] - m);
                    const double *vj = v + ((b * c->hkv + hk) * c->sk + j) * c->dv;
                    l += p;
                    for (int64_t e = 0; e < c->dv; e++)
                        yi[e] += p * vj[e];
                }
                for (int64_t e = 0; e < c->dv; e++)
                    yi[e] /= l;
                lse[(b * c->hq + h) * c->sq + i] = m + log(l);
            }
    free(s);
    free(vis);
}

static double *gather_all(const bk_tensor *t)
{
    int64_t n = bk_tensor_numel(t);
    double *d = malloc((size_t)(n + 1) * sizeof(double));
    bkt_gather(t, d);
    return d;
}

static bool is_mma_shape(const cfg *c, bk_dtype dt)
{
    return (dt == BK_DTYPE_F16 || dt == BK_DTYPE_BF16) && c->dqk == c->dv &&
           (c->dqk == 64 || c->dqk == 128 || c->dqk == 256);
}

static void test_case(bk_target target, const cfg *c, bk_dtype dt)
{
    char what[160];
    const bool gpu = target.kind == BK_TARGET_CUDA, mma = gpu && is_mma_shape(c, dt);
    char tname[16];
    snprintf(tname, sizeof tname, gpu ? "cuda%d%d" : "cpu", (int)target.cc_major, (int)target.cc_minor);
    snprintf(what, sizeof what, "sdpa_fwd %s %s %s", tname, bk_dtype_name(dt), c->name);
    int64_t sh_q[4] = {c->b, c->hq, c->sq, c->dqk}, sh_k[4] = {c->b, c->hkv, c->sk, c->dqk};
    int64_t sh_v[4] = {c->b, c->hkv, c->sk, c->dv}, sh_y[4] = {c->b, c->hq, c->sq, c->dv};
    int64_t sh_l[3] = {c->b, c->hq, c->sq}, sh_s[1] = {c->hq};
    void *q, *k, *v, *y, *lse;
    int64_t nq, nk, nv, ny, nl;
    bk_tensor tq = make_input(dt, sh_q, c->pad, false, -2.0, 2.0, &q, &nq);
    bk_tensor tk = make_input(dt, sh_k, c->pad, c->kv_bcast, -2.0, 2.0, &k, &nk);
    bk_tensor tv = make_input(dt, sh_v, c->pad, c->kv_bcast, -1.0, 1.0, &v, &nv);
    bk_tensor ty = make_output(dt, 4, sh_y, c->pad, &y, &ny);
    bk_tensor tl = make_output(BK_DTYPE_F32, 3, sh_l, c->pad, &lse, &nl);
    float *slopes = bkt_alloc(BK_DTYPE_F32, c->hq);
    bkt_fill(slopes, BK_DTYPE_F32, c->hq, 0.05, 0.6);
    bk_tensor ts = bkt_view(slopes, BK_DTYPE_F32, 1, sh_s);
    void *y_before = bkt_snapshot(y, (size_t)ny * bk_dtype_size(dt));
    void *l_before = bkt_snapshot(lse, (size_t)nl * sizeof(float));

    double *rq = gather_all(&tq), *rk = gather_all(&tk), *rv = gather_all(&tv);
    double *ry = malloc((size_t)(bk_tensor_numel(&ty) + 1) * sizeof(double));
    double *rl = malloc((size_t)(bk_tensor_numel(&tl) + 1) * sizeof(double));
    double rs[64];
    for (int32_t h = 0; h < c->hq; h++)
        rs[h] = slopes[h];
    ref_forward(c, rq, rk, rv, rs, ry, rl);

    bk_sdpa_fwd_desc d = {c->b, c->hq, c->hkv, c->sq, c->sk, c->dqk, c->dv, cfg_scale(c),
                          c->causal, c->window, c->softcap, c->alibi, dt};
    bk_sdpa_fwd_plan plan;
    bk_status st = bk_sdpa_fwd_select(&d, target, BK_PREFER_FASTEST, &plan);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
        bkt_check(bk_sdpa_fwd_workspace_size(&plan) == 0, what, "workspace_size is not 0");
        const bk_math_precision want_math =
            !gpu ? BK_MATH_F64 : mma ? BK_MATH_F16_BF16_TENSOR : BK_MATH_F32;
        bkt_check(plan.info.precision.math == want_math, what, "select chose math %d, expected %d",
                  (int)plan.info.precision.math, (int)want_math);
        /* compute capability 9.0 takes the Hopper (wgmma) kernel, 8.x the mma.sync one */
        const bk_arch want_arch = !gpu ? BK_ARCH_CPU : mma && target.cc_major == 9 ? BK_ARCH_SM90 : BK_ARCH_SM80;
        bkt_check(plan.info.sku.arch == want_arch, what, "select chose arch %d, expected %d", (int)plan.info.sku.arch,
                  (int)want_arch);
        bk_sdpa_fwd_args args = {tq, tk, tv, ty, c->lse ? &tl : NULL, c->alibi ? &ts : NULL};
        bkt_dev dev = bkt_dev_begin(target);
        args.q.data = bkt_dev_in(&dev, q, (size_t)nq * bk_dtype_size(dt));
        args.k.data = bkt_dev_in(&dev, k, (size_t)nk * bk_dtype_size(dt));
        args.v.data = bkt_dev_in(&dev, v, (size_t)nv * bk_dtype_size(dt));
        args.y.data = bkt_dev_out(&dev, y, (size_t)ny * bk_dtype_size(dt));
        bk_tensor dl = tl, dsl = ts;
        dl.data = bkt_dev_out(&dev, lse, (size_t)nl * sizeof(float));
        dsl.data = bkt_dev_in(&dev, slopes, (size_t)c->hq * sizeof(float));
        args.lse = c->lse ? &dl : NULL;
        args.alibi_slopes = c->alibi ? &dsl : NULL;
        st = bk_sdpa_fwd_run(&plan, bkt_dev_stream(&dev), (bk_workspace){0}, &args);
        if (bkt_dev_end(&dev) && bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
            bkt_check(bk_last_error()[0] == '\0', what, "error sentence after success: %s", bk_last_error());
            bkt_check_close(what, &ty, ry, mma ? k_mma_slack : 1.0);
            bkt_check(bkt_untouched_outside(&ty, y_before, ny), what, "an element outside the output view was written");
            if (c->lse) {
                char w2[200];
                snprintf(w2, sizeof w2, "%s lse", what);
                bkt_check_close(w2, &tl, rl, 1.0);
                bkt_check(bkt_untouched_outside(&tl, l_before, nl), w2, "an element outside the output view was written");
            } else {
                bkt_check(bkt_same_bytes(l_before, lse, (size_t)nl * sizeof(float)), what,
                          "lse buffer written though not requested");
            }
            /* rows that see no key: exactly 0 and -inf */
            int64_t empty = 0, bad = 0;
            for (int64_t b = 0; b < c->b; b++)
                for (int64_t h = 0; h < c->hq; h++)
                    for (int64_t i = 0; i < c->sq; i++) {
                        int64_t ir[3] = {b, h, i};
                        if (rl[(b * c->hq + h) * c->sq + i] != -INFINITY)
                            continue;
                        empty++;
                        for (int64_t e = 0; e < c->dv; e++) {
                            int64_t iy[4] = {b, h, i, e};
                            bad += bkt_at(&ty, iy) != 0.0;
                        }
                        if (c->lse)
                            bad += bkt_at(&tl, ir) != -INFINITY;
                    }
            if (empty)
                bkt_check(bad == 0, what, "%lld values of %lld empty rows are not 0 / -inf", (long long)bad,
                          (long long)empty);
        }
    }
    free(rq);
    free(rk);
    free(rv);
    free(ry);
    free(rl);
    bkt_free(y_before);
    bkt_free(l_before);
    bkt_free(q);
    bkt_free(k);
    bkt_free(v);
    bkt_free(y);
    bkt_free(lse);
    bkt_free(slopes);
}

/* Sanity of the reference itself on a case worked by hand: two keys, one query,
 * scores 0 and log 3 -> weights 1/4, 3/4; lse = log 4. */
static void test_reference_by_hand(void)
{
    cfg c = {"by hand", 1, 1, 1, 1, 2, 1, 1, false, -1, 0.0, false, 1.0, false, 0, true};
    double q[1] = {log(3.0)}, k[2] = {0.0, 1.0}, v[2] = {4.0, 8.0}, y[1], l[1];
    ref_forward(&c, q, k, v, NULL, y, l);
    bkt_check(fabs(y[0] - 7.0) < 1e-14 && fabs(l[0] - log(4.0)) < 1e-14, "sdpa_fwd reference by hand",
              "y %.17g lse %.17g, expected 7 and log 4", y[0], l[0]);
}

/* Plans: SKU name, precision, every preference selects, rerun and thread counts give
 * the same bytes. */
static void test_plans_and_determinism(void)
{
    const char *what = "sdpa_fwd determinism";
    const bk_dtype dt = BK_DTYPE_BF16;
    cfg c = {"det", 2, 6, 2, 19, 37, 20, 12, true, 9, 2.5, true, 0.9, false, 0, true};
    int64_t sh_q[4] = {c.b, c.hq, c.sq, c.dqk}, sh_k[4] = {c.b, c.hkv, c.sk, c.dqk};
    int64_t sh_v[4] = {c.b, c.hkv, c.sk, c.dv}, sh_y[4] = {c.b, c.hq, c.sq, c.dv};
    int64_t sh_l[3] = {c.b, c.hq, c.sq}, sh_s[1] = {c.hq};
    void *q, *k, *v, *y, *lse;
    int64_t nq, nk, nv, ny, nl;
    bk_tensor tq = make_input(dt, sh_q, 0, false, -2, 2, &q, &nq);
    bk_tensor tk = make_input(dt, sh_k, 0, false, -2, 2, &k, &nk);
    bk_tensor tv = make_input(dt, sh_v, 0, false, -1, 1, &v, &nv);
    bk_tensor ty = make_output(dt, 4, sh_y, 0, &y, &ny);
    bk_tensor tl = make_output(BK_DTYPE_F32, 3, sh_l, 0, &lse, &nl);
    float slopes[6];
    bkt_fill(slopes, BK_DTYPE_F32, 6, 0.05, 0.6);
    bk_tensor ts = bkt_view(slopes, BK_DTYPE_F32, 1, sh_s);
    bk_sdpa_fwd_desc d = {c.b, c.hq, c.hkv, c.sq, c.sk, c.dqk, c.dv, c.scale, c.causal, c.window, c.softcap,
                          c.alibi, dt};
    const bk_preference prefs[3] = {BK_PREFER_FASTEST, BK_PREFER_DETERMINISTIC, BK_PREFER_REFERENCE};
    void *first_y = NULL, *first_l = NULL;
    for (int p = 0; p < 3; p++) {
        bk_sdpa_fwd_plan plan;
        if (!bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), prefs[p], &plan), BK_STATUS_SUCCESS, what))
            continue;
        char name[96];
        bk_sku_name(&plan.info.sku, name, sizeof name);
        bkt_check(strcmp(name, "attention/sdpa_fwd/bf16/cpu/reference") == 0, what, "sku %s", name);
        bkt_check(plan.info.precision.deterministic && plan.info.precision.bit_stable &&
                      plan.info.precision.accumulator == BK_DTYPE_F64,
                  what, "precision is not the CPU reference guarantee");
        bkt_check(plan.info.preference == prefs[p], what, "preference not recorded");
        for (int threads = 0; threads < 2; threads++) {
#ifdef _OPENMP
            int keep = omp_get_max_threads();
            if (threads == 1)
                omp_set_num_threads(1);
#else
            if (threads == 1)
                continue;
#endif
            bkt_poison(y, dt, ny);
            bkt_poison(lse, BK_DTYPE_F32, nl);
            bk_sdpa_fwd_args args = {tq, tk, tv, ty, &tl, &ts};
            bk_status st = bk_sdpa_fwd_run(&plan, NULL, (bk_workspace){0}, &args);
#ifdef _OPENMP
            omp_set_num_threads(keep);
#endif
            if (!bkt_expect_status(st, BK_STATUS_SUCCESS, what))
                continue;
            if (!first_y) {
                first_y = bkt_snapshot(y, (size_t)ny * bk_dtype_size(dt));
                first_l = bkt_snapshot(lse, (size_t)nl * sizeof(float));
            } else {
                bkt_check(bkt_same_bytes(first_y, y, (size_t)ny * bk_dtype_size(dt)) &&
                              bkt_same_bytes(first_l, lse, (size_t)nl * sizeof(float)),
                          what, "run with preference %d, %s threads is not bit-identical", p,
                          threads ? "1" : "all");
            }
        }
    }
    bkt_free(first_y);
    bkt_free(first_l);
    bkt_free(q);
    bkt_free(k);
    bkt_free(v);
    bkt_free(y);
    bkt_free(lse);
}

/* ------------------------------------------------------------ bad inputs -- */

typedef struct desc_case {
    const char *what;
    bk_sdpa_fwd_desc desc;
    bk_status want;
} desc_case;

static void test_bad_desc(void)
{
    const bk_sdpa_fwd_desc d = {2, 4, 2, 5, 7, 8, 6, 0.35, true, -1, 0.0, true, BK_DTYPE_F32};
    desc_case cases[32];
    int nc = 0;
#define DESC_CASE(label, field, value, status)                                                                         \
    do {                                                                                                               \
        cases[nc].what = label;                                                                                        \
        cases[nc].desc = d;                                                                                            \
        cases[nc].desc.field = value;                                                                                  \
        cases[nc++].want = status;                                                                                     \
    } while (0)
    DESC_CASE("sdpa_fwd batch -1", batch, -1, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd q_heads 0", q_heads, 0, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd kv_heads 0", kv_heads, 0, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd q_len -1", q_len, -1, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd kv_len -3", kv_len, -3, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd q_heads 5 / kv_heads 2", q_heads, 5, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd kv_heads 3", kv_heads, 3, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd head_dim_qk 0", head_dim_qk, 0, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd head_dim_v -2", head_dim_v, -2, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd head_dim_qk 257", head_dim_qk, 257, BK_STATUS_UNSUPPORTED);
    DESC_CASE("sdpa_fwd head_dim_v 512", head_dim_v, 512, BK_STATUS_UNSUPPORTED);
    DESC_CASE("sdpa_fwd window_left -2", window_left, -2, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd scale NaN", scale, NAN, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd scale inf", scale, INFINITY, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd softcap -0.5", softcap, -0.5, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd softcap inf", softcap, INFINITY, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd softcap NaN", softcap, NAN, BK_STATUS_INVALID_PROBLEM);
    DESC_CASE("sdpa_fwd dtype i32", dtype, BK_DTYPE_I32, BK_STATUS_UNSUPPORTED);
    DESC_CASE("sdpa_fwd dtype i64", dtype, BK_DTYPE_I64, BK_STATUS_UNSUPPORTED);
    DESC_CASE("sdpa_fwd dtype 99", dtype, (bk_dtype)99, BK_STATUS_INVALID_PROBLEM);
#undef DESC_CASE
    bk_sdpa_fwd_plan plan, before;
    memset(&plan, 0x5a, sizeof plan);
    before = plan;
    for (int c = 0; c < nc; c++) {
        bk_status st = bk_sdpa_fwd_select(&cases[c].desc, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
        bkt_expect_status(st, cases[c].want, cases[c].what);
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        bkt_check(memcmp(&plan, &before, sizeof plan) == 0, cases[c].what, "plan written on failure");
    }
    /* the sentences */
    bk_sdpa_fwd_desc bad = d;
    bad.q_heads = 6;
    bad.kv_heads = 4;
    bk_sdpa_fwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
    bkt_check(strcmp(bk_last_error(), "sdpa_fwd: desc.q_heads is 6, expected a multiple of desc.kv_heads = 4") == 0,
              "sdpa_fwd GQA sentence", "got \"%s\"", bk_last_error());
    bad = d;
    bad.head_dim_qk = 300;
    bk_sdpa_fwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
    bkt_check(strcmp(bk_last_error(), "sdpa_fwd: desc.head_dim_qk is 300, expected <= 256") == 0,
              "sdpa_fwd head-dim sentence", "got \"%s\"", bk_last_error());
    bad = d;
    bad.softcap = -1.0;
    bk_sdpa_fwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
    bkt_check(strstr(bk_last_error(), "sdpa_fwd: desc.softcap is -1") != NULL, "sdpa_fwd softcap sentence",
              "got \"%s\"", bk_last_error());

    bkt_expect_status(bk_sdpa_fwd_select(NULL, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_fwd NULL desc");
    bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, NULL), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_fwd NULL plan");
    bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), (bk_preference)7, &plan), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_fwd bad preference");
    bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cuda_cc(0, 0, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_INVALID_PROBLEM, "sdpa_fwd CUDA target without capability");
    bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "sdpa_fwd CUDA sm_75 (kernels need sm_80)");
    bkt_check(memcmp(&plan, &before, sizeof plan) == 0, "sdpa_fwd bad select", "plan written on failure");
    /* the edges that are valid */
    bad = d;
    bad.head_dim_qk = 256;
    bad.head_dim_v = 1;
    bad.window_left = 0;
    bad.softcap = 0.0;
    bad.scale = -2.0;
    bkt_expect_status(bk_sdpa_fwd_select(&bad, bk_target_cpu(), BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS,
                      "sdpa_fwd edge desc");
}

typedef struct args_case {
    const char *what;
    bk_sdpa_fwd_args args;
    const bk_sdpa_fwd_plan *plan;
    bk_status want;
} args_case;

static void test_bad_args(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    const bk_sdpa_fwd_desc d = {2, 4, 2, 5, 7, 8, 6, 0.35, true, -1, 0.0, true, dt};
    bk_sdpa_fwd_desc d_noalibi = d;
    d_noalibi.alibi = false;
    int64_t sh_q[4] = {2, 4, 5, 8}, sh_k[4] = {2, 2, 7, 8}, sh_v[4] = {2, 2, 7, 6}, sh_y[4] = {2, 4, 5, 6};
    int64_t sh_l[3] = {2, 4, 5}, sh_s[1] = {4}, sh_s2[1] = {2};
    float q[320], k[224], v[168], y[240], lse[40], sl[4], sl64d[4];
    bkt_fill(q, dt, 320, -1, 1);
    bkt_fill(k, dt, 224, -1, 1);
    bkt_fill(v, dt, 168, -1, 1);
    bkt_fill(sl, dt, 4, 0, 1);
    bkt_poison(y, dt, 240);
    bkt_poison(lse, dt, 40);
    void *y0 = bkt_snapshot(y, sizeof y), *l0 = bkt_snapshot(lse, sizeof lse);
    bk_sdpa_fwd_plan fp, fp_noalibi, fp_bad_kernel;
    bk_sdpa_bwd_plan bp;
    if (!bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS,
                           "sdpa_fwd select") ||
        !bkt_expect_status(bk_sdpa_fwd_select(&d_noalibi, bk_target_cpu(), BK_PREFER_FASTEST, &fp_noalibi),
                           BK_STATUS_SUCCESS, "sdpa_fwd select") ||
        !bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_SUCCESS,
                           "sdpa_bwd select"))
        goto done;
    fp_bad_kernel = fp;
    fp_bad_kernel.info.kernel = 7;
    bk_tensor tl = bkt_view(lse, BK_DTYPE_F32, 3, sh_l), ts = bkt_view(sl, BK_DTYPE_F32, 1, sh_s);
    const bk_sdpa_fwd_args good = {bkt_view(q, dt, 4, sh_q), bkt_view(k, dt, 4, sh_k), bkt_view(v, dt, 4, sh_v),
                                   bkt_view(y, dt, 4, sh_y), &tl, &ts};
    bk_tensor l_f64 = tl, l_shape = tl, l_bcast = tl, l_cap = tl, s_shape = bkt_view(sl, BK_DTYPE_F32, 1, sh_s2);
    bk_tensor s_f64 = bkt_view(sl64d, BK_DTYPE_F64, 1, sh_s2);
    s_f64.shape[0] = 4;
    l_f64.dtype = BK_DTYPE_F64;
    l_shape.shape[2] = 6;
    l_bcast.strides[1] = 0;
    l_cap.capacity = 39;
    args_case cases[48];
    int nc = 0;
#define ARGS_CASE(label, status, stmt)                                                                                 \
    do {                                                                                                               \
        cases[nc].what = label;                                                                                        \
        cases[nc].args = good;                                                                                         \
        cases[nc].plan = &fp;                                                                                          \
        cases[nc].want = status;                                                                                       \
        {                                                                                                              \
            bk_sdpa_fwd_args *a = &cases[nc].args;                                                                     \
            (void)a;                                                                                                   \
            stmt;                                                                                                      \
        }                                                                                                              \
        nc++;                                                                                                          \
    } while (0)
    ARGS_CASE("sdpa_fwd q.shape[3] wrong", BK_STATUS_INVALID_PROBLEM, a->q.shape[3] = 7);
    ARGS_CASE("sdpa_fwd k.shape[2] wrong", BK_STATUS_INVALID_PROBLEM, a->k.shape[2] = 8);
    ARGS_CASE("sdpa_fwd k.shape[1] = q_heads", BK_STATUS_INVALID_PROBLEM, a->k.shape[1] = 4);
    ARGS_CASE("sdpa_fwd v.shape[3] = head_dim_qk", BK_STATUS_INVALID_PROBLEM, a->v.shape[3] = 8);
    ARGS_CASE("sdpa_fwd y.shape[3] = head_dim_qk", BK_STATUS_INVALID_PROBLEM, a->y.shape[3] = 8);
    ARGS_CASE("sdpa_fwd k dtype f64", BK_STATUS_INVALID_PROBLEM, a->k.dtype = BK_DTYPE_F64);
    ARGS_CASE("sdpa_fwd y dtype f16", BK_STATUS_INVALID_PROBLEM, a->y.dtype = BK_DTYPE_F16);
    ARGS_CASE("sdpa_fwd q rank 3", BK_STATUS_INVALID_PROBLEM, a->q.rank = 3);
    ARGS_CASE("sdpa_fwd q data NULL", BK_STATUS_INVALID_PROBLEM, a->q.data = NULL);
    ARGS_CASE("sdpa_fwd y data NULL", BK_STATUS_INVALID_PROBLEM, a->y.data = NULL);
    ARGS_CASE("sdpa_fwd v negative stride", BK_STATUS_INVALID_PROBLEM, a->v.strides[0] = -84);
    ARGS_CASE("sdpa_fwd q inner stride 2", BK_STATUS_UNSUPPORTED,
              (a->q.strides[3] = 2, a->q.strides[2] = 16, a->q.strides[1] = 80, a->q.strides[0] = 320,
               a->q.capacity = 0));
    ARGS_CASE("sdpa_fwd v inner stride 2", BK_STATUS_UNSUPPORTED,
              (a->v.strides[3] = 2, a->v.strides[2] = 12, a->v.capacity = 0));
    ARGS_CASE("sdpa_fwd y inner stride 2", BK_STATUS_UNSUPPORTED,
              (a->y.strides[3] = 2, a->y.strides[2] = 12, a->y.strides[1] = 60, a->y.strides[0] = 240,
               a->y.capacity = 0));
    ARGS_CASE("sdpa_fwd q broadcast head axis", BK_STATUS_UNSUPPORTED, a->q.strides[1] = 0);
    ARGS_CASE("sdpa_fwd k broadcast batch axis", BK_STATUS_UNSUPPORTED, a->k.strides[0] = 0);
    ARGS_CASE("sdpa_fwd v broadcast row axis", BK_STATUS_UNSUPPORTED, a->v.strides[2] = 0);
    ARGS_CASE("sdpa_fwd y broadcast head axis", BK_STATUS_INVALID_PROBLEM, a->y.strides[1] = 0);
    ARGS_CASE("sdpa_fwd y overlapping", BK_STATUS_INVALID_PROBLEM, a->y.strides[2] = 3);
    ARGS_CASE("sdpa_fwd q capacity", BK_STATUS_BUFFER_TOO_SMALL, a->q.capacity = 319);
    ARGS_CASE("sdpa_fwd k capacity", BK_STATUS_BUFFER_TOO_SMALL, a->k.capacity = 200);
    ARGS_CASE("sdpa_fwd y capacity", BK_STATUS_BUFFER_TOO_SMALL, a->y.capacity = 239);
    ARGS_CASE("sdpa_fwd lse dtype f64", BK_STATUS_INVALID_PROBLEM, a->lse = &l_f64);
    ARGS_CASE("sdpa_fwd lse shape", BK_STATUS_INVALID_PROBLEM, a->lse = &l_shape);
    ARGS_CASE("sdpa_fwd lse broadcast", BK_STATUS_INVALID_PROBLEM, a->lse = &l_bcast);
    ARGS_CASE("sdpa_fwd lse capacity", BK_STATUS_BUFFER_TOO_SMALL, a->lse = &l_cap);
    ARGS_CASE("sdpa_fwd alibi without slopes", BK_STATUS_INVALID_PROBLEM, a->alibi_slopes = NULL);
    ARGS_CASE("sdpa_fwd slopes shape kv_heads", BK_STATUS_INVALID_PROBLEM, a->alibi_slopes = &s_shape);
    ARGS_CASE("sdpa_fwd slopes dtype f64", BK_STATUS_INVALID_PROBLEM, a->alibi_slopes = &s_f64);
    ARGS_CASE("sdpa_fwd slopes without alibi", BK_STATUS_INVALID_PROBLEM, cases[nc].plan = &fp_noalibi);
    ARGS_CASE("sdpa_fwd kernel id corrupted", BK_STATUS_INVALID_PROBLEM, cases[nc].plan = &fp_bad_kernel);
    ARGS_CASE("sdpa_fwd given a backward plan", BK_STATUS_INVALID_PROBLEM,
              cases[nc].plan = (const bk_sdpa_fwd_plan *)&bp);
#undef ARGS_CASE
    for (int c = 0; c < nc; c++) {
        bk_status st = bk_sdpa_fwd_run(cases[c].plan, NULL, (bk_workspace){0}, &cases[c].args);
        bkt_expect_status(st, cases[c].want, cases[c].what);
        bkt_check(bkt_same_bytes(y0, y, sizeof y) && bkt_same_bytes(l0, lse, sizeof lse), cases[c].what,
                  "output written on failure");
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        if (cases[c].plan != &fp_bad_kernel && cases[c].plan != (const bk_sdpa_fwd_plan *)&bp) {
            /* can_implement agrees with run */
            bkt_expect_status(bk_sdpa_fwd_can_implement(cases[c].plan, &cases[c].args), cases[c].want, cases[c].what);
        }
    }
    /* the sentences of a few */
    bk_sdpa_fwd_args a = good;
    a.k.shape[2] = 8;
    bk_sdpa_fwd_run(&fp, NULL, (bk_workspace){0}, &a);
    bkt_check(strcmp(bk_last_error(), "sdpa_fwd: k.shape[2] is 8, expected kv_len = 7") == 0, "sdpa_fwd k sentence",
              "got \"%s\"", bk_last_error());
    a = good;
    a.alibi_slopes = NULL;
    bk_sdpa_fwd_run(&fp, NULL, (bk_workspace){0}, &a);
    bkt_check(strstr(bk_last_error(), "sdpa_fwd: alibi_slopes is NULL") != NULL, "sdpa_fwd slopes sentence",
              "got \"%s\"", bk_last_error());
    a = good;
    bk_sdpa_fwd_run(&fp_noalibi, NULL, (bk_workspace){0}, &a);
    bkt_check(strstr(bk_last_error(), "desc.alibi is false") != NULL, "sdpa_fwd slopes sentence 2", "got \"%s\"",
              bk_last_error());

    bkt_expect_status(bk_sdpa_fwd_run(NULL, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_fwd NULL plan");
    bkt_expect_status(bk_sdpa_fwd_run(&fp, NULL, (bk_workspace){0}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_fwd NULL args");
    bkt_check(bkt_same_bytes(y0, y, sizeof y) && bkt_same_bytes(l0, lse, sizeof lse), "sdpa_fwd NULLs",
              "output written on failure");
    /* and the good call works (so every case above failed for its own reason) */
    bkt_expect_status(bk_sdpa_fwd_run(&fp, NULL, (bk_workspace){0}, &good), BK_STATUS_SUCCESS, "sdpa_fwd good args");
    bkt_check(!isnan(y[0]) && !isnan(lse[39]), "sdpa_fwd good args", "outputs not written");
done:
    bkt_free(y0);
    bkt_free(l0);
}

#ifdef BK_WITH_CUDA
/* Select on a (virtual) CUDA target, no device needed: the table's order and hooks. */
static void test_cuda_select(void)
{
    bk_sdpa_fwd_desc d = {2, 4, 2, 7, 33, 128, 128, 0.125, true, -1, 0.0, false, BK_DTYPE_BF16};
    bk_sdpa_fwd_plan plan;
    char name[96];
    const char *what = "sdpa_fwd cuda select";
    if (bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                          BK_STATUS_SUCCESS, what)) {
        bk_sku_name(&plan.info.sku, name, sizeof name);
        bkt_check(plan.info.precision.math == BK_MATH_F16_BF16_TENSOR && plan.info.precision.deterministic &&
                      plan.info.precision.accumulator == BK_DTYPE_F32 && plan.info.sku.arch == BK_ARCH_SM90,
                  what, "bf16 D128 on 9.0 did not get the Hopper tensor-core kernel (%s)", name);
    }
    /* 8.0 and 10.0 (no sm_90a code there) take the mma.sync kernel */
    const int ccs[2][2] = {{8, 0}, {10, 0}};
    for (int i = 0; i < 2; i++)
        if (bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cuda_cc(0, ccs[i][0], ccs[i][1]), BK_PREFER_FASTEST,
                                                 &plan),
                              BK_STATUS_SUCCESS, what)) {
            bk_sku_name(&plan.info.sku, name, sizeof name);
            bkt_check(plan.info.precision.math == BK_MATH_F16_BF16_TENSOR && plan.info.sku.arch == BK_ARCH_SM80, what,
                      "bf16 D128 on %d.%d did not get the mma.sync kernel (%s)", ccs[i][0], ccs[i][1], name);
        }
    bk_sdpa_fwd_desc d96 = d;
    d96.head_dim_qk = d96.head_dim_v = 96;
    bk_sdpa_fwd_desc dmix = d;
    dmix.head_dim_v = 64;
    bk_sdpa_fwd_desc df32 = d;
    df32.dtype = BK_DTYPE_F32;
    const bk_sdpa_fwd_desc *generic[3] = {&d96, &dmix, &df32};
    for (int g = 0; g < 3; g++)
        if (bkt_expect_status(bk_sdpa_fwd_select(generic[g], bk_target_cuda_cc(0, 8, 0), BK_PREFER_FASTEST, &plan),
                              BK_STATUS_SUCCESS, what))
            bkt_check(plan.info.precision.math == BK_MATH_F32, what, "case %d did not fall to the generic kernel", g);
}
#endif

/* A larger GPU-only problem against the f64 reference, run twice: same bytes. */
static void test_cuda_large(bk_target gpu)
{
    const cfg big[4] = {
        {"large B2 H4 S1000 D128 causal", 2, 4, 4, 1000, 1000, 128, 128, true, -1, 0.0, false, 0, false, 0, true},
        {"large B1 H8/2 S600x900 D64", 1, 8, 2, 600, 900, 64, 64, false, -1, 0.0, false, 0, false, 0, true},
        {"large B1 H4/2 S700x1100 D128", 1, 4, 2, 700, 1100, 128, 128, false, -1, 0.0, false, 0, false, 0, true},
        /* causal D 64 from 4096 query rows: 3 consumer warpgroups on the Hopper kernel */
        {"large B1 H2/1 S4100 D64 causal", 1, 2, 1, 4100, 4100, 64, 64, true, -1, 0.0, false, 0, false, 0, true},
    };
    for (int c = 0; c < 4; c++)
        test_case(gpu, &big[c], BK_DTYPE_BF16);
    test_case(gpu, &big[1], BK_DTYPE_F32);
    /* determinism of the tensor-core kernel */
    const cfg *c = &big[0];
    const bk_dtype dt = BK_DTYPE_BF16;
    int64_t sh[4] = {c->b, c->hq, c->sq, c->dqk};
    void *q, *k, *v, *y;
    int64_t nq, nk, nv, ny;
    bk_tensor tq = make_input(dt, sh, 0, false, -2, 2, &q, &nq), tk = make_input(dt, sh, 0, false, -2, 2, &k, &nk);
    bk_tensor tv = make_input(dt, sh, 0, false, -1, 1, &v, &nv), ty = make_output(dt, 4, sh, 0, &y, &ny);
    bk_sdpa_fwd_desc d = {c->b, c->hq, c->hkv, c->sq, c->sk, c->dqk, c->dv, cfg_scale(c), true, -1, 0.0, false, dt};
    bk_sdpa_fwd_plan plan;
    void *first = NULL;
    if (bkt_expect_status(bk_sdpa_fwd_select(&d, gpu, BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS,
                          "sdpa_fwd cuda determinism"))
        for (int rep = 0; rep < 2; rep++) {
            bkt_poison(y, dt, ny);
            bk_sdpa_fwd_args args = {tq, tk, tv, ty, NULL, NULL};
            bkt_dev dev = bkt_dev_begin(gpu);
            args.q.data = bkt_dev_in(&dev, q, (size_t)nq * 2);
            args.k.data = bkt_dev_in(&dev, k, (size_t)nk * 2);
            args.v.data = bkt_dev_in(&dev, v, (size_t)nv * 2);
            args.y.data = bkt_dev_out(&dev, y, (size_t)ny * 2);
            bk_status st = bk_sdpa_fwd_run(&plan, bkt_dev_stream(&dev), (bk_workspace){0}, &args);
            if (!bkt_dev_end(&dev) || !bkt_expect_status(st, BK_STATUS_SUCCESS, "sdpa_fwd cuda determinism"))
                break;
            if (rep == 0)
                first = bkt_snapshot(y, (size_t)ny * 2);
            else
                bkt_check(bkt_same_bytes(first, y, (size_t)ny * 2), "sdpa_fwd cuda determinism",
                          "two runs differ");
        }
    bkt_free(first);
    bkt_free(q);
    bkt_free(k);
    bkt_free(v);
    bkt_free(y);
}

/* Extents whose products pass int64 (issue 13): can_implement and run refuse them with a
 * sentence naming the overflow, never wrap, write nothing; the workspace stays 0. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bk_sdpa_fwd_desc d = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, 256, 256, 0.1, true, -1, 0.0, false, dt};
    int64_t s4[4] = {INT32_MAX, INT32_MAX, INT32_MAX, 256};
    float in[16], out[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_sdpa_fwd_plan plan;
    if (bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "sdpa_fwd overflow select")) {
        bk_sdpa_fwd_args a = {bkt_view_huge(in, dt, 4, s4), bkt_view_huge(in, dt, 4, s4), bkt_view_huge(in, dt, 4, s4),
                              bkt_view_huge(out, dt, 4, s4), NULL, NULL};
        bkt_expect_overflow(bk_sdpa_fwd_can_implement(&plan, &a), "sdpa_fwd", "sdpa_fwd 2^101 q");
        bkt_expect_overflow(bk_sdpa_fwd_run(&plan, NULL, (bk_workspace){0}, &a), "sdpa_fwd", "sdpa_fwd run 2^101");
        bkt_check(bk_sdpa_fwd_workspace_size(&plan) == 0, "sdpa_fwd overflow workspace", "not 0");
    }
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "sdpa_fwd overflow", "y written on failure");
    bkt_free(out0);
}

int main(void)
{
    bkt_init("test_sdpa_fwd");
    test_reference_by_hand();
    bk_target targets[3] = {bk_target_cpu()};
    int ntargets = 1 + bkt_cuda_target("sdpa_fwd cuda", &targets[1]);
    /* On a Hopper device the sm80 kernels (mma.sync) run too: a target that declares
     * compute capability 8.0 selects them on the same device. */
    if (ntargets == 2 && targets[1].cc_major == 9)
        targets[ntargets++] = bk_target_cuda_cc(targets[1].device, 8, 0);
    for (int g = 0; g < ntargets; g++)
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++) {
            for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++)
                test_case(targets[g], &k_cases[c], k_dtypes[t]);
            for (size_t c = 0; c < sizeof k_mma_cases / sizeof k_mma_cases[0]; c++)
                test_case(targets[g], &k_mma_cases[c], k_dtypes[t]);
        }
    test_plans_and_determinism();
    test_bad_desc();
    test_bad_args();
#ifdef BK_WITH_CUDA
    test_cuda_select();
#endif
    for (int g = 1; g < ntargets && !bkt_quick(); g++)
        test_cuda_large(targets[g]);
    test_overflow();
    return bkt_finish();
}
