/* test_alibi.c - alibi_fwd, alibi_bwd and bk_alibi_slopes against naive f64 loops,
 * central finite differences, bad inputs and determinism. */
#include "bk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const bk_dtype k_dtypes[] = {BK_DTYPE_F32, BK_DTYPE_F64, BK_DTYPE_F16, BK_DTYPE_BF16};

typedef struct shape4 {
    int64_t b, h, q, k;
} shape4;

static const shape4 k_shapes[] = {{1, 1, 1, 1}, {2, 3, 7, 33}, {1, 5, 130, 13}, {3, 2, 1, 17}, {2, 4, 0, 5}};

/* Independent reference: Y = A + slope[h] * (j - i), f64. */
static void ref_fwd(const bk_tensor *scores, const double *slopes, shape4 s, double *y)
{
    int64_t n = 0;
    for (int64_t b = 0; b < s.b; b++)
        for (int64_t h = 0; h < s.h; h++)
            for (int64_t i = 0; i < s.q; i++)
                for (int64_t j = 0; j < s.k; j++, n++) {
                    int64_t idx[4] = {b, h, i, j};
                    y[n] = bkt_at(scores, idx) + slopes[h] * (double)(j - i);
                }
}

static void test_forward(bk_target target, bk_dtype dt, shape4 s, bool padded, bool in_place)
{
    char what[128];
    snprintf(what, sizeof what, "alibi_fwd %s %s [%lld,%lld,%lld,%lld]%s%s", target.kind == BK_TARGET_CUDA ? "cuda" : "cpu",
             bk_dtype_name(dt), (long long)s.b, (long long)s.h, (long long)s.q, (long long)s.k, padded ? " strided" : "",
             in_place ? " in-place" : "");
    int64_t shape[4] = {s.b, s.h, s.q, s.k}, hs[1] = {s.h};
    int64_t pad = padded ? 3 : 0;
    bk_tensor probe = bkt_view_padded(NULL, dt, 4, shape, pad);
    int64_t span = bkt_view_span(&probe) + 1;
    void *a = bkt_alloc(dt, span), *y = bkt_alloc(dt, span), *sl = bkt_alloc(dt, s.h);
    bkt_fill(a, dt, span, -2.0, 2.0);
    bkt_fill(sl, dt, s.h, 0.0, 1.0);
    bk_tensor ta = bkt_view_padded(a, dt, 4, shape, pad);
    bk_tensor ty = in_place ? ta : bkt_view_padded(y, dt, 4, shape, pad);
    if (!in_place)
        bkt_poison(y, dt, span);

    int64_t n = s.b * s.h * s.q * s.k;
    double *ref = malloc((size_t)(n + 1) * sizeof(double)), *slopes = malloc((size_t)(s.h + 1) * sizeof(double));
    bkt_gather(&(bk_tensor){.data = sl, .dtype = dt, .rank = 1, .shape = {s.h}, .strides = {1}}, slopes);
    ref_fwd(&ta, slopes, s, ref);

    bk_alibi_fwd_desc d = {(int32_t)s.b, (int32_t)s.h, (int32_t)s.q, (int32_t)s.k, dt};
    bk_alibi_fwd_plan plan;
    bk_status st = bk_alibi_fwd_select(&d, target, BK_PREFER_FASTEST, &plan);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
        size_t bytes = (size_t)span * bk_dtype_size(dt);
        bk_alibi_fwd_args args = {ta, bkt_view(sl, dt, 1, hs), ty};
        bkt_dev dev = bkt_dev_begin(target);
        args.scores.data = in_place ? bkt_dev_out(&dev, a, bytes) : bkt_dev_in(&dev, a, bytes);
        args.slopes.data = bkt_dev_in(&dev, sl, (size_t)s.h * bk_dtype_size(dt));
        args.y.data = in_place ? args.scores.data : bkt_dev_out(&dev, y, bytes);
        st = bk_alibi_fwd_run(&plan, bkt_dev_stream(&dev), (bk_workspace){0}, &args);
        if (bkt_dev_end(&dev) && bkt_expect_status(st, BK_STATUS_SUCCESS, what))
            bkt_check_close(what, &ty, ref, 1.0);
    }
    free(ref);
    free(slopes);
    bkt_free(a);
    bkt_free(y);
    bkt_free(sl);
}

