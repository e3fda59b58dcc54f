/* test_sdpa_bwd.c - sdpa_bwd against a naive f64 reference gradient (materialised
 * softmax row, dP, dS, then dq/dk/dv summed over GQA groups) for every dtype with
 * causal/GQA/stride-0 kv heads/window/softcap/ALiBi/padded views/empty rows/empty
 * extents, on the CPU and, when a GPU is present, on CUDA: every case through the kernel
 * each preference selects (FASTEST: the fused one-pass tensor-core kernel with atomic dq
 * where it applies, on compute capability 9.0 the Hopper kernel (sdpa_bwd_sm90.cu) where
 * it applies; DETERMINISTIC: the same kernels adding dq in a fixed order;
 * REFERENCE: the CUDA-core kernel; the two-pass tensor-core kernel, the fused plans'
 * fallback, through a misaligned workspace), each plan's SKU and guarantee checked
 * against the expected kernel, plus larger GPU-only shapes (odd lengths, Sq != Sk, GQA
 * 1/2/4/8, causal, windows, every option of the fused kernel) run three times on one
 * workspace, bit-identical for deterministic plans; against central
 * finite differences of the library's own f64 forward; workspace sizing; determinism
 * (rerun, one thread); bad inputs.
 * y and lse come from the test's own f64 reference forward (not from a library kernel).
 *
 * Tolerances on CUDA: the CUDA-core kernel computes in f32 (f64 for f64) from the same
 * rounded inputs as the reference, so it keeps bkt_tol (slack 1). The tensor-core kernels
 * round P and dS to f16/bf16 before the dv/dk/dq products (as FlashAttention does): a
 * documented slack of kTcSlack over bkt_tol (which is itself twice the error of the f64
 * result rounded to the dtype), i.e. flash-attn's "at most a few times the error of a
 * same-precision reference". */
#include "bk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const bk_dtype k_dtypes[] = {BK_DTYPE_F32, BK_DTYPE_F64, BK_DTYPE_F16, BK_DTYPE_BF16};

/* Slack over bkt_tol for the tensor-core kernel (16-bit P and dS), see above. */
static const double kTcSlack = 2.0;

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
} cfg;

static const cfg k_cases[] = {
    /* name                         b  hq hkv sq   sk   dqk  dv   causal win cap  alibi scale bcast pad */
    {"plain 7x33",                  2, 3, 3,  7,   33,  16,  16,  false, -1, 0.0, false, 0,   false, 0},
    {"causal square",               1, 2, 2,  33,  33,  32,  32,  true,  -1, 0.0, false, 0,   false, 0},
    {"causal q<kv 7x33",            2, 2, 1,  7,   33,  16,  8,   true,  -1, 0.0, false, 0,   false, 0},
    {"causal q>kv 33x7 empty rows", 2, 2, 2,  33,  7,   8,   16,  true,  -1, 0.0, false, 0,   false, 0},
    {"gqa 6/2 dqk!=dv padded",      2, 6, 2,  13,  29,  24,  40,  true,  -1, 0.0, false, 0,   false, 3},
    {"gqa 6/2 stride-0 kv heads",   2, 6, 2,  11,  17,  16,  12,  false, -1, 0.0, false, 0,   true,  2},
    {"mqa 4/1",                     1, 4, 1,  9,   23,  8,   8,   true,  -1, 0.0, false, 0,   false, 0},
    {"window causal 5",             1, 2, 2,  33,  33,  16,  16,  true,  5,  0.0, false, 0,   false, 0},
    {"window 3 causal q<kv",        1, 4, 2,  7,   33,  16,  16,  true,  3,  0.0, false, 0,   false, 1},
    {"window 4 noncausal",          1, 2, 1,  7,   33,  8,   8,   false, 4,  0.0, false, 0,   false, 0},
    {"softcap 0.7",                 2, 2, 2,  13,  17,  16,  16,  false, -1, 0.7, false, 1.0, false, 0},
    {"alibi causal gqa",            1, 4, 2,  17,  31,  16,  16,  true,  -1, 0.0, true,  0,   false, 0},
    {"everything",                  2, 6, 3,  19,  37,  20,  12,  true,  9,  2.5, true,  0.9, false, 5},
    {"everything stride-0 q>kv",    1, 6, 2,  37,  19,  12,  20,  true,  6,  1.5, true,  0,   true,  1},
    {"D=256",                       1, 2, 1,  5,   9,   256, 256, true,  -1, 0.0, false, 0,   false, 1},
    {"ones",                        1, 1, 1,  1,   1,   1,   1,   true,  -1, 0.0, true,  0,   false, 0},
    {"130 x 130",                   1, 2, 1,  130, 130, 64,  64,  true,  -1, 0.0, false, 0,   false, 0},
    {"kv_len 0",                    2, 2, 1,  5,   0,   8,   8,   false, -1, 0.0, false, 0,   false, 1},
    {"q_len 0",                     2, 2, 2,  0,   7,   8,   8,   true,  -1, 0.0, false, 0,   false, 0},
    {"batch 0",                     0, 2, 2,  3,   7,   8,   8,   true,  -1, 0.0, false, 0,   false, 0},
};

/* GPU-only: larger shapes (the tensor-core tiles, several tiles per CTA walk, aligned and
 * unaligned padding). */
static const cfg k_gpu_cases[] = {
    /* name                              b  hq hkv sq   sk   dqk  dv   causal win  cap  alibi scale bcast pad */
    {"gpu B2 H4/2 S300 D128 causal",     2, 4, 2,  300, 300, 128, 128, true,  -1,  0.0, false, 0,   false, 0},
    {"gpu 257x190 D64 window cap alibi", 1, 4, 1,  257, 190, 64,  64,  true,  70,  3.0, true,  0,   false, 8},
    {"gpu 200x77 D128 q>kv pad 3",       1, 2, 2,  200, 77,  128, 128, true,  -1,  0.0, false, 0,   false, 3},
    {"gpu 150x333 D64 noncausal bcast",  2, 3, 1,  150, 333, 64,  64,  false, -1,  0.0, false, 0,   true,  0},
    {"gpu 97x129 D96/D40",               1, 2, 1,  97,  129, 96,  40,  true,  -1,  0.0, false, 0,   false, 0},
    {"gpu 129x383 D128 mqa 4/1",         1, 4, 1,  129, 383, 128, 128, false, -1,  0.0, false, 0,   false, 0},
    {"gpu 333x150 D64 causal q>kv pad 8", 2, 2, 2, 333, 150, 64,  64,  true,  -1,  0.0, false, 0,   false, 8},
    {"gpu 190x257 D128 softcap gqa 6/2", 1, 6, 2,  190, 257, 128, 128, true,  -1,  5.0, false, 0,   false, 0},
    {"gpu 64x128 D64 whole tiles",       2, 2, 1,  64,  128, 64,  64,  false, -1,  0.0, false, 0,   false, 0},
    {"gpu 77x201 D128 window 20 alibi",  1, 2, 2,  77,  201, 128, 128, false, 20,  0.0, true,  0,   false, 0},
    {"gpu 300x300 D64 causal bcast",     1, 4, 2,  300, 300, 64,  64,  true,  -1,  0.0, false, 0,   true,  0},
    {"gpu 150x201 D256 causal gqa 4/2",  1, 4, 2,  150, 201, 256, 256, true,  -1,  0.0, false, 0,   false, 0},
    {"gpu 97x65 D256 softcap alibi",     2, 2, 1,  97,  65,  256, 256, false, -1,  4.0, true,  0,   false, 8},
    /* the Hopper kernel's cases (sm_90, FASTEST; elsewhere the fused kernel): GQA 1/4/8,
       odd lengths, Sq != Sk both ways, causal and not, batch > 1, several key blocks and
       query tiles per CTA, padded (aligned) views */
    {"sm90 B3 H8/1 77x200 D128",         3, 8, 1,  77,  200, 128, 128, false, -1,  0.0, false, 0,   false, 0},
    {"sm90 B2 H8/2 333x200 D64 causal",  2, 8, 2,  333, 200, 64,  64,  true,  -1,  0.0, false, 0,   false, 0},
    {"sm90 B2 H2/2 200x333 D128 causal", 2, 2, 2,  200, 333, 128, 128, true,  -1,  0.0, false, 0,   false, 8},
    {"sm90 B2 H4/4 77x77 D64",           2, 4, 4,  77,  77,  64,  64,  false, -1,  0.0, false, 0.3, false, 0},
    {"sm90 B1 H4/1 517x1031 D128 causal", 1, 4, 1, 517, 1031, 128, 128, true, -1,  0.0, false, 0,   false, 0},
    {"sm90 B2 H8/1 300x257 D64 bcast",   2, 8, 1,  300, 257, 64,  64,  true,  -1,  0.0, false, 0,   true,  0},
    {"sm90 B2 H4/1 333x200 D256 causal", 2, 4, 1,  333, 200, 256, 256, true,  -1,  0.0, false, 0,   false, 0},
    {"sm90 B1 H2/2 77x517 D256 causal pad 8", 1, 2, 2, 77, 517, 256, 256, true, -1,  0.0, false, 0,   false, 8},
    {"sm90 B2 H8/2 130x130 D256 bcast",  2, 8, 2,  130, 130, 256, 256, false, -1,  0.0, false, 0.2, true,  0},
};

/* GPU-only, for the fused kernel's deterministic mode (each also runs the atomic mode):
 * D 64/128/256, causal and not, sliding windows, GQA 1/4/8, odd lengths, Sq < Sk and
 * Sq > Sk, several key tiles per row tile (chains of semaphore waits), key tiles that see
 * no row (they take a ticket and add nothing), rows that see no key. */