/* Reference backward: dA = dY, dslope[h] = sum dY * (j - i). */
static void test_backward(bk_target target, bk_dtype dt, shape4 s, bool want_da, bool want_ds)
{
    char what[128];
    snprintf(what, sizeof what, "alibi_bwd %s %s [%lld,%lld,%lld,%lld]%s%s", target.kind == BK_TARGET_CUDA ? "cuda" : "cpu",
             bk_dtype_name(dt), (long long)s.b,
             (long long)s.h, (long long)s.q, (long long)s.k, want_da ? " dA" : "", want_ds ? " dslope" : "");
    int64_t shape[4] = {s.b, s.h, s.q, s.k}, hs[1] = {s.h};
    int64_t n = s.b * s.h * s.q * s.k;
    void *dy = bkt_alloc(dt, n), *da = bkt_alloc(dt, n), *ds = bkt_alloc(dt, s.h);
    bkt_fill(dy, dt, n, -1.0, 1.0);
    bkt_poison(da, dt, n);
    bkt_poison(ds, dt, s.h);
    bk_tensor tdy = bkt_view_padded(dy, dt, 4, shape, 0), tda = bkt_view(da, dt, 4, shape), tds = bkt_view(ds, dt, 1, hs);

    double *ref_da = malloc((size_t)(n + 1) * sizeof(double)), *ref_ds = calloc((size_t)s.h + 1, sizeof(double));
    int64_t k = 0;
    for (int64_t b = 0; b < s.b; b++)
        for (int64_t h = 0; h < s.h; h++)
            for (int64_t i = 0; i < s.q; i++)
                for (int64_t j = 0; j < s.k; j++, k++) {
                    ref_da[k] = bkt_get(dy, dt, k);
                    ref_ds[h] += ref_da[k] * (double)(j - i);
                }

    bk_alibi_bwd_desc d = {(int32_t)s.b, (int32_t)s.h, (int32_t)s.q, (int32_t)s.k, dt};
    bk_alibi_bwd_plan plan;
    bk_status st = bk_alibi_bwd_select(&d, target, BK_PREFER_DETERMINISTIC, &plan);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
        bkt_check(plan.info.precision.deterministic, what, "plan is not deterministic");
        size_t ws_bytes = bk_alibi_bwd_workspace_size(&plan), bytes = (size_t)n * bk_dtype_size(dt);
        void *ws_host = bkt_alloc(BK_DTYPE_F64, (int64_t)(ws_bytes / 8 + 1));
        bk_tensor ddy = tdy, dda = tda, dds = tds;
        bk_alibi_bwd_args args = {ddy, want_da ? &dda : NULL, want_ds ? &dds : NULL};
        bkt_dev dev = bkt_dev_begin(target);
        args.dy.data = bkt_dev_in(&dev, dy, bytes);
        dda.data = bkt_dev_out(&dev, da, bytes);
        dds.data = bkt_dev_out(&dev, ds, (size_t)s.h * bk_dtype_size(dt));
        bk_workspace ws = {ws_bytes ? bkt_dev_in(&dev, ws_host, ws_bytes) : NULL, ws_bytes};
        st = bk_alibi_bwd_run(&plan, bkt_dev_stream(&dev), ws, &args);
        /* rerun on the same inputs: dslope must come out bit-identical */
        void *first = NULL;
        if (want_ds && bkt_dev_end(&dev)) {
            first = bkt_snapshot(ds, (size_t)s.h * bk_dtype_size(dt));
            bkt_poison(ds, dt, s.h);
            dev = bkt_dev_begin(target);
            args.dy.data = bkt_dev_in(&dev, dy, bytes);
            dda.data = bkt_dev_out(&dev, da, bytes);
            dds.data = bkt_dev_out(&dev, ds, (size_t)s.h * bk_dtype_size(dt));
            ws.data = ws_bytes ? bkt_dev_in(&dev, ws_host, ws_bytes) : NULL;
            if (st == BK_STATUS_SUCCESS)
                st = bk_alibi_bwd_run(&plan, bkt_dev_stream(&dev), ws, &args);
        }
        bkt_dev_end(&dev);
        bkt_free(ws_host);
        if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
            if (want_da)
                bkt_check_close(what, &tda, ref_da, 1.0);
            else
                bkt_check(isnan(bkt_get(da, dt, 0)) || n == 0, what, "dA written though not requested");
            if (want_ds) {
                bkt_check_close(what, &tds, ref_ds, 1.0);
                bkt_check(first && bkt_same_bytes(first, ds, (size_t)s.h * bk_dtype_size(dt)), what,
                          "rerun is not bit-identical");
            } else {
                bkt_check(isnan(bkt_get(ds, dt, 0)) || s.h == 0, what, "dslope written though not requested");
            }
        }
        bkt_free(first);
    }
    free(ref_da);
    free(ref_ds);
    bkt_free(dy);
    bkt_free(da);
    bkt_free(ds);
}