static const cfg k_det_cases[] = {
    /* name                                  b  hq hkv sq    sk    dqk  dv   causal win  cap  alibi scale bcast pad */
    {"det 257x1100 D64 causal gqa 8/1",      1, 8, 1,  257,  1100, 64,  64,  true,  -1,  0.0, false, 0,   false, 0},
    {"det 300x300 D64 noncausal B2 mha",     2, 2, 2,  300,  300,  64,  64,  false, -1,  0.0, false, 0,   false, 0},
    {"det 1024x1024 D128 causal gqa 2/1",    1, 2, 1,  1024, 1024, 128, 128, true,  -1,  0.0, false, 0,   false, 0},
    {"det 333x333 D128 causal gqa 4/1 pad",  1, 4, 1,  333,  333,  128, 128, true,  -1,  0.0, false, 0,   false, 8},
    {"det 190x700 D128 window 40 gqa 4/2",   1, 4, 2,  190,  700,  128, 128, false, 40,  0.0, false, 0,   false, 0},
    {"det 500x200 D128 causal window 64",    1, 2, 1,  500,  200,  128, 128, true,  64,  0.0, false, 0,   false, 0},
    {"det 129x513 D256 causal gqa 8/1",      1, 8, 1,  129,  513,  256, 256, true,  -1,  0.0, false, 0,   false, 0},
    {"det 200x131 D256 noncausal softcap",   1, 2, 1,  200,  131,  256, 256, false, -1,  3.0, false, 0,   false, 0},
    {"det 150x150 D256 causal window 30 alibi", 2, 2, 2, 150, 150, 256, 256, true,  30,  0.0, true,  0,   false, 0},
    {"det 64x1000 D256 noncausal gqa 4/4",   1, 4, 4,  64,   1000, 256, 256, false, -1,  0.0, false, 0,   false, 0},
    {"det 300x700 D256 causal gqa 4/1",      1, 4, 1,  300,  700,  256, 256, true,  -1,  0.0, false, 0,   false, 0},
    /* 160 CTAs of 10 key tiles (more than an H100 holds at once: tickets taken in waves) */
    {"det B4 130x1250 D64 noncausal mha 4/4", 4, 4, 4,  130,  1250, 64,  64,  false, -1,  0.0, false, 0,   false, 0},
    /* the Hopper kernel's rotated walks (no causal mask): more row tiles than key tiles, and
     * fewer; 133 key tiles of 128 (more than half an H100's 132 SMs): the walks unrotated */
    {"det B2 333x520 D128 noncausal gqa 4/2", 2, 4, 2,  333,  520,  128, 128, false, -1,  0.0, false, 0,   false, 0},
    {"det 250x330 D256 noncausal gqa 2/1",   1, 2, 1,  250,  330,  256, 256, false, -1,  0.0, false, 0,   false, 0},
    {"det 200x17000 D64 noncausal",          1, 1, 1,  200,  17000, 64, 64,  false, -1,  0.0, false, 0,   false, 0},
};

/* GPU-only cases that BK_TEST_QUICK keeps (each path of the fused kernel once). */
static bool gpu_case_quick(size_t c)
{
    return c <= 1 || c == 5 || c == 6 || c == 7 || c == 11 || c == 13 || c == 14 || c == 17;
}

static double cfg_scale(const cfg *c)
{
    return c->scale != 0.0 ? c->scale : 1.0 / sqrt((double)c->dqk);
}

static bk_sdpa_bwd_desc cfg_desc(const cfg *c, bk_dtype dt)
{
    bk_sdpa_bwd_desc d = {c->b, c->hq, c->hkv, c->sq, c->sk, c->dqk, c->dv, cfg_scale(c),
                          c->causal, c->window, c->softcap, c->alibi, dt};
    return d;
}

/* A 4-d view [s0,s1,s2,s3] over a fresh buffer filled with uniform values in [lo, hi)
 * (or NaN-poisoned when lo > hi); with `bcast` the buffer holds one head and the view
 * reads it through stride 0 on axis 1. *n gets the buffer's element count. */
static bk_tensor make_view(bk_dtype dt, int32_t rank, const int64_t *shape, int64_t pad, bool bcast, double lo,
                           double hi, void **buf, int64_t *n)
{
    int64_t s[4] = {shape[0], bcast ? 1 : shape[1], rank > 2 ? shape[2] : 0, rank > 3 ? shape[3] : 0};
    bk_tensor probe = bkt_view_padded(NULL, dt, rank, s, pad);
    *n = bkt_view_span(&probe) + 1;
    *buf = bkt_alloc(dt, *n);
    if (lo > hi)
        bkt_poison(*buf, dt, *n);
    else
        bkt_fill(*buf, dt, *n, lo, hi);
    bk_tensor t = bkt_view_padded(*buf, dt, rank, s, pad);
    if (bcast) {
        t.shape[1] = shape[1];
        t.strides[1] = 0;
    }
    return t;
}

static double *gather_all(const bk_tensor *t)
{
    int64_t n = bk_tensor_numel(t);
    double *d = malloc((size_t)(n + 1) * sizeof(double));
    bkt_gather(t, d);
    return d;
}

/* One row of scores, materialised: raw[j] = <q_i, k_j> * scale, s[j] after softcap and
 * ALiBi, vis[j] the mask, p[j] the softmax over the visible keys (0 elsewhere).
 * Returns false when no key is visible. */
static bool ref_row(const cfg *c, const double *qi, const double *kb, const double *slopes, int64_t h, int64_t i,
                    double *raw, double *s, bool *vis, double *p, double *lse)
{
    const int64_t pos = i + (int64_t)c->sk - c->sq;
    double m = -INFINITY;
    for (int64_t j = 0; j < c->sk; j++) {
        vis[j] = (!c->causal || j <= pos) && (c->window < 0 || j >= pos - c->window);
        double dot = 0.0;
        for (int64_t e = 0; e < c->dqk; e++)
            dot += qi[e] * kb[j * c->dqk + e];
        raw[j] = dot * cfg_scale(c);
        s[j] = c->softcap > 0.0 ? c->softcap * tanh(raw[j] / c->softcap) : raw[j];
        if (c->alibi)
            s[j] += slopes[h] * (double)(j - pos);
        if (vis[j] && s[j] > m)
            m = s[j];
    }
    if (m == -INFINITY) {
        for (int64_t j = 0; j < c->sk; j++)
            p[j] = 0.0;
        *lse = -INFINITY;
        return false;
    }
    double l = 0.0;
    for (int64_t j = 0; j < c->sk; j++) {
        p[j] = vis[j] ? exp(s[j] - m) : 0.0;
        l += p[j];
    }
    for (int64_t j = 0; j < c->sk; j++)
        p[j] /= l;
    *lse = m + log(l);
    return true;
}

/* Reference forward (to make y and lse for the backward's inputs). */
static void ref_forward(const cfg *c, const double *q, const double *k, const double *v, const double *slopes,
                        double *y, double *lse)
{
    const int64_t group = c->hq / c->hkv, n = c->sk + 1;
    double *raw = malloc((size_t)n * sizeof(double)), *s = malloc((size_t)n * sizeof(double));
    double *p = malloc((size_t)n * sizeof(double));
    bool *vis = malloc((size_t)n);
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t h = 0; h < c->hq; h++)
            for (int64_t i = 0; i < c->sq; i++) {
                const int64_t hk = h / group, row = (b * c->hq + h) * c->sq + i;
                const double *kb = k + (b * c->hkv + hk) * c->sk * c->dqk;
                const double *vb = v + (b * c->hkv + hk) * c->sk * c->dv;
                ref_row(c, q + row * c->dqk, kb, slopes, h, i, raw, s, vis, p, &lse[row]);
                for (int64_t e = 0; e < c->dv; e++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < c->sk; j++)
                        acc += p[j] * vb[j * c->dv + e];
                    y[row * c->dv + e] = acc;
                }
            }
    free(raw);
    free(s);
    free(p);
    free(vis);
}

/* Reference backward, all f64, row-major arrays:
 *   dP_ij = <dy_i, v_j>, dS_ij = P_ij (dP_ij - <dy_i, y_i>), through the softcap
 *   dZ_ij = dS_ij (1 - tanh^2(raw_ij / cap)) scale; dq_i = sum_j dZ_ij k_j,
 *   dk_j = sum_{h in group, i} dZ_ij q_i, dv_j = sum_{h in group, i} P_ij dy_i. */
static void ref_backward(const cfg *c, const double *q, const double *k, const double *v, const double *y,
                         const double *dy, const double *slopes, double *dq, double *dk, double *dv)
{
    const int64_t group = c->hq / c->hkv, n = c->sk + 1;
    double *raw = malloc((size_t)n * sizeof(double)), *s = malloc((size_t)n * sizeof(double));
    double *p = malloc((size_t)n * sizeof(double));
    bool *vis = malloc((size_t)n);
    memset(dk, 0, (size_t)(c->b * c->hkv * c->sk * c->dqk + 1) * sizeof(double));
    memset(dv, 0, (size_t)(c->b * c->hkv * c->sk * c->dv + 1) * sizeof(double));
    for (int64_t b = 0; b < c->b; b++)
        for (int64_t h = 0; h < c->hq; h++)
            for (int64_t i = 0; i < c->sq; i++) {
                const int64_t hk = h / group, row = (b * c->hq + h) * c->sq + i;
                const double *kb = k + (b * c->hkv + hk) * c->sk * c->dqk;
                const double *vb = v + (b * c->hkv + hk) * c->sk * c->dv;
                double *dkb = dk + (b * c->hkv + hk) * c->sk * c->dqk;
                double *dvb = dv + (b * c->hkv + hk) * c->sk * c->dv;
                const double *qi = q + row * c->dqk, *dyi = dy + row * c->dv, *yi = y + row * c->dv;
                double *dqi = dq + row * c->dqk, lse;
                for (int64_t e = 0; e < c->dqk; e++)
                    dqi[e] = 0.0;
                ref_row(c, qi, kb, slopes, h, i, raw, s, vis, p, &lse);
                double dsum = 0.0;
                for (int64_t e = 0; e < c->dv; e++)
                    dsum += dyi[e] * yi[e];
                for (int64_t j = 0; j < c->sk; j++) {
                    if (p[j] == 0.0)
                        continue;
                    double dp = 0.0;
                    for (int64_t e = 0; e < c->dv; e++)
                        dp += dyi[e] * vb[j * c->dv + e];
                    double dz = p[j] * (dp - dsum);
                    if (c->softcap > 0.0) {
                        const double t = tanh(raw[j] / c->softcap);
                        dz *= 1.0 - t * t;
                    }
                    dz *= cfg_scale(c);
                    for (int64_t e = 0; e < c->dqk; e++) {
                        dqi[e] += dz * kb[j * c->dqk + e];
                        dkb[j * c->dqk + e] += dz * qi[e];
                    }
                    for (int64_t e = 0; e < c->dv; e++)
                        dvb[j * c->dv + e] += p[j] * dyi[e];
                }
            }
    free(raw);
    free(s);
    free(p);
    free(vis);
}

/* Fills a workspace of `bytes` with NaN bytes (the kernel must not trust its contents). */
static void *alloc_workspace(size_t bytes)
{
    void *w = malloc(bytes ? bytes : 1);
    memset(w, 0xff, bytes ? bytes : 1);
    return w;
}

/* Whether FASTEST (and DETERMINISTIC: its deterministic mode) selects the Hopper kernel
 * (SKU arch sm90) for a case on `target`:
 * compute capability 9.0, f16/bf16, Dqk == Dv in {64, 128, 256}, no softcap, ALiBi or window. */
static bool expect_sm90(bk_target target, const cfg *c, bk_dtype dt)
{
    return target.kind == BK_TARGET_CUDA && target.cc_major == 9 && target.cc_minor == 0 &&
           (dt == BK_DTYPE_F16 || dt == BK_DTYPE_BF16) && c->dqk == c->dv &&
           (c->dqk == 64 || c->dqk == 128 || c->dqk == 256) && c->softcap == 0.0 && !c->alibi && c->window < 0;
}