/* Loss L(slopes) = sum_{b,h,i,j} W * Y(slopes), through the library's f64 forward. */
static double loss_through_fwd(const bk_alibi_fwd_plan *plan, bk_tensor ta, double *slopes, bk_tensor ts,
                               const double *w, double *y, bk_tensor ty, int64_t n)
{
    ts.data = slopes;
    bk_alibi_fwd_args args = {ta, ts, ty};
    if (bk_alibi_fwd_run(plan, NULL, (bk_workspace){0}, &args) != BK_STATUS_SUCCESS)
        return NAN;
    double l = 0.0;
    for (int64_t i = 0; i < n; i++)
        l += w[i] * y[i];
    return l;
}

static void test_finite_differences(void)
{
    const char *what = "alibi_bwd f64 vs central differences of alibi_fwd";
    shape4 s = {2, 3, 5, 7};
    int64_t shape[4] = {s.b, s.h, s.q, s.k}, hs[1] = {s.h}, n = s.b * s.h * s.q * s.k;
    double *a = bkt_alloc(BK_DTYPE_F64, n), *w = bkt_alloc(BK_DTYPE_F64, n), *y = bkt_alloc(BK_DTYPE_F64, n);
    double slopes[3], ds[3];
    bkt_fill(a, BK_DTYPE_F64, n, -1, 1);
    bkt_fill(w, BK_DTYPE_F64, n, -1, 1);
    bkt_fill(slopes, BK_DTYPE_F64, 3, 0.1, 1);
    bk_alibi_fwd_desc d = {2, 3, 5, 7, BK_DTYPE_F64};
    bk_alibi_fwd_plan fp;
    bk_alibi_bwd_plan bp;
    if (!bkt_expect_status(bk_alibi_fwd_select(&d, bk_target_cpu(), BK_PREFER_REFERENCE, &fp), BK_STATUS_SUCCESS, what) ||
        !bkt_expect_status(bk_alibi_bwd_select(&d, bk_target_cpu(), BK_PREFER_REFERENCE, &bp), BK_STATUS_SUCCESS, what))
        goto done;
    bk_tensor ta = bkt_view(a, BK_DTYPE_F64, 4, shape), ty = bkt_view(y, BK_DTYPE_F64, 4, shape);
    bk_tensor ts = bkt_view(slopes, BK_DTYPE_F64, 1, hs), tw = bkt_view(w, BK_DTYPE_F64, 4, shape);
    bk_tensor tds = bkt_view(ds, BK_DTYPE_F64, 1, hs);
    bk_alibi_bwd_args args = {tw, NULL, &tds};
    bkt_expect_status(bk_alibi_bwd_run(&bp, NULL, (bk_workspace){0}, &args), BK_STATUS_SUCCESS, what);
    for (int h = 0; h < 3; h++) {
        const double eps = 1e-4;
        double keep = slopes[h];
        slopes[h] = keep + eps;
        double lp = loss_through_fwd(&fp, ta, slopes, ts, w, y, ty, n);
        slopes[h] = keep - eps;
        double lm = loss_through_fwd(&fp, ta, slopes, ts, w, y, ty, n);
        slopes[h] = keep;
        double fd = (lp - lm) / (2 * eps);
        bkt_check(fabs(fd - ds[h]) <= 1e-7 * (1 + fabs(fd)), what, "head %d: dslope %.12g, differences %.12g", h,
                  ds[h], fd);
    }
done:
    bkt_free(a);
    bkt_free(w);
    bkt_free(y);
}