/* The fused tensor-core kernels' problems: f16/bf16 with Dqk == Dv in {64, 128, 256}. */
static bool fused_applies(const cfg *c, bk_dtype dt)
{
    return (dt == BK_DTYPE_F16 || dt == BK_DTYPE_BF16) && c->dqk == c->dv &&
           (c->dqk == 64 || c->dqk == 128 || c->dqk == 256);
}

/* Bytes of the CUDA workspace the plan of `pref` needs (attention.h): the D_i and lse
 * rows; the fused (and Hopper) kernels' f32 dq accumulator; the deterministic fused (and
 * Hopper) kernels' counter per (b, kv head) and semaphore per (b, q head, tile of 128 rows
 * at D 64, else 64: both kernels' row tile). */
static size_t cuda_scratch_bytes(const cfg *c, bk_dtype dt, bk_preference pref)
{
    const size_t rows = (size_t)c->b * c->hq * c->sq;
    size_t n = 2 * rows * (dt == BK_DTYPE_F64 ? 8 : 4);
    if (fused_applies(c, dt) && pref != BK_PREFER_REFERENCE)
        n += rows * (size_t)c->dqk * 4;
    if (fused_applies(c, dt) && pref == BK_PREFER_DETERMINISTIC) {
        const size_t tile = c->dqk == 64 ? 128 : 64;
        n += 4 * (size_t)c->b * ((size_t)c->hkv + (size_t)c->hq * (((size_t)c->sq + tile - 1) / tile));
    }
    return n;
}

/* The CUDA kernel each preference must select: f16/bf16 with Dqk == Dv in {64, 128, 256}
 * take the fused tensor-core kernel, in its atomic mode (FASTEST; not deterministic) or
 * its deterministic mode (DETERMINISTIC), both SKU backend "bespoke" (on compute
 * capability 9.0 the Hopper kernel in the same mode where expect_sm90, SKU arch sm90); everything else and
 * REFERENCE take the CUDA-core kernel ("reference", deterministic). (The two-pass
 * tensor-core kernel is a run-time fallback of the fused plans, reached below with a
 * misaligned workspace.) */
static void check_gpu_kernel(const char *what, const bk_sdpa_bwd_plan *plan, const cfg *c, bk_dtype dt,
                             bk_preference pref)
{
    const bool fused = fused_applies(c, dt) && pref == BK_PREFER_FASTEST;
    const bool tc = fused_applies(c, dt) && pref != BK_PREFER_REFERENCE;
    const bool sm90 = pref != BK_PREFER_REFERENCE && expect_sm90(plan->info.target, c, dt);
    char name[96], want[96];
    bk_sku_name(&plan->info.sku, name, sizeof name);
    snprintf(want, sizeof want, "attention/sdpa_bwd/%s/%s/%s", bk_dtype_name(dt), sm90 ? "sm90" : "sm80",
             tc ? "bespoke" : "reference");
    bkt_check(strcmp(name, want) == 0, what, "sku %s, expected %s", name, want);
    bkt_check(plan->info.precision.deterministic == !fused && plan->info.precision.bit_stable == !fused, what,
              "deterministic %d bit_stable %d, expected %d", (int)plan->info.precision.deterministic,
              (int)plan->info.precision.bit_stable, (int)!fused);
    bkt_check((plan->info.precision.math == BK_MATH_F16_BF16_TENSOR) == tc, what, "math %d",
              (int)plan->info.precision.math);
}

/* How test_case runs a GPU case. */
enum {
    RUN_ONCE = 0,
    /* run 3 times on the same device buffers (the workspace left as the last run left
     * it), each into fresh poisoned outputs; a deterministic plan must give bit-identical
     * dq, dk, dv every time */
    RUN_RERUN = 1,
    /* a workspace 4 bytes past a 16-byte boundary: the fused plans run their fallback,
     * the two-pass tensor-core kernel (the CUDA-core one at D 256) */
    RUN_MISALIGNED_WS = 2,
};

/* One case on `target` with the kernel `preference` selects, run as `how` says (RUN_*
 * flags; GPU only). */
static void test_case(bk_target target, bk_preference pref, const cfg *c, bk_dtype dt, int how)
{
    char what[200], w2[240];
    const bool gpu = target.kind == BK_TARGET_CUDA;
    snprintf(what, sizeof what, "sdpa_bwd %s%s%s %s %s", gpu ? "cuda" : "cpu",
             gpu ? (pref == BK_PREFER_REFERENCE ? " cuda-cores" : pref == BK_PREFER_FASTEST ? " fastest" : " deterministic")
                 : "",
             gpu && (how & RUN_MISALIGNED_WS) ? " misaligned-workspace" : "", bk_dtype_name(dt), c->name);
    int64_t sh_q[4] = {c->b, c->hq, c->sq, c->dqk}, sh_k[4] = {c->b, c->hkv, c->sk, c->dqk};
    int64_t sh_v[4] = {c->b, c->hkv, c->sk, c->dv}, sh_y[4] = {c->b, c->hq, c->sq, c->dv};
    int64_t sh_l[3] = {c->b, c->hq, c->sq}, sh_s[1] = {c->hq};
    void *q, *k, *v, *y, *dy, *lse, *dq, *dk, *dv;
    int64_t nq, nk, nv, ny, ndy, nl, ndq, ndk, ndv;
    bk_tensor tq = make_view(dt, 4, sh_q, c->pad, false, -2, 2, &q, &nq);
    bk_tensor tk = make_view(dt, 4, sh_k, c->pad, c->kv_bcast, -2, 2, &k, &nk);
    bk_tensor tv = make_view(dt, 4, sh_v, c->pad, c->kv_bcast, -1, 1, &v, &nv);
    bk_tensor tdy = make_view(dt, 4, sh_y, c->pad, false, -1, 1, &dy, &ndy);
    bk_tensor ty = make_view(dt, 4, sh_y, c->pad, false, 1, 0, &y, &ny);
    bk_tensor tl = make_view(BK_DTYPE_F32, 3, sh_l, c->pad, false, 1, 0, &lse, &nl);
    bk_tensor tdq = make_view(dt, 4, sh_q, c->pad, false, 1, 0, &dq, &ndq);
    bk_tensor tdk = make_view(dt, 4, sh_k, c->pad, false, 1, 0, &dk, &ndk);
    bk_tensor tdv = make_view(dt, 4, sh_v, c->pad, false, 1, 0, &dv, &ndv);
    float *slopes = bkt_alloc(BK_DTYPE_F32, c->hq);
    bkt_fill(slopes, BK_DTYPE_F32, c->hq, 0.05, 0.6);
    bk_tensor ts = bkt_view(slopes, BK_DTYPE_F32, 1, sh_s);
    double rs[64];
    for (int32_t h = 0; h < c->hq; h++)
        rs[h] = slopes[h];

    /* the forward's outputs, from the reference, stored in the element type and f32 */
    double *rq = gather_all(&tq), *rk = gather_all(&tk), *rv = gather_all(&tv), *rdy = gather_all(&tdy);
    int64_t n_y = bk_tensor_numel(&ty), n_l = bk_tensor_numel(&tl);
    double *ry = malloc((size_t)(n_y + 1) * sizeof(double)), *rl = malloc((size_t)(n_l + 1) * sizeof(double));
    ref_forward(c, rq, rk, rv, rs, ry, rl);
    {
        int64_t e = 0, idx[4] = {0};
        for (idx[0] = 0; idx[0] < c->b; idx[0]++)
            for (idx[1] = 0; idx[1] < c->hq; idx[1]++)
                for (idx[2] = 0; idx[2] < c->sq; idx[2]++) {
                    bkt_set(lse, BK_DTYPE_F32, idx[0] * tl.strides[0] + idx[1] * tl.strides[1] + idx[2] * tl.strides[2],
                            rl[e / c->dv]);
                    for (idx[3] = 0; idx[3] < c->dv; idx[3]++, e++)
                        bkt_set(y, dt, idx[0] * ty.strides[0] + idx[1] * ty.strides[1] + idx[2] * ty.strides[2] +
                                           idx[3] * ty.strides[3],
                                ry[e]);
                }
    }
    double *ryg = gather_all(&ty); /* y as the backward sees it (rounded) */

    int64_t n_q = bk_tensor_numel(&tq), n_k = bk_tensor_numel(&tdk), n_v = bk_tensor_numel(&tdv);
    double *rdq = malloc((size_t)(n_q + 1) * sizeof(double)), *rdk = malloc((size_t)(n_k + 1) * sizeof(double));
    double *rdv = malloc((size_t)(n_v + 1) * sizeof(double));
    ref_backward(c, rq, rk, rv, ryg, rdy, rs, rdq, rdk, rdv);

    void *dq0 = bkt_snapshot(dq, (size_t)ndq * bk_dtype_size(dt));
    void *dk0 = bkt_snapshot(dk, (size_t)ndk * bk_dtype_size(dt));
    void *dv0 = bkt_snapshot(dv, (size_t)ndv * bk_dtype_size(dt));
    bk_sdpa_bwd_desc d = cfg_desc(c, dt);
    bk_sdpa_bwd_plan plan;
    bk_status st = bk_sdpa_bwd_select(&d, target, pref, &plan);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
        const bool tc = plan.info.precision.math == BK_MATH_F16_BF16_TENSOR;
        const bool deterministic = plan.info.precision.deterministic;
        const double slack = tc ? kTcSlack : 1.0;
        if (gpu)
            check_gpu_kernel(what, &plan, c, dt, pref);
        if (gpu)
            bkt_check(plan.info.precision.deterministic == plan.info.precision.bit_stable &&
                          plan.info.precision.deterministic == (pref != BK_PREFER_FASTEST || !fused_applies(c, dt)),
                      what, "plan says deterministic %d, bit_stable %d", (int)plan.info.precision.deterministic,
                      (int)plan.info.precision.bit_stable);
        size_t ws_bytes = bk_sdpa_bwd_workspace_size(&plan);
        /* CPU: f64 dk/dv accumulators; CUDA: see cuda_scratch_bytes */
        size_t need = gpu ? cuda_scratch_bytes(c, dt, pref)
                          : (size_t)c->b * c->hkv * c->sk * (c->dqk + c->dv) * sizeof(double);
        bkt_check(ws_bytes >= need && ws_bytes <= need + 768, what, "workspace_size %zu for %zu bytes of scratch",
                  ws_bytes, need);
        /* the misaligned case passes the workspace 4 bytes into a larger buffer */
        const size_t skew = gpu && (how & RUN_MISALIGNED_WS) && ws_bytes ? 4 : 0;
        void *ws = alloc_workspace(ws_bytes + skew);
        bk_sdpa_bwd_args args = {tq, tk, tv, ty, tdy, tl, c->alibi ? &ts : NULL, tdq, tdk, tdv};
        const size_t es = bk_dtype_size(dt);
        /* runs r > 0 write into copies of the poisoned outputs */
        enum { kRuns = 3 };
        const int runs = gpu && (how & RUN_RERUN) ? kRuns : 1;
        void *more[kRuns][3] = {{NULL}};
        for (int r = 1; r < runs; r++) {
            more[r][0] = bkt_snapshot(dq0, (size_t)ndq * es);
            more[r][1] = bkt_snapshot(dk0, (size_t)ndk * es);
            more[r][2] = bkt_snapshot(dv0, (size_t)ndv * es);
        }
        bkt_dev dev = bkt_dev_begin(target);
        args.q.data = bkt_dev_in(&dev, q, (size_t)nq * es);
        args.k.data = bkt_dev_in(&dev, k, (size_t)nk * es);
        args.v.data = bkt_dev_in(&dev, v, (size_t)nv * es);
        args.y.data = bkt_dev_in(&dev, y, (size_t)ny * es);
        args.dy.data = bkt_dev_in(&dev, dy, (size_t)ndy * es);
        args.lse.data = bkt_dev_in(&dev, lse, (size_t)nl * sizeof(float));
        bk_tensor tsd = ts;
        tsd.data = bkt_dev_in(&dev, slopes, (size_t)c->hq * sizeof(float));
        args.alibi_slopes = c->alibi ? &tsd : NULL;
        char *wsd = ws_bytes ? bkt_dev_in(&dev, ws, ws_bytes + skew) : NULL;
        bk_workspace wsp = {wsd ? wsd + skew : NULL, ws_bytes};
        st = BK_STATUS_SUCCESS;
        for (int r = 0; r < runs && st == BK_STATUS_SUCCESS; r++) {
            args.dq.data = bkt_dev_out(&dev, r ? more[r][0] : dq, (size_t)ndq * es);
            args.dk.data = bkt_dev_out(&dev, r ? more[r][1] : dk, (size_t)ndk * es);
            args.dv.data = bkt_dev_out(&dev, r ? more[r][2] : dv, (size_t)ndv * es);
            st = bk_sdpa_bwd_run(&plan, bkt_dev_stream(&dev), wsp, &args);
        }
        if (!bkt_dev_end(&dev))
            st = BK_STATUS_DEVICE_ERROR;
        for (int r = 1; r < runs && st == BK_STATUS_SUCCESS && deterministic; r++)
            bkt_check(bkt_same_bytes(more[r][0], dq, (size_t)ndq * es) &&
                          bkt_same_bytes(more[r][1], dk, (size_t)ndk * es) &&
                          bkt_same_bytes(more[r][2], dv, (size_t)ndv * es),
                      what, "GPU run %d of %d is not bit-identical to the first", r + 1, runs);
        for (int r = 1; r < runs; r++)
            for (int i = 0; i < 3; i++)
                bkt_free(more[r][i]);
        if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
            snprintf(w2, sizeof w2, "%s dq", what);
            bkt_check_close(w2, &tdq, rdq, slack);
            bkt_check(bkt_untouched_outside(&tdq, dq0, ndq), w2, "an element outside the output view was written");
            snprintf(w2, sizeof w2, "%s dk", what);
            bkt_check_close(w2, &tdk, rdk, slack);
            bkt_check(bkt_untouched_outside(&tdk, dk0, ndk), w2, "an element outside the output view was written");
            snprintf(w2, sizeof w2, "%s dv", what);
            bkt_check_close(w2, &tdv, rdv, slack);
            bkt_check(bkt_untouched_outside(&tdv, dv0, ndv), w2, "an element outside the output view was written");
            /* rows that saw no key and keys no row saw: exactly 0 */
            int64_t zeros = 0, bad = 0;
            for (int64_t e = 0; e < n_q; e++)
                if (rdq[e] == 0.0 && rl[e / c->dqk] == -INFINITY) {
                    zeros++;
                    int64_t idx[4] = {e / c->dqk / c->sq / c->hq, e / c->dqk / c->sq % c->hq, e / c->dqk % c->sq,
                                      e % c->dqk};
                    bad += bkt_at(&tdq, idx) != 0.0;
                }
            for (int64_t e = 0; e < n_v; e++)
                if (rdv[e] == 0.0) {
                    zeros++;
                    int64_t idx[4] = {e / c->dv / c->sk / c->hkv, e / c->dv / c->sk % c->hkv, e / c->dv % c->sk,
                                      e % c->dv};
                    bad += bkt_at(&tdv, idx) != 0.0;
                }
            if (zeros)
                bkt_check(bad == 0, what, "%lld of %lld gradients of unseen rows/keys are not 0", (long long)bad,
                          (long long)zeros);
        }
        free(ws);
    }
    free(rq);
    free(rk);
    free(rv);
    free(rdy);
    free(ry);
    free(rl);
    free(ryg);
    free(rdq);
    free(rdk);
    free(rdv);
    bkt_free(dq0);
    bkt_free(dk0);
    bkt_free(dv0);
    void *bufs[9] = {q, k, v, y, dy, lse, dq, dk, dv};
    for (int i = 0; i < 9; i++)
        bkt_free(bufs[i]);
    bkt_free(slopes);
}