static void test_slopes(void)
{
    double s[16];
    bkt_expect_status(bk_alibi_slopes(8, 8.0, s), BK_STATUS_SUCCESS, "alibi_slopes 8");
    for (int h = 0; h < 8; h++)
        bkt_check(s[h] == ldexp(1.0, -(h + 1)), "alibi_slopes 8", "slope[%d] = %g, expected 2^-%d", h, s[h], h + 1);
    /* 12 heads: the 8 slopes of 8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 (every other of 16) */
    bkt_expect_status(bk_alibi_slopes(12, 8.0, s), BK_STATUS_SUCCESS, "alibi_slopes 12");
    for (int h = 0; h < 12; h++) {
        double want = h < 8 ? ldexp(1.0, -(h + 1)) : pow(2.0, -0.5 - (h - 8));
        bkt_check(fabs(s[h] - want) <= 1e-15 * want, "alibi_slopes 12", "slope[%d] = %.17g, expected %.17g", h, s[h],
                  want);
    }
    bkt_expect_status(bk_alibi_slopes(0, 8.0, s), BK_STATUS_INVALID_PROBLEM, "alibi_slopes 0 heads");
    bkt_expect_status(bk_alibi_slopes(4, NAN, s), BK_STATUS_INVALID_PROBLEM, "alibi_slopes NaN bias");
    bkt_expect_status(bk_alibi_slopes(4, 8.0, NULL), BK_STATUS_INVALID_PROBLEM, "alibi_slopes NULL");
}