/* ------------------------------------------------- finite differences -- */

typedef struct fd_problem {
    cfg c;
    bk_sdpa_fwd_plan fp;
    bk_sdpa_bwd_plan bp;
    bk_tensor tq, tk, tv, ty, tl, ts, tw;
    double *y, *w;
    int64_t ny;
} fd_problem;

/* L = sum W * y through the library's f64 forward. */
static double fd_loss(const fd_problem *p)
{
    bk_sdpa_fwd_args args = {p->tq, p->tk, p->tv, p->ty, &p->tl, p->c.alibi ? &p->ts : NULL};
    if (bk_sdpa_fwd_run(&p->fp, NULL, (bk_workspace){0}, &args) != BK_STATUS_SUCCESS)
        return NAN;
    double l = 0.0;
    for (int64_t i = 0; i < p->ny; i++)
        l += p->w[i] * p->y[i];
    return l;
}

/* dL/d buf[idx] by central differences. */
static double fd_grad(const fd_problem *p, double *buf, int64_t idx)
{
    const double eps = 1e-5, keep = buf[idx];
    buf[idx] = keep + eps;
    double lp = fd_loss(p);
    buf[idx] = keep - eps;
    double lm = fd_loss(p);
    buf[idx] = keep;
    return (lp - lm) / (2.0 * eps);
}

static void test_finite_differences(const cfg *c)
{
    char what[160];
    snprintf(what, sizeof what, "sdpa_bwd f64 vs central differences of sdpa_fwd (%s)", c->name);
    const bk_dtype dt = BK_DTYPE_F64;
    fd_problem p = {.c = *c};
    int64_t sh_q[4] = {c->b, c->hq, c->sq, c->dqk}, sh_k[4] = {c->b, c->hkv, c->sk, c->dqk};
    int64_t sh_v[4] = {c->b, c->hkv, c->sk, c->dv}, sh_y[4] = {c->b, c->hq, c->sq, c->dv};
    int64_t sh_l[3] = {c->b, c->hq, c->sq}, sh_s[1] = {c->hq};
    void *q, *k, *v, *y, *w, *lse, *dq, *dk, *dv;
    int64_t nq, nk, nv, ny, nw, nl, ndq, ndk, ndv;
    p.tq = make_view(dt, 4, sh_q, 0, false, -2, 2, &q, &nq);
    p.tk = make_view(dt, 4, sh_k, 0, c->kv_bcast, -2, 2, &k, &nk);
    p.tv = make_view(dt, 4, sh_v, 0, c->kv_bcast, -1, 1, &v, &nv);
    p.ty = make_view(dt, 4, sh_y, 0, false, 1, 0, &y, &ny);
    p.tw = make_view(dt, 4, sh_y, 0, false, -1, 1, &w, &nw);
    p.tl = make_view(BK_DTYPE_F32, 3, sh_l, 0, false, 1, 0, &lse, &nl);
    bk_tensor tdq = make_view(dt, 4, sh_q, 0, false, 1, 0, &dq, &ndq);
    bk_tensor tdk = make_view(dt, 4, sh_k, 0, false, 1, 0, &dk, &ndk);
    bk_tensor tdv = make_view(dt, 4, sh_v, 0, false, 1, 0, &dv, &ndv);
    float slopes[16];
    bkt_fill(slopes, BK_DTYPE_F32, c->hq, 0.05, 0.6);
    p.ts = bkt_view(slopes, BK_DTYPE_F32, 1, sh_s);
    p.y = y;
    p.w = w;
    p.ny = bk_tensor_numel(&p.ty);
    bk_sdpa_fwd_desc d = cfg_desc(c, dt);
    void *ws = NULL;
    if (!bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), BK_PREFER_REFERENCE, &p.fp), BK_STATUS_SUCCESS,
                           what) ||
        !bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_REFERENCE, &p.bp), BK_STATUS_SUCCESS,
                           what))
        goto done;
    /* forward, then backward with dy = W */
    if (!bkt_check(isfinite(fd_loss(&p)), what, "forward failed: %s", bk_last_error()))
        goto done;
    size_t bytes = bk_sdpa_bwd_workspace_size(&p.bp);
    ws = alloc_workspace(bytes);
    bk_sdpa_bwd_args args = {p.tq, p.tk, p.tv, p.ty, p.tw, p.tl, c->alibi ? &p.ts : NULL, tdq, tdk, tdv};
    if (!bkt_expect_status(bk_sdpa_bwd_run(&p.bp, NULL, (bk_workspace){ws, bytes}, &args), BK_STATUS_SUCCESS, what))
        goto done;
    /* probe entries of q, k, v; with stride-0 kv heads one stored element feeds every
     * kv head, so its derivative is the sum of dk (dv) over the kv heads */
    for (int t = 0; t < 3; t++) {
        double *buf = t == 0 ? q : t == 1 ? k : v;
        const double *grad = t == 0 ? dq : t == 1 ? dk : dv;
        const int64_t dim = t == 2 ? c->dv : c->dqk, len = t == 0 ? c->sq : c->sk;
        const int64_t heads = t == 0 ? c->hq : c->hkv;
        const bool bcast = t > 0 && c->kv_bcast;
        for (int probe = 0; probe < 8; probe++) {
            int64_t b = bkt_randint(0, c->b - 1), h = bcast ? 0 : bkt_randint(0, heads - 1);
            int64_t r = bkt_randint(0, len - 1), e = bkt_randint(0, dim - 1);
            int64_t stored = ((b * (bcast ? 1 : heads) + h) * len + r) * dim + e;
            double g = 0.0;
            for (int64_t hh = bcast ? 0 : h; hh < (bcast ? heads : h + 1); hh++)
                g += grad[((b * heads + hh) * len + r) * dim + e];
            double fd = fd_grad(&p, buf, stored);
            double err = fabs(fd - g) / (1.0 + fabs(fd));
            bkt_check(err <= 1e-7, what, "d%s[%lld,%lld,%lld,%lld] = %.12g, differences %.12g",
                      t == 0 ? "q" : t == 1 ? "k" : "v", (long long)b, (long long)h, (long long)r, (long long)e, g,
                      fd);
        }
    }