/* Every bad input: the exact status, and the outputs' bytes unchanged. */
static void test_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    int64_t shape[4] = {2, 3, 4, 5}, hs[1] = {3}, n = 120;
    float a[120], y[120], sl[3], dy[120], ds[3];
    bkt_fill(a, dt, n, -1, 1);
    bkt_fill(sl, dt, 3, 0, 1);
    bkt_fill(dy, dt, n, -1, 1);
    bkt_poison(y, dt, n);
    bkt_poison(ds, dt, 3);
    void *y0 = bkt_snapshot(y, sizeof y), *ds0 = bkt_snapshot(ds, sizeof ds);
    bk_alibi_fwd_desc d = {2, 3, 4, 5, dt};
    bk_alibi_fwd_plan fp;
    bk_alibi_bwd_plan bp;
    bk_status st;

    bk_alibi_fwd_desc bad = d;
    bad.query_len = -1;
    bkt_expect_status(bk_alibi_fwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_INVALID_PROBLEM,
                      "alibi_fwd negative query_len");
    bkt_check(strstr(bk_last_error(), "alibi_fwd: desc.query_len is -1") != NULL, "alibi_fwd error sentence",
              "got \"%s\"", bk_last_error());
    bad = d;
    bad.dtype = BK_DTYPE_I32;
    bkt_expect_status(bk_alibi_fwd_select(&bad, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_UNSUPPORTED,
                      "alibi_fwd i32");
    bkt_expect_status(bk_alibi_fwd_select(NULL, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_INVALID_PROBLEM,
                      "alibi_fwd NULL desc");
    bkt_expect_status(bk_alibi_fwd_select(&d, bk_target_cpu(), (bk_preference)9, &fp), BK_STATUS_INVALID_PROBLEM,
                      "alibi_fwd bad preference");
    bkt_expect_status(bk_alibi_fwd_select(&d, bk_target_cuda_cc(0, 0, 0), BK_PREFER_FASTEST, &fp),
                      BK_STATUS_INVALID_PROBLEM, "alibi_fwd CUDA target without capability");

    bkt_expect_status(bk_alibi_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS, "alibi_fwd select");
    bk_alibi_fwd_args good = {bkt_view(a, dt, 4, shape), bkt_view(sl, dt, 1, hs), bkt_view(y, dt, 4, shape)};
    struct {
        const char *what;
        bk_alibi_fwd_args args;
        bk_status want;
    } cases[8];
    int nc = 0;
    cases[nc].what = "alibi_fwd scores.shape[3] wrong";
    cases[nc].args = good;
    cases[nc].args.scores.shape[3] = 6;
    cases[nc++].want = BK_STATUS_INVALID_PROBLEM;
    cases[nc].what = "alibi_fwd slopes dtype wrong";
    cases[nc].args = good;
    cases[nc].args.slopes.dtype = BK_DTYPE_F64;
    cases[nc++].want = BK_STATUS_INVALID_PROBLEM;
    cases[nc].what = "alibi_fwd y capacity too small";
    cases[nc].args = good;
    cases[nc].args.y.capacity = 119;
    cases[nc++].want = BK_STATUS_BUFFER_TOO_SMALL;
    cases[nc].what = "alibi_fwd y broadcast stride";
    cases[nc].args = good;
    cases[nc].args.y.strides[1] = 0;
    cases[nc++].want = BK_STATUS_INVALID_PROBLEM;
    cases[nc].what = "alibi_fwd y overlapping strides";
    cases[nc].args = good;
    cases[nc].args.y.strides[2] = 1;
    cases[nc++].want = BK_STATUS_INVALID_PROBLEM;
    cases[nc].what = "alibi_fwd negative stride";
    cases[nc].args = good;
    cases[nc].args.scores.strides[0] = -60;
    cases[nc++].want = BK_STATUS_INVALID_PROBLEM;
    cases[nc].what = "alibi_fwd scores NULL data";
    cases[nc].args = good;
    cases[nc].args.scores.data = NULL;
    cases[nc++].want = BK_STATUS_INVALID_PROBLEM;
    cases[nc].what = "alibi_fwd rank wrong";
    cases[nc].args = good;
    cases[nc].args.y.rank = 3;
    cases[nc++].want = BK_STATUS_INVALID_PROBLEM;
    for (int c = 0; c < nc; c++) {
        st = bk_alibi_fwd_run(&fp, NULL, (bk_workspace){0}, &cases[c].args);
        bkt_expect_status(st, cases[c].want, cases[c].what);
        bkt_check(bkt_same_bytes(y0, y, sizeof y), cases[c].what, "output written on failure");
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
    }
    bkt_expect_status(bk_alibi_fwd_run(NULL, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "alibi_fwd NULL plan");
    bkt_expect_status(bk_alibi_fwd_run(&fp, NULL, (bk_workspace){0}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "alibi_fwd NULL args");

    bkt_expect_status(bk_alibi_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_SUCCESS, "alibi_bwd select");
    bk_tensor tds = bkt_view(ds, dt, 1, hs);
    bk_alibi_bwd_args none = {bkt_view(dy, dt, 4, shape), NULL, NULL};
    bkt_expect_status(bk_alibi_bwd_run(&bp, NULL, (bk_workspace){0}, &none), BK_STATUS_INVALID_PROBLEM,
                      "alibi_bwd both outputs absent");
    bk_tensor short_ds = tds;
    short_ds.shape[0] = 2;
    bk_alibi_bwd_args bad_ds = {bkt_view(dy, dt, 4, shape), NULL, &short_ds};
    bkt_expect_status(bk_alibi_bwd_run(&bp, NULL, (bk_workspace){0}, &bad_ds), BK_STATUS_INVALID_PROBLEM,
                      "alibi_bwd dslopes shape");
    bkt_check(bkt_same_bytes(ds0, ds, sizeof ds), "alibi_bwd bad input", "dslopes written on failure");
    /* a plan of the other op */
    bk_alibi_bwd_args ok = {bkt_view(dy, dt, 4, shape), NULL, &tds};
    bkt_expect_status(bk_alibi_bwd_run((const bk_alibi_bwd_plan *)&fp, NULL, (bk_workspace){0}, &ok),
                      BK_STATUS_INVALID_PROBLEM, "alibi_bwd given a forward plan");
    bkt_check(bkt_same_bytes(ds0, ds, sizeof ds), "alibi_bwd wrong plan", "dslopes written on failure");
    bkt_free(y0);
    bkt_free(ds0);
}

/* Found by fuzz/fuzz_alibi: an empty problem with huge outer extents (query_len 0,
 * batch and heads 2^31 - 1) walked every empty (b, h) slice on the CPU (2^62 steps, a
 * hang). Both directions must return at once; dslopes of an empty dy is 0. (Heads 2^26:
 * the rows of the empty views must still be addressable within int64.) */
static void test_empty_huge(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bk_alibi_fwd_desc d = {INT32_MAX, 1 << 26, 0, 5, dt};
    bk_alibi_fwd_plan fp;
    int64_t shape[4] = {INT32_MAX, 1 << 26, 0, 5}, hs[1] = {1 << 26};
    float slope = 0.5f;
    /* slopes: 2^31 - 1 of them cannot be lent; capacity unknown, none is read */
    bk_alibi_fwd_args fa = {bkt_view_huge(NULL, dt, 4, shape), bkt_view_huge(&slope, dt, 1, hs),
                            bkt_view_huge(NULL, dt, 4, shape)};
    if (bkt_expect_status(bk_alibi_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS,
                          "alibi_fwd empty huge select"))
        bkt_expect_status(bk_alibi_fwd_run(&fp, NULL, (bk_workspace){0}, &fa), BK_STATUS_SUCCESS,
                          "alibi_fwd query_len 0, batch 2^31-1, heads 2^26");
    bk_alibi_bwd_desc bd = {INT32_MAX, 3, 0, 5, dt};
    bk_alibi_bwd_plan bp;
    int64_t bshape[4] = {INT32_MAX, 3, 0, 5}, bhs[1] = {3};
    float ds[3];
    bkt_poison(ds, dt, 3);
    bk_tensor tds = bkt_view(ds, dt, 1, bhs);
    bk_alibi_bwd_args ba = {bkt_view(NULL, dt, 4, bshape), NULL, &tds};
    if (bkt_expect_status(bk_alibi_bwd_select(&bd, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_SUCCESS,
                          "alibi_bwd empty huge select") &&
        bkt_expect_status(bk_alibi_bwd_run(&bp, NULL, (bk_workspace){0}, &ba), BK_STATUS_SUCCESS,
                          "alibi_bwd query_len 0, batch 2^31-1"))
        bkt_check(ds[0] == 0.0f && ds[1] == 0.0f && ds[2] == 0.0f, "alibi_bwd empty dy", "dslopes not 0");
    /* found next: only the (empty) dscores, 2^31 - 1 heads: nothing to write either */
    bk_alibi_bwd_desc hd = {1, INT32_MAX, 0, 0, dt};
    int64_t hshape[4] = {1, INT32_MAX, 0, 0};
    bk_tensor tdsc = bkt_view(NULL, dt, 4, hshape);
    bk_alibi_bwd_args ha = {bkt_view(NULL, dt, 4, hshape), &tdsc, NULL};
    if (bkt_expect_status(bk_alibi_bwd_select(&hd, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_SUCCESS,
                          "alibi_bwd empty dscores select"))
        bkt_expect_status(bk_alibi_bwd_run(&bp, NULL, (bk_workspace){0}, &ha), BK_STATUS_SUCCESS,
                          "alibi_bwd empty dscores only, 2^31-1 heads");
}

/* Extents whose product passes int64: can_implement refuses them with a sentence, never
 * wraps, and writes nothing. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bk_alibi_fwd_desc d = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, dt};
    int64_t shape[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX}, hs[1] = {INT32_MAX};
    float buf[16], out[16];
    bkt_fill(buf, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_alibi_fwd_plan fp;
    bk_alibi_bwd_plan bp;
    if (bkt_expect_status(bk_alibi_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS,
                          "alibi_fwd overflow select")) {
        bk_alibi_fwd_args a = {bkt_view_huge(buf, dt, 4, shape), bkt_view_huge(buf, dt, 1, hs),
                               bkt_view_huge(out, dt, 4, shape)};
        bkt_expect_overflow(bk_alibi_fwd_can_implement(&fp, &a), "alibi_fwd", "alibi_fwd 2^124 scores");
        bkt_expect_overflow(bk_alibi_fwd_run(&fp, NULL, (bk_workspace){0}, &a), "alibi_fwd", "alibi_fwd run 2^124");
        bkt_check(bk_alibi_fwd_workspace_size(&fp) == 0, "alibi_fwd overflow workspace", "not 0");
    }
    if (bkt_expect_status(bk_alibi_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &bp), BK_STATUS_SUCCESS,
                          "alibi_bwd overflow select")) {
        bk_tensor ds = bkt_view_huge(out, dt, 1, hs);
        bk_alibi_bwd_args a = {bkt_view_huge(buf, dt, 4, shape), NULL, &ds};
        bkt_expect_overflow(bk_alibi_bwd_run(&bp, NULL, (bk_workspace){0}, &a), "alibi_bwd", "alibi_bwd 2^124 dy");
        bkt_check(bk_alibi_bwd_workspace_size(&bp) == 0, "alibi_bwd overflow workspace", "not 0 on the CPU");
    }
    /* a reach past int64 through a stride, with a small shape */
    int64_t small[4] = {2, 1, 1, 2};
    bk_alibi_fwd_desc ds = {2, 1, 1, 2, dt};
    if (bkt_expect_status(bk_alibi_fwd_select(&ds, bk_target_cpu(), BK_PREFER_FASTEST, &fp), BK_STATUS_SUCCESS,
                          "alibi_fwd small select")) {
        int64_t one[1] = {1};
        bk_alibi_fwd_args a = {bkt_view(buf, dt, 4, small), bkt_view(buf, dt, 1, one), bkt_view(out, dt, 4, small)};
        a.y.strides[0] = INT64_MAX;
        a.y.capacity = 0;
        bkt_expect_overflow(bk_alibi_fwd_run(&fp, NULL, (bk_workspace){0}, &a), "alibi_fwd",
                            "alibi_fwd y stride INT64_MAX");
    }
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "alibi overflow", "output written on failure");
    bkt_free(out0);
}

int main(void)
{
    bkt_init("test_alibi");
    bk_target targets[2] = {bk_target_cpu()};
    int ntargets = 1 + bkt_cuda_target("alibi cuda", &targets[1]);
    for (int g = 0; g < ntargets; g++)
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
            for (size_t s = 0; s < sizeof k_shapes / sizeof k_shapes[0]; s++) {
                test_forward(targets[g], k_dtypes[t], k_shapes[s], false, false);
                test_forward(targets[g], k_dtypes[t], k_shapes[s], true, false);
                test_forward(targets[g], k_dtypes[t], k_shapes[s], false, true);
                test_backward(targets[g], k_dtypes[t], k_shapes[s], true, true);
                test_backward(targets[g], k_dtypes[t], k_shapes[s], false, true);
                test_backward(targets[g], k_dtypes[t], k_shapes[s], true, false);
            }
    if (ntargets == 2) { /* a problem large enough for many partial blocks per head */
        shape4 big = {3, 5, 257, 301};
        test_forward(targets[1], BK_DTYPE_BF16, big, true, false);
        test_backward(targets[1], BK_DTYPE_F32, big, true, true);
        test_backward(targets[1], BK_DTYPE_BF16, big, false, true);
    }
    test_finite_differences();
    test_slopes();
    test_bad_inputs();
    test_empty_huge();
    test_overflow();
    return bkt_finish();
}