done:
    free(ws);
    void *bufs[9] = {q, k, v, y, w, lse, dq, dk, dv};
    for (int i = 0; i < 9; i++)
        bkt_free(bufs[i]);
}

/* -------------------------------------------------------- workspace -- */

static void test_workspace_size(void)
{
    const char *what = "sdpa_bwd workspace_size";
    bk_sdpa_bwd_desc d = {2, 6, 3, 19, 37, 20, 12, 0.3, true, -1, 0.0, false, BK_DTYPE_F16};
    bk_sdpa_bwd_plan plan;
    if (!bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                           what))
        return;
    size_t need = (size_t)2 * 3 * 37 * (20 + 12) * sizeof(double);
    size_t got = bk_sdpa_bwd_workspace_size(&plan);
    bkt_check(got >= need && got <= need + 2 * 256, what, "%zu bytes for %zu of accumulators", got, need);
    bkt_check(bk_sdpa_bwd_workspace_size(NULL) == 0, what, "NULL plan gives %zu", bk_sdpa_bwd_workspace_size(NULL));
    d.batch = 0;
    bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
    bkt_check(bk_sdpa_bwd_workspace_size(&plan) == 0, what, "empty problem needs %zu bytes",
              bk_sdpa_bwd_workspace_size(&plan));
    /* a problem whose accumulators cannot be addressed: SIZE_MAX, never a wrapped size */
    bk_sdpa_bwd_desc huge = {INT32_MAX, 256, 256, 1, INT32_MAX, 256, 256, 0.1, false, -1, 0.0, false, BK_DTYPE_F32};
    if (bkt_expect_status(bk_sdpa_bwd_select(&huge, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "sdpa_bwd huge select"))
        bkt_check(bk_sdpa_bwd_workspace_size(&plan) == SIZE_MAX, what, "huge problem gives %zu",
                  bk_sdpa_bwd_workspace_size(&plan));
    bk_sdpa_fwd_plan fp;
    if (bkt_expect_status(bk_sdpa_fwd_select(&huge, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS,
                          "sdpa_fwd huge select"))
        bkt_check(bk_sdpa_fwd_workspace_size(&fp) == 0, "sdpa_fwd workspace_size", "not 0");
}

/* Found by fuzz/fuzz_attention: with kv_len 0 the workspace is 0 bytes and may be
 * {NULL, 0}; the CPU kernel formed NULL + 0 (undefined, reported by UBSan). dq must be 0
 * and dk/dv are empty. */
static void test_no_keys_null_workspace(void)
{
    const char *what = "sdpa_bwd kv_len 0, workspace {NULL, 0}";
    bk_sdpa_bwd_desc d = {2, 4, 2, 3, 0, 8, 8, 0.5, false, -1, 0.0, false, BK_DTYPE_F32};
    bk_sdpa_bwd_plan plan;
    if (!bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                           what))
        return;
    bkt_check(bk_sdpa_bwd_workspace_size(&plan) == 0, what, "workspace %zu bytes", bk_sdpa_bwd_workspace_size(&plan));
    int64_t sq[4] = {2, 4, 3, 8}, sk[4] = {2, 2, 0, 8}, sl[3] = {2, 4, 3};
    float *q = bkt_alloc(BK_DTYPE_F32, 192), *y = bkt_alloc(BK_DTYPE_F32, 192), *dy = bkt_alloc(BK_DTYPE_F32, 192);
    float *lse = bkt_alloc(BK_DTYPE_F32, 24), *dq = bkt_alloc(BK_DTYPE_F32, 192), *kv = bkt_alloc(BK_DTYPE_F32, 1);
    bkt_fill(q, BK_DTYPE_F32, 192, -1, 1);
    bkt_fill(dy, BK_DTYPE_F32, 192, -1, 1);
    bkt_poison(dq, BK_DTYPE_F32, 192);
    for (int i = 0; i < 24; i++)
        lse[i] = -INFINITY;
    bk_sdpa_bwd_args a = {.q = bkt_view(q, BK_DTYPE_F32, 4, sq), .k = bkt_view(kv, BK_DTYPE_F32, 4, sk),
                          .v = bkt_view(kv, BK_DTYPE_F32, 4, sk), .y = bkt_view(y, BK_DTYPE_F32, 4, sq),
                          .dy = bkt_view(dy, BK_DTYPE_F32, 4, sq), .lse = bkt_view(lse, BK_DTYPE_F32, 3, sl),
                          .dq = bkt_view(dq, BK_DTYPE_F32, 4, sq), .dk = bkt_view(kv, BK_DTYPE_F32, 4, sk),
                          .dv = bkt_view(kv, BK_DTYPE_F32, 4, sk)};
    bk_workspace ws = {NULL, 0};
    if (bkt_expect_status(bk_sdpa_bwd_run(&plan, NULL, ws, &a), BK_STATUS_SUCCESS, what)) {
        bool zero = true;
        for (int i = 0; i < 192; i++)
            zero = zero && dq[i] == 0.0f;
        bkt_check(zero, what, "dq is not all 0");
    }
    /* found next by fuzz_attention: the empty k with strides[0] = INT64_MAX made the kernel
       overflow b * stride forming its rows' offsets; can_implement now refuses it */
    bkt_poison(dq, BK_DTYPE_F32, 192);
    void *dq0 = bkt_snapshot(dq, 192 * sizeof(float));
    a.k.strides[0] = INT64_MAX;
    bkt_expect_overflow(bk_sdpa_bwd_run(&plan, NULL, ws, &a), "sdpa_bwd", "sdpa_bwd empty k, strides[0] INT64_MAX");
    bkt_check(bkt_same_bytes(dq0, dq, 192 * sizeof(float)), what, "dq written on failure");
    bkt_free(dq0);
    bkt_free(q);
    bkt_free(y);
    bkt_free(dy);
    bkt_free(lse);
    bkt_free(dq);
    bkt_free(kv);
}

/* Found by fuzz/fuzz_attention: q_len 0 with a GQA group of 2^30 query heads walked every
 * (empty) query head of the group on the CPU (a hang). dk and dv are 0 (no query row). */
static void test_no_rows_huge_group(void)
{
    const char *what = "sdpa_bwd q_len 0, 2^30 query heads per kv head";
    bk_sdpa_bwd_desc d = {2, 1 << 30, 1, 0, 3, 4, 4, 0.5, false, -1, 0.0, false, BK_DTYPE_F32};
    bk_sdpa_bwd_plan plan;
    if (!bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                           what))
        return;
    int64_t sq[4] = {2, 1 << 30, 0, 4}, sk[4] = {2, 1, 3, 4}, sl[3] = {2, 1 << 30, 0};
    float *k = bkt_alloc(BK_DTYPE_F32, 24), *dk = bkt_alloc(BK_DTYPE_F32, 24), *dv = bkt_alloc(BK_DTYPE_F32, 24);
    bkt_fill(k, BK_DTYPE_F32, 24, -1, 1);
    bkt_poison(dk, BK_DTYPE_F32, 24);
    bkt_poison(dv, BK_DTYPE_F32, 24);
    bk_sdpa_bwd_args a = {.q = bkt_view(NULL, BK_DTYPE_F32, 4, sq), .k = bkt_view(k, BK_DTYPE_F32, 4, sk),
                          .v = bkt_view(k, BK_DTYPE_F32, 4, sk), .y = bkt_view(NULL, BK_DTYPE_F32, 4, sq),
                          .dy = bkt_view(NULL, BK_DTYPE_F32, 4, sq), .lse = bkt_view(NULL, BK_DTYPE_F32, 3, sl),
                          .dq = bkt_view(NULL, BK_DTYPE_F32, 4, sq), .dk = bkt_view(dk, BK_DTYPE_F32, 4, sk),
                          .dv = bkt_view(dv, BK_DTYPE_F32, 4, sk)};
    size_t need = bk_sdpa_bwd_workspace_size(&plan);
    void *w = alloc_workspace(need);
    if (bkt_expect_status(bk_sdpa_bwd_run(&plan, NULL, (bk_workspace){w, need}, &a), BK_STATUS_SUCCESS, what)) {
        bool zero = true;
        for (int i = 0; i < 24; i++)
            zero = zero && dk[i] == 0.0f && dv[i] == 0.0f;
        bkt_check(zero, what, "dk, dv not all 0");
    }
    free(w);
    bkt_free(k);
    bkt_free(dk);
    bkt_free(dv);
}

/* ------------------------------------------------------ determinism -- */

static void test_determinism(bk_dtype dt)
{
    char what[96];
    snprintf(what, sizeof what, "sdpa_bwd %s determinism", bk_dtype_name(dt));
    const cfg c = {"det", 2, 6, 2, 19, 37, 20, 12, true, 9, 2.5, true, 0.9, false, 1};
    int64_t sh_q[4] = {c.b, c.hq, c.sq, c.dqk}, sh_k[4] = {c.b, c.hkv, c.sk, c.dqk};
    int64_t sh_v[4] = {c.b, c.hkv, c.sk, c.dv}, sh_y[4] = {c.b, c.hq, c.sq, c.dv};
    int64_t sh_l[3] = {c.b, c.hq, c.sq}, sh_s[1] = {c.hq};
    void *q, *k, *v, *y, *dy, *lse, *dq, *dk, *dv;
    int64_t nq, nk, nv, ny, ndy, nl, ndq, ndk, ndv;
    bk_tensor tq = make_view(dt, 4, sh_q, c.pad, false, -2, 2, &q, &nq);
    bk_tensor tk = make_view(dt, 4, sh_k, c.pad, false, -2, 2, &k, &nk);
    bk_tensor tv = make_view(dt, 4, sh_v, c.pad, false, -1, 1, &v, &nv);
    bk_tensor tdy = make_view(dt, 4, sh_y, c.pad, false, -1, 1, &dy, &ndy);
    bk_tensor ty = make_view(dt, 4, sh_y, c.pad, false, 1, 0, &y, &ny);
    bk_tensor tl = make_view(BK_DTYPE_F32, 3, sh_l, c.pad, false, 1, 0, &lse, &nl);
    bk_tensor tdq = make_view(dt, 4, sh_q, c.pad, false, 1, 0, &dq, &ndq);
    bk_tensor tdk = make_view(dt, 4, sh_k, c.pad, false, 1, 0, &dk, &ndk);
    bk_tensor tdv = make_view(dt, 4, sh_v, c.pad, false, 1, 0, &dv, &ndv);
    float slopes[6];
    bkt_fill(slopes, BK_DTYPE_F32, 6, 0.05, 0.6);
    bk_tensor ts = bkt_view(slopes, BK_DTYPE_F32, 1, sh_s);
    bk_sdpa_fwd_desc d = cfg_desc(&c, dt);
    bk_sdpa_fwd_plan fp;
    bk_sdpa_bwd_plan bp;
    void *first[3] = {NULL, NULL, NULL}, *ws = NULL;
    if (!bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS, what))
        goto done;
    bk_sdpa_fwd_args fargs = {tq, tk, tv, ty, &tl, &ts};
    if (!bkt_expect_status(bk_sdpa_fwd_run(&fp, NULL, (bk_workspace){0}, &fargs), BK_STATUS_SUCCESS, what))
        goto done;
    const bk_preference prefs[3] = {BK_PREFER_DETERMINISTIC, BK_PREFER_FASTEST, BK_PREFER_REFERENCE};
    const size_t es = bk_dtype_size(dt);
    for (int pi = 0; pi < 3; pi++) {
        if (!bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), prefs[pi], &bp), BK_STATUS_SUCCESS, what))
            continue;
        char name[96];
        bk_sku_name(&bp.info.sku, name, sizeof name);
        char want[96];
        snprintf(want, sizeof want, "attention/sdpa_bwd/%s/cpu/reference", bk_dtype_name(dt));
        bkt_check(strcmp(name, want) == 0, what, "sku %s", name);
        bkt_check(bp.info.precision.deterministic && bp.info.precision.bit_stable, what, "plan not deterministic");
        size_t bytes = bk_sdpa_bwd_workspace_size(&bp);
        for (int threads = 0; threads < 2; threads++) {
#ifdef _OPENMP
            int keep = omp_get_max_threads();
            if (threads == 1)
                omp_set_num_threads(1);
#else
            if (threads == 1)
                continue;
#endif
            free(ws);
            ws = alloc_workspace(bytes);
            bkt_poison(dq, dt, ndq);
            bkt_poison(dk, dt, ndk);
            bkt_poison(dv, dt, ndv);
            bk_sdpa_bwd_args args = {tq, tk, tv, ty, tdy, tl, &ts, tdq, tdk, tdv};
            bk_status st = bk_sdpa_bwd_run(&bp, NULL, (bk_workspace){ws, bytes}, &args);
#ifdef _OPENMP
            omp_set_num_threads(keep);
#endif
            if (!bkt_expect_status(st, BK_STATUS_SUCCESS, what))
                continue;
            if (!first[0]) {
                first[0] = bkt_snapshot(dq, (size_t)ndq * es);
                first[1] = bkt_snapshot(dk, (size_t)ndk * es);
                first[2] = bkt_snapshot(dv, (size_t)ndv * es);
            } else {
                bkt_check(bkt_same_bytes(first[0], dq, (size_t)ndq * es) &&
                              bkt_same_bytes(first[1], dk, (size_t)ndk * es) &&
                              bkt_same_bytes(first[2], dv, (size_t)ndv * es),
                          what, "preference %d, %s threads: not bit-identical", pi, threads ? "1" : "all");
            }
        }
    }
done:
    free(ws);
    for (int i = 0; i < 3; i++)
        bkt_free(first[i]);
    void *bufs[9] = {q, k, v, y, dy, lse, dq, dk, dv};
    for (int i = 0; i < 9; i++)
        bkt_free(bufs[i]);
}

/* ------------------------------------------------------- bad inputs -- */

typedef struct args_case {
    const char *what;
    bk_sdpa_bwd_args args;
    const bk_sdpa_bwd_plan *plan;
    bk_workspace ws;
    bk_status want;
} args_case;

static void test_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    const bk_sdpa_bwd_desc d = {2, 4, 2, 5, 7, 8, 6, 0.35, true, -1, 0.0, true, dt};
    bk_sdpa_bwd_desc d_noalibi = d;
    d_noalibi.alibi = false;
    int64_t sh_q[4] = {2, 4, 5, 8}, sh_k[4] = {2, 2, 7, 8}, sh_v[4] = {2, 2, 7, 6}, sh_y[4] = {2, 4, 5, 6};
    int64_t sh_l[3] = {2, 4, 5}, sh_s[1] = {4};
    float q[320], k[224], v[168], y[240], dy[240], lse[40], sl[4], dq[320], dk[224], dv[168];
    bkt_fill(q, dt, 320, -1, 1);
    bkt_fill(k, dt, 224, -1, 1);
    bkt_fill(v, dt, 168, -1, 1);
    bkt_fill(y, dt, 240, -1, 1);
    bkt_fill(dy, dt, 240, -1, 1);
    bkt_fill(lse, dt, 40, 1, 2);
    bkt_fill(sl, dt, 4, 0, 1);
    bkt_poison(dq, dt, 320);
    bkt_poison(dk, dt, 224);
    bkt_poison(dv, dt, 168);
    void *dq0 = bkt_snapshot(dq, sizeof dq), *dk0 = bkt_snapshot(dk, sizeof dk), *dv0 = bkt_snapshot(dv, sizeof dv);
    bk_sdpa_bwd_plan bp, bp_noalibi, bp_bad_kernel;
    bk_sdpa_fwd_plan fp;
    void *ws = NULL, *ws0 = NULL;

    /* the descriptor checks are the forward's (shared); a few through this op */
    bk_sdpa_bwd_desc bad = d;
    bad.q_heads = 6;
    bad.kv_heads = 4;
    bkt_expect_status(bk_sdpa_bwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_bwd q_heads 6 / kv_heads 4");
    bkt_check(strcmp(bk_last_error(), "sdpa_bwd: desc.q_heads is 6, expected a multiple of desc.kv_heads = 4") == 0,
              "sdpa_bwd GQA sentence", "got \"%s\"", bk_last_error());
    bad = d;
    bad.head_dim_v = 257;
    bkt_expect_status(bk_sdpa_bwd_select(&bad, bk_target_cpu(), BK_PREFER_DETERMINISTIC, &bp), BK_STATUS_UNSUPPORTED,
                      "sdpa_bwd head_dim_v 257");
    bad = d;
    bad.softcap = -2.0;
    bkt_expect_status(bk_sdpa_bwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_bwd softcap -2");
    bad = d;
    bad.window_left = -5;
    bkt_expect_status(bk_sdpa_bwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_bwd window_left -5");
    bad = d;
    bad.dtype = BK_DTYPE_I32;
    bkt_expect_status(bk_sdpa_bwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_UNSUPPORTED,
                      "sdpa_bwd dtype i32");
#ifdef BK_WITH_CUDA
    bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cuda_cc(0, 8, 0), BK_PREFER_DETERMINISTIC, &bp),
                      BK_STATUS_SUCCESS, "sdpa_bwd CUDA sm_80 f32 (CUDA-core kernel)");
    bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_DETERMINISTIC, &bp),
                      BK_STATUS_UNSUPPORTED, "sdpa_bwd CUDA sm_75 (kernels need sm_80)");
#else
    bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cuda_cc(0, 8, 0), BK_PREFER_DETERMINISTIC, &bp),
                      BK_STATUS_UNSUPPORTED, "sdpa_bwd CUDA sm_80 (built without CUDA)");
#endif
    bkt_expect_status(bk_sdpa_bwd_select(NULL, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_INVALID_PROBLEM,
                      "sdpa_bwd NULL desc");

    if (!bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_SUCCESS,
                           "sdpa_bwd select") ||
        !bkt_expect_status(bk_sdpa_bwd_select(&d_noalibi, bk_target_cpu(), BK_PREFER_FASTEST, &bp_noalibi),
                           BK_STATUS_SUCCESS, "sdpa_bwd select") ||
        !bkt_expect_status(bk_sdpa_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS,
                           "sdpa_fwd select"))
        goto done;
    bp_bad_kernel = bp;
    bp_bad_kernel.info.kernel = 9;
    const size_t bytes = bk_sdpa_bwd_workspace_size(&bp);
    ws = alloc_workspace(bytes);
    ws0 = bkt_snapshot(ws, bytes);
    const bk_workspace good_ws = {ws, bytes};
    bk_tensor ts = bkt_view(sl, BK_DTYPE_F32, 1, sh_s);
    const bk_sdpa_bwd_args good = {bkt_view(q, dt, 4, sh_q),  bkt_view(k, dt, 4, sh_k),   bkt_view(v, dt, 4, sh_v),
                                   bkt_view(y, dt, 4, sh_y),  bkt_view(dy, dt, 4, sh_y),  bkt_view(lse, dt, 3, sh_l),
                                   &ts,                       bkt_view(dq, dt, 4, sh_q),  bkt_view(dk, dt, 4, sh_k),
                                   bkt_view(dv, dt, 4, sh_v)};
    bk_tensor s_short = ts;
    s_short.shape[0] = 2;
    args_case cases[48];
    int nc = 0;
#define ARGS_CASE(label, status, stmt)                                                                                 \
    do {                                                                                                               \
        cases[nc].what = label;                                                                                        \
        cases[nc].args = good;                                                                                         \
        cases[nc].plan = &bp;                                                                                          \
        cases[nc].ws = good_ws;                                                                                        \
        cases[nc].want = status;                                                                                       \
        {                                                                                                              \
            bk_sdpa_bwd_args *a = &cases[nc].args;                                                                     \
            (void)a;                                                                                                   \
            stmt;                                                                                                      \
        }                                                                                                              \
        nc++;                                                                                                          \
    } while (0)
    ARGS_CASE("sdpa_bwd q.shape[2] wrong", BK_STATUS_INVALID_PROBLEM, a->q.shape[2] = 4);
    ARGS_CASE("sdpa_bwd k.shape[1] wrong", BK_STATUS_INVALID_PROBLEM, a->k.shape[1] = 4);
    ARGS_CASE("sdpa_bwd v dtype f16", BK_STATUS_INVALID_PROBLEM, a->v.dtype = BK_DTYPE_F16);
    ARGS_CASE("sdpa_bwd y.shape[3] wrong", BK_STATUS_INVALID_PROBLEM, a->y.shape[3] = 8);
    ARGS_CASE("sdpa_bwd dy dtype f64", BK_STATUS_INVALID_PROBLEM, a->dy.dtype = BK_DTYPE_F64);
    ARGS_CASE("sdpa_bwd dy rank 3", BK_STATUS_INVALID_PROBLEM, a->dy.rank = 3);
    ARGS_CASE("sdpa_bwd y data NULL", BK_STATUS_INVALID_PROBLEM, a->y.data = NULL);
    ARGS_CASE("sdpa_bwd lse dtype f16", BK_STATUS_INVALID_PROBLEM, a->lse.dtype = BK_DTYPE_F16);
    ARGS_CASE("sdpa_bwd lse shape", BK_STATUS_INVALID_PROBLEM, a->lse.shape[1] = 2);
    ARGS_CASE("sdpa_bwd lse data NULL", BK_STATUS_INVALID_PROBLEM, a->lse.data = NULL);
    ARGS_CASE("sdpa_bwd lse capacity", BK_STATUS_BUFFER_TOO_SMALL, a->lse.capacity = 39);
    ARGS_CASE("sdpa_bwd dq.shape[3] wrong", BK_STATUS_INVALID_PROBLEM, a->dq.shape[3] = 6);
    ARGS_CASE("sdpa_bwd dk dtype f64", BK_STATUS_INVALID_PROBLEM, a->dk.dtype = BK_DTYPE_F64);
    ARGS_CASE("sdpa_bwd dv data NULL", BK_STATUS_INVALID_PROBLEM, a->dv.data = NULL);
    ARGS_CASE("sdpa_bwd dk broadcast head axis", BK_STATUS_INVALID_PROBLEM, a->dk.strides[1] = 0);
    ARGS_CASE("sdpa_bwd dv broadcast head axis", BK_STATUS_INVALID_PROBLEM, a->dv.strides[1] = 0);
    ARGS_CASE("sdpa_bwd dq overlapping", BK_STATUS_INVALID_PROBLEM, a->dq.strides[1] = 20);
    ARGS_CASE("sdpa_bwd dv negative stride", BK_STATUS_INVALID_PROBLEM, a->dv.strides[2] = -6);
    ARGS_CASE("sdpa_bwd dq inner stride 2", BK_STATUS_UNSUPPORTED,
              (a->dq.strides[3] = 2, a->dq.strides[2] = 16, a->dq.strides[1] = 80, a->dq.strides[0] = 320,
               a->dq.capacity = 0));
    ARGS_CASE("sdpa_bwd y inner stride 2", BK_STATUS_UNSUPPORTED, (a->y.strides[3] = 2, a->y.capacity = 0));
    ARGS_CASE("sdpa_bwd dy broadcast head axis", BK_STATUS_UNSUPPORTED, a->dy.strides[1] = 0);
    ARGS_CASE("sdpa_bwd q broadcast head axis", BK_STATUS_UNSUPPORTED, a->q.strides[1] = 0);
    ARGS_CASE("sdpa_bwd dk capacity", BK_STATUS_BUFFER_TOO_SMALL, a->dk.capacity = 223);
    ARGS_CASE("sdpa_bwd dy capacity", BK_STATUS_BUFFER_TOO_SMALL, a->dy.capacity = 100);
    ARGS_CASE("sdpa_bwd alibi without slopes", BK_STATUS_INVALID_PROBLEM, a->alibi_slopes = NULL);
    ARGS_CASE("sdpa_bwd slopes shape", BK_STATUS_INVALID_PROBLEM, a->alibi_slopes = &s_short);
    ARGS_CASE("sdpa_bwd slopes without alibi", BK_STATUS_INVALID_PROBLEM, cases[nc].plan = &bp_noalibi);
    ARGS_CASE("sdpa_bwd workspace too small", BK_STATUS_WORKSPACE_TOO_SMALL, cases[nc].ws.bytes = bytes - 1);
    ARGS_CASE("sdpa_bwd workspace empty", BK_STATUS_INVALID_PROBLEM, cases[nc].ws = (bk_workspace){0});
    ARGS_CASE("sdpa_bwd workspace NULL data", BK_STATUS_INVALID_PROBLEM, cases[nc].ws.data = NULL);
    ARGS_CASE("sdpa_bwd kernel id corrupted", BK_STATUS_INVALID_PROBLEM, cases[nc].plan = &bp_bad_kernel);
    ARGS_CASE("sdpa_bwd given a forward plan", BK_STATUS_INVALID_PROBLEM,
              cases[nc].plan = (const bk_sdpa_bwd_plan *)&fp);
#undef ARGS_CASE
    for (int c = 0; c < nc; c++) {
        bk_status st = bk_sdpa_bwd_run(cases[c].plan, NULL, cases[c].ws, &cases[c].args);
        bkt_expect_status(st, cases[c].want, cases[c].what);
        bkt_check(bkt_same_bytes(dq0, dq, sizeof dq) && bkt_same_bytes(dk0, dk, sizeof dk) &&
                      bkt_same_bytes(dv0, dv, sizeof dv) && bkt_same_bytes(ws0, ws, bytes),
                  cases[c].what, "output or workspace written on failure");
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        /* can_implement agrees with run wherever the failure is not the workspace's or
         * the plan's */
        if (cases[c].plan == &bp && cases[c].ws.data == ws && cases[c].ws.bytes == bytes)
            bkt_expect_status(bk_sdpa_bwd_can_implement(cases[c].plan, &cases[c].args), cases[c].want, cases[c].what);
    }
    bk_sdpa_bwd_args a = good;
    a.dk.strides[1] = 0;
    bk_sdpa_bwd_run(&bp, NULL, good_ws, &a);
    bkt_check(strcmp(bk_last_error(),
                     "sdpa_bwd: dk.strides[1] is 0 on axis kv_heads of extent 2: an output cannot broadcast") == 0,
              "sdpa_bwd dk broadcast sentence", "got \"%s\"", bk_last_error());
    bk_sdpa_bwd_run(&bp, NULL, (bk_workspace){ws, 8}, &good);
    bkt_check(strstr(bk_last_error(), "sdpa_bwd: workspace is 8 bytes, expected") != NULL,
              "sdpa_bwd workspace sentence", "got \"%s\"", bk_last_error());
    bkt_expect_status(bk_sdpa_bwd_run(NULL, NULL, good_ws, &good), BK_STATUS_INVALID_PROBLEM, "sdpa_bwd NULL plan");
    bkt_expect_status(bk_sdpa_bwd_run(&bp, NULL, good_ws, NULL), BK_STATUS_INVALID_PROBLEM, "sdpa_bwd NULL args");
    bkt_check(bkt_same_bytes(dq0, dq, sizeof dq) && bkt_same_bytes(dk0, dk, sizeof dk) &&
                  bkt_same_bytes(dv0, dv, sizeof dv),
              "sdpa_bwd NULLs", "output written on failure");
    /* and the good call works */
    bkt_expect_status(bk_sdpa_bwd_run(&bp, NULL, good_ws, &good), BK_STATUS_SUCCESS, "sdpa_bwd good args");
    bkt_check(!isnan(dq[319]) && !isnan(dk[223]) && !isnan(dv[167]), "sdpa_bwd good args", "outputs not written");
done:
    free(ws);
    bkt_free(ws0);
    bkt_free(dq0);
    bkt_free(dk0);
    bkt_free(dv0);
}

/* Selection on a compute capability 9.0 target (no device needed): FASTEST takes the
 * Hopper kernel (SKU arch sm90, not deterministic, the fused kernel's workspace) for
 * f16/bf16 with Dqk == Dv in {64, 128} and no softcap, ALiBi or window, and the sm_80
 * kernels otherwise; DETERMINISTIC its deterministic mode for the same problems (SKU arch
 * sm90, deterministic, the fused deterministic workspace), the fused deterministic mode
 * otherwise; REFERENCE never takes it; cc 8.0, 8.9 and 10.0 never do. */
static void test_select_sm90(void)
{
#ifdef BK_WITH_CUDA
    const char *what = "sdpa_bwd select sm90";
    const bk_target h100 = bk_target_cuda_cc(0, 9, 0);
    bk_sdpa_bwd_desc base = {2, 8, 2, 333, 200, 128, 128, 0.09, true, -1, 0.0, false, BK_DTYPE_BF16};
    struct {
        const char *name;
        int32_t d, dv, window;
        double softcap;
        bool alibi;
        bk_dtype dt;
        bk_target target;
        bk_preference pref;
        const char *sku;
        bool deterministic;
    } cases[] = {
        {"bf16 D128", 128, 128, -1, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm90/bespoke", false},
        {"f16 D64", 64, 64, -1, 0.0, false, BK_DTYPE_F16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/f16/sm90/bespoke", false},
        {"bf16 D256", 256, 256, -1, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm90/bespoke", false},
        {"bf16 D96", 96, 96, -1, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/reference", true},
        {"bf16 D128/64", 128, 64, -1, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/reference", true},
        {"bf16 D128 window", 128, 128, 16, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/bespoke", false},
        {"bf16 D128 softcap", 128, 128, -1, 5.0, false, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/bespoke", false},
        {"bf16 D128 alibi", 128, 128, -1, 0.0, true, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/bespoke", false},
        {"f32 D128", 128, 128, -1, 0.0, false, BK_DTYPE_F32, h100, BK_PREFER_FASTEST, "attention/sdpa_bwd/f32/sm80/reference", true},
        {"bf16 D128 deterministic", 128, 128, -1, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_DETERMINISTIC, "attention/sdpa_bwd/bf16/sm90/bespoke", true},
        {"f16 D64 deterministic", 64, 64, -1, 0.0, false, BK_DTYPE_F16, h100, BK_PREFER_DETERMINISTIC, "attention/sdpa_bwd/f16/sm90/bespoke", true},
        {"bf16 D256 deterministic", 256, 256, -1, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_DETERMINISTIC, "attention/sdpa_bwd/bf16/sm90/bespoke", true},
        {"bf16 D128 window deterministic", 128, 128, 16, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_DETERMINISTIC, "attention/sdpa_bwd/bf16/sm80/bespoke", true},
        {"bf16 D128 deterministic sm_80", 128, 128, -1, 0.0, false, BK_DTYPE_BF16, bk_target_cuda_cc(0, 8, 0), BK_PREFER_DETERMINISTIC, "attention/sdpa_bwd/bf16/sm80/bespoke", true},
        {"bf16 D128 reference", 128, 128, -1, 0.0, false, BK_DTYPE_BF16, h100, BK_PREFER_REFERENCE, "attention/sdpa_bwd/bf16/sm80/reference", true},
        {"bf16 D128 sm_80", 128, 128, -1, 0.0, false, BK_DTYPE_BF16, bk_target_cuda_cc(0, 8, 0), BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/bespoke", false},
        {"bf16 D128 sm_89", 128, 128, -1, 0.0, false, BK_DTYPE_BF16, bk_target_cuda_cc(0, 8, 9), BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/bespoke", false},
        {"bf16 D128 sm_100", 128, 128, -1, 0.0, false, BK_DTYPE_BF16, bk_target_cuda_cc(0, 10, 0), BK_PREFER_FASTEST, "attention/sdpa_bwd/bf16/sm80/bespoke", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bk_sdpa_bwd_desc d = base;
        d.head_dim_qk = cases[i].d;
        d.head_dim_v = cases[i].dv;
        d.window_left = cases[i].window;
        d.softcap = cases[i].softcap;
        d.alibi = cases[i].alibi;
        d.dtype = cases[i].dt;
        bk_sdpa_bwd_plan plan;
        char name[96];
        if (!bkt_expect_status(bk_sdpa_bwd_select(&d, cases[i].target, cases[i].pref, &plan), BK_STATUS_SUCCESS,
                               cases[i].name))
            continue;
        bk_sku_name(&plan.info.sku, name, sizeof name);
        bkt_check(strcmp(name, cases[i].sku) == 0, what, "%s: sku %s, expected %s", cases[i].name, name, cases[i].sku);
        bkt_check(plan.info.precision.deterministic == cases[i].deterministic &&
                      plan.info.precision.bit_stable == cases[i].deterministic,
                  what, "%s: deterministic %d", cases[i].name, (int)plan.info.precision.deterministic);
        /* CUDA workspace: as cuda_scratch_bytes for the same problem */
        const cfg c = {cases[i].name, d.batch, d.q_heads, d.kv_heads, d.q_len, d.kv_len, d.head_dim_qk, d.head_dim_v,
                       d.causal, d.window_left, d.softcap, d.alibi, d.scale, false, 0};
        const size_t need = cuda_scratch_bytes(&c, d.dtype, cases[i].pref);
        const size_t ws = bk_sdpa_bwd_workspace_size(&plan);
        bkt_check(ws >= need && ws <= need + 768, what, "%s: workspace_size %zu for %zu bytes", cases[i].name, ws, need);
    }
#endif
}

/* True when the fastest CUDA plan for d is a tensor-core kernel. */
static bool tc_applies(bk_target gpu, const bk_sdpa_bwd_desc *d)
{
    bk_sdpa_bwd_plan p;
    return bk_sdpa_bwd_select(d, gpu, BK_PREFER_FASTEST, &p) == BK_STATUS_SUCCESS &&
           p.info.precision.math == BK_MATH_F16_BF16_TENSOR;
}

/* The CUDA section: SKUs and guarantees of the plans, every CPU case on the GPU (every
 * preference where the tensor-core kernels apply), the GPU-only shapes with reruns (and
 * the fused plans' fallback), the deterministic fused cases. */
static void test_cuda(void)
{
    bk_target gpu;
    if (!bkt_cuda_target("sdpa_bwd cuda", &gpu))
        return;
    const char *what = "sdpa_bwd cuda skus";
    bk_sdpa_bwd_desc d = {2, 4, 2, 7, 33, 64, 64, 0.125, true, -1, 0.0, false, BK_DTYPE_BF16};
    bk_sdpa_bwd_plan plan;
    char name[96];
    if (bkt_expect_status(bk_sdpa_bwd_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
        const bool hopper = gpu.cc_major == 9 && gpu.cc_minor == 0;
        bk_sku_name(&plan.info.sku, name, sizeof name);
        bkt_check(strcmp(name, hopper ? "attention/sdpa_bwd/bf16/sm90/bespoke" : "attention/sdpa_bwd/bf16/sm80/bespoke") == 0,
                  what, "bf16 D64 fastest sku %s", name);
        bkt_check(!plan.info.precision.deterministic && !plan.info.precision.bit_stable, what,
                  "the fused kernel (atomics) claims determinism");
    }
    const int32_t fastest = plan.info.kernel;
    /* DETERMINISTIC: the fused kernel's deterministic mode at D 64, 128 and 256 alike (on
     * compute capability 9.0 the Hopper kernel's) */
    for (int32_t dim = 64; dim <= 256; dim *= 2) {
        d.head_dim_qk = d.head_dim_v = dim;
        if (bkt_expect_status(bk_sdpa_bwd_select(&d, gpu, BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS,
                              what)) {
            const bool hopper = gpu.cc_major == 9 && gpu.cc_minor == 0;
            bk_sku_name(&plan.info.sku, name, sizeof name);
            bkt_check(strcmp(name, hopper ? "attention/sdpa_bwd/bf16/sm90/bespoke" : "attention/sdpa_bwd/bf16/sm80/bespoke") == 0,
                      what, "bf16 D%d sku %s", (int)dim, name);
            bkt_check(plan.info.precision.deterministic && plan.info.precision.bit_stable, what,
                      "D%d not deterministic", (int)dim);
            bkt_check(plan.info.precision.math == BK_MATH_F16_BF16_TENSOR, what, "D%d math %d, expected tensor cores",
                      (int)dim, (int)plan.info.precision.math);
            bkt_check(plan.info.kernel != fastest, what, "D%d: the deterministic plan has the fastest's kernel id",
                      (int)dim);
        }
    }
    d.head_dim_qk = 64;
    d.head_dim_v = 32;
    if (bkt_expect_status(bk_sdpa_bwd_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
        bk_sku_name(&plan.info.sku, name, sizeof name);
        bkt_check(strcmp(name, "attention/sdpa_bwd/bf16/sm80/reference") == 0, what, "bf16 Dqk!=Dv sku %s", name);
        bkt_check(plan.info.precision.deterministic, what, "CUDA-core kernel not deterministic");
    }
    d.dtype = BK_DTYPE_F64;
    if (bkt_expect_status(bk_sdpa_bwd_select(&d, gpu, BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS, what))
        bkt_check(plan.info.precision.math == BK_MATH_F64, what, "f64 plan does not compute in f64");

    const bool quick = bkt_quick();
    const size_t ncases = sizeof k_cases / sizeof k_cases[0];
    for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
        for (size_t c = 0; c < ncases; c++) {
            if (quick && (c % 4 != t % 4))
                continue;
            bk_sdpa_bwd_desc cd = cfg_desc(&k_cases[c], k_dtypes[t]);
            test_case(gpu, BK_PREFER_FASTEST, &k_cases[c], k_dtypes[t], RUN_ONCE);
            if (tc_applies(gpu, &cd)) {
                test_case(gpu, BK_PREFER_DETERMINISTIC, &k_cases[c], k_dtypes[t], RUN_ONCE);
                test_case(gpu, BK_PREFER_REFERENCE, &k_cases[c], k_dtypes[t], RUN_ONCE);
            }
        }
    const bk_dtype gpu_dtypes[2] = {BK_DTYPE_BF16, BK_DTYPE_F16};
    for (size_t c = 0; c < sizeof k_gpu_cases / sizeof k_gpu_cases[0]; c++)
        for (int t = 0; t < 2; t++) {
            if (quick && !gpu_case_quick(c))
                continue;
            test_case(gpu, BK_PREFER_FASTEST, &k_gpu_cases[c], gpu_dtypes[t], RUN_RERUN);
            if (!quick || t == 0)
                test_case(gpu, BK_PREFER_DETERMINISTIC, &k_gpu_cases[c], gpu_dtypes[t], RUN_RERUN);
            /* the fused plans' fallback: the two-pass tensor-core kernel (CUDA cores at D 256) */
            if ((!quick || t == 0) && fused_applies(&k_gpu_cases[c], gpu_dtypes[t]))
                test_case(gpu, BK_PREFER_DETERMINISTIC, &k_gpu_cases[c], gpu_dtypes[t],
                          RUN_RERUN | RUN_MISALIGNED_WS);
            if (!quick && t == 0)
                test_case(gpu, BK_PREFER_REFERENCE, &k_gpu_cases[c], gpu_dtypes[t], RUN_RERUN);
        }
    /* the deterministic modes of the fused kernel (and on cc 9.0 the Hopper kernel): three
     * bit-identical runs per case */
    for (size_t c = 0; c < sizeof k_det_cases / sizeof k_det_cases[0]; c++)
        for (int t = 0; t < 2; t++) {
            if (quick && (t == 1 || (c % 3 != 0 && c != 4)))
                continue;
            test_case(gpu, BK_PREFER_DETERMINISTIC, &k_det_cases[c], gpu_dtypes[t], RUN_RERUN);
            if (t == 0)
                test_case(gpu, BK_PREFER_FASTEST, &k_det_cases[c], gpu_dtypes[t], RUN_ONCE);
        }
    if (!quick) {
        test_case(gpu, BK_PREFER_FASTEST, &k_gpu_cases[0], BK_DTYPE_F32, RUN_RERUN);
        test_case(gpu, BK_PREFER_FASTEST, &k_gpu_cases[2], BK_DTYPE_F64, RUN_RERUN);
    }
}

static const cfg k_fd_cases[] = {
    /* name                            b  hq hkv sq sk dqk dv causal win cap  alibi scale bcast pad */
    {"causal window softcap alibi gqa", 2, 4, 2, 5, 7, 6, 5, true,  3,  1.5, true,  0.8, false, 0},
    {"causal q>kv empty rows mqa",      1, 3, 1, 9, 4, 4, 3, true,  -1, 0.0, false, 0,   false, 0},
    {"noncausal stride-0 kv alibi",     2, 4, 2, 4, 6, 5, 7, false, -1, 0.0, true,  0,   true,  0},
};

/* Extents whose products pass int64 (issue 13): can_implement refuses them with a
 * sentence naming the overflow and writes nothing; workspace_size is SIZE_MAX (the
 * CPU's f64 accumulators), and so on CUDA plans (selected by compute capability). */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F16;
    bk_sdpa_bwd_desc d = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, 128, 128, 0.1, false, -1, 0.0, false, dt};
    int64_t s4[4] = {INT32_MAX, INT32_MAX, INT32_MAX, 128}, s3[3] = {INT32_MAX, INT32_MAX, INT32_MAX};
    uint16_t in[16], out[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_sdpa_bwd_plan plan;
    if (bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "sdpa_bwd overflow select")) {
        bk_tensor x = bkt_view_huge(in, dt, 4, s4), o = bkt_view_huge(out, dt, 4, s4);
        bk_sdpa_bwd_args a = {x, x, x, x, x, bkt_view_huge(in, BK_DTYPE_F32, 3, s3), NULL, o, o, o};
        bkt_expect_overflow(bk_sdpa_bwd_can_implement(&plan, &a), "sdpa_bwd", "sdpa_bwd 2^100 q");
        bkt_expect_overflow(bk_sdpa_bwd_run(&plan, NULL, (bk_workspace){0}, &a), "sdpa_bwd", "sdpa_bwd run 2^100");
        bkt_check(bk_sdpa_bwd_workspace_size(&plan) == SIZE_MAX, "sdpa_bwd overflow workspace", "%zu",
                  bk_sdpa_bwd_workspace_size(&plan));
    }
    if (bk_has_cuda()) {
        const bk_preference prefs[3] = {BK_PREFER_FASTEST, BK_PREFER_DETERMINISTIC, BK_PREFER_REFERENCE};
        for (int p = 0; p < 3; p++)
            if (bkt_expect_status(bk_sdpa_bwd_select(&d, bk_target_cuda_cc(0, 9, 0), prefs[p], &plan),
                                  BK_STATUS_SUCCESS, "sdpa_bwd CUDA overflow select"))
                bkt_check(bk_sdpa_bwd_workspace_size(&plan) == SIZE_MAX, "sdpa_bwd CUDA overflow workspace", "%zu",
                          bk_sdpa_bwd_workspace_size(&plan));
    }
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "sdpa_bwd overflow", "outputs written on failure");
    bkt_free(out0);
}

int main(void)
{
    bkt_init("test_sdpa_bwd");
    for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
        for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++)
            test_case(bk_target_cpu(), BK_PREFER_DETERMINISTIC, &k_cases[c], k_dtypes[t], RUN_ONCE);
    for (size_t c = 0; c < sizeof k_fd_cases / sizeof k_fd_cases[0]; c++)
        test_finite_differences(&k_fd_cases[c]);
    test_workspace_size();
    test_no_keys_null_workspace();
    test_no_rows_huge_group();
    for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
        test_determinism(k_dtypes[t]);
    test_bad_inputs();
    test_select_sm90();
    test_cuda();
    test_overflow();
    return bkt_finish();
}
