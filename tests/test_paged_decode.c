/* test_paged_decode.c - paged_decode against a naive f64 reference that gathers each
 * request's K/V through its own page arithmetic and materialises the scores; GQA and
 * MHA, page sizes 1/5/16/64, shuffled page ids, padded q/o/lse views, lse absent,
 * never-read pool slots poisoned with NaN, R query rows per request (causal among
 * themselves; rows and requests that see no key: o = 0, lse = -inf), bad inputs (exact
 * status, outputs untouched), determinism (rerun with 1 thread and with all threads;
 * on the GPU some shapes rerun many times, each compared byte for byte with the first
 * run), and on the GPU a CUDA graph captured once and replayed over new page tables.
 * Kernel choice (test_select, and every CUDA case): f16/bf16 with R x group > 4 (query
 * row, q head) pairs per kv head take the tensor-core kernel (precision.math
 * F16_BF16_TENSOR), the rest (f32, fewer pairs, BK_PREFER_REFERENCE) the CUDA-core one
 * (F32). Tolerance on CUDA: slack 2 (flash-attn's rule, at most 2x the error of a
 * same-precision result), which also covers the tensor-core kernel's P rounded to 16 bits
 * before P V (as test_sdpa_fwd.c's k_mma_slack). */
#include "bk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef BK_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "bk_paged_test.h"

/* ------------------------------------------------------------- correctness -- */

typedef struct decode_case {
    bk_dtype dt;
    int32_t head_dim, q_heads, kv_heads, page_size;
    bool padded, with_lse;
    int32_t kv_splits;
    /* optional (GPU cases): nb requests of lengths lens[], spare pages in the pool */
    int32_t nb;
    int64_t lens[MAX_BATCH];
    int32_t spare_pages;
    /* reruns compared byte for byte with the first run: 0 means 2 (one thread, then all) */
    int32_t reruns;
    /* desc.q_rows_per_request (0: one row), and for one row whether q / o / lse carry
     * the R axis anyway ([batch, 1, q_heads, head_dim]) */
    int32_t rows;
    bool rank4;
} decode_case;

/* Keys query row r of R sees in a request of kv_len keys: [0, kv_len - R + 1 + r). */
static int64_t row_keys(int64_t kv_len, int32_t R, int32_t r)
{
    int64_t n = kv_len - R + 1 + r;
    return n > 0 ? n : 0;
}

/* q / o [B, (R,) Hq, D] and lse [B, (R,) Hq]: the R axis when with_r; their ranks. */
static void decode_shapes(int64_t B, int64_t R, int64_t Hq, int64_t D, bool with_r, int64_t qshape[4],
                          int64_t lshape[3], int32_t *qrank, int32_t *lrank)
{
    const int64_t q[4] = {B, R, Hq, D}, q3[4] = {B, Hq, D, 0}, l[3] = {B, R, Hq}, l3[3] = {B, Hq, 0};
    memcpy(qshape, with_r ? q : q3, sizeof q);
    memcpy(lshape, with_r ? l : l3, sizeof l);
    *qrank = with_r ? 4 : 3;
    *lrank = with_r ? 3 : 2;
}

/* The f64 reference of every query row of tq ([B, R, Hq, D], or [B, Hq, D] when R is
 * omitted), row-major over [B, R, Hq]: *ref_o ([.., D]) and *ref_l, malloc'd. */
static void decode_reference(const cache *c, const bk_tensor *tq, int32_t B, int32_t R, int32_t Hq, double scale,
                             double **ref_o, double **ref_l)
{
    const bool with_r = tq->rank == 4;
    const int32_t D = c->head_dim, group = Hq / c->kv_heads;
    const int64_t nrows = (int64_t)B * R * Hq;
    double *o = malloc((size_t)nrows * D * sizeof(double)), *l = malloc((size_t)nrows * sizeof(double));
    double qrow[256];
    for (int32_t b = 0; b < B; b++)
        for (int32_t r = 0; r < R; r++)
            for (int32_t h = 0; h < Hq; h++) {
                for (int32_t d = 0; d < D; d++)
                    qrow[d] = with_r ? bkt_at(tq, (int64_t[]){b, r, h, d}) : bkt_at(tq, (int64_t[]){b, h, d});
                const int64_t row = ((int64_t)b * R + r) * Hq + h;
                ref_row(c, b, h / group, qrow, row_keys(c->kv_len[b], R, r), scale, o + row * D, l + row);
            }
    *ref_o = o;
    *ref_l = l;
}

/* Runs the plan on its target: on CUDA every buffer travels through bkt_dev (a
 * non-default stream) with a device workspace of workspace_size bytes. */
static bk_status decode_run(const bk_paged_decode_plan *plan, const bk_paged_decode_args *host, const cache *c,
                            size_t q_bytes, size_t o_bytes, size_t l_bytes)
{
    bk_paged_decode_args a = *host;
    bk_tensor lse = host->lse ? *host->lse : (bk_tensor){0};
    size_t pool = (size_t)c->num_pages * c->kv_heads * c->page_size * c->head_dim * bk_dtype_size(c->dt);
    size_t ws_bytes = bk_paged_decode_workspace_size(plan);
    void *ws_host = ws_bytes ? malloc(ws_bytes) : NULL;
    bkt_dev dev = bkt_dev_begin(plan->info.target);
    a.q.data = bkt_dev_in(&dev, a.q.data, q_bytes);
    a.kv.k_pages.data = bkt_dev_in(&dev, a.kv.k_pages.data, pool);
    a.kv.v_pages.data = bkt_dev_in(&dev, a.kv.v_pages.data, pool);
    a.kv.kv_indices.data = bkt_dev_in(&dev, a.kv.kv_indices.data, (size_t)c->n_indices * 4);
    a.kv.kv_indptr.data = bkt_dev_in(&dev, a.kv.kv_indptr.data, (size_t)(c->batch + 1) * 4);
    a.kv.last_page_len.data = bkt_dev_in(&dev, a.kv.last_page_len.data, (size_t)c->batch * 4);
    a.o.data = bkt_dev_out(&dev, a.o.data, o_bytes);
    if (host->lse) {
        lse.data = bkt_dev_out(&dev, lse.data, l_bytes);
        a.lse = &lse;
    }
    bk_workspace ws = {ws_bytes ? bkt_dev_in(&dev, ws_host, ws_bytes) : NULL, ws_bytes};
    /* bkt_dev_in waits for its upload (tests/bk_test.c): without that wait the workspace's
     * host garbage could land behind the split-KV partials. On the H100 with 4 processes
     * at once, reruns of the f16 page-1 kv_splits case below then differed in half or
     * more of 2400 tries for each of four kernels (the block-barrier one, the earlier
     * per-warp one, that one with block barriers, and this file's), and in none with the
     * wait. */
    bk_status st = bk_paged_decode_run(plan, bkt_dev_stream(&dev), ws, &a);
    bool ok = bkt_dev_end(&dev);
    free(ws_host);
    return ok ? st : BK_STATUS_DEVICE_ERROR;
}

/* A row that sees no key has o exactly 0 (its lse -inf is compared exactly by
 * bkt_check_close): o is [B, R, Hq, D], or [B, Hq, D] when R = 1. */
static bool empty_rows_zero(const char *what, const bk_tensor *o, const int64_t *kv_len, int32_t R)
{
    const bool with_r = o->rank == 4;
    const int64_t B = o->shape[0], Hq = o->shape[with_r ? 2 : 1], D = o->shape[with_r ? 3 : 2];
    for (int64_t b = 0; b < B; b++)
        for (int32_t r = 0; r < R; r++)
            for (int64_t h = 0; h < Hq && row_keys(kv_len[b], R, r) == 0; h++)
                for (int64_t d = 0; d < D; d++) {
                    double v = with_r ? bkt_at(o, (int64_t[]){b, r, h, d}) : bkt_at(o, (int64_t[]){b, h, d});
                    if (v != 0.0)
                        return bkt_check(false, what, "o[%lld,%d,%lld,%lld] of a row that sees no key is %g, "
                                         "expected 0", (long long)b, (int)r, (long long)h, (long long)d, v);
                }
    return true;
}

static void test_decode(bk_target target, decode_case tc)
{
    static const int64_t default_lens[4] = {1, 7, 33, 130};
    const int64_t *kv_lens = tc.nb ? tc.lens : default_lens;
    const int32_t B = tc.nb ? tc.nb : 4, D = tc.head_dim, Hq = tc.q_heads, Hkv = tc.kv_heads;
    const int32_t R = tc.rows > 1 ? tc.rows : 1;
    const bool gpu = target.kind == BK_TARGET_CUDA, with_r = R > 1 || tc.rank4;
    const bk_dtype dt = tc.dt;
    char what[200];
    snprintf(what, sizeof what, "paged_decode %s %s D=%d Hq=%d Hkv=%d page=%d B=%d R=%d kv_len[last]=%lld%s%s%s%s",
             gpu ? "cuda" : "cpu", bk_dtype_name(dt), (int)D, (int)Hq, (int)Hkv, (int)tc.page_size, (int)B,
             (int)tc.rows, (long long)kv_lens[B - 1], tc.padded ? " strided" : "", tc.with_lse ? " lse" : "",
             tc.kv_splits ? " kv_splits" : "", tc.rank4 ? " rank4" : "");
    cache c;
    cache_make(&c, dt, B, kv_lens, Hkv, tc.page_size, D, tc.nb ? tc.spare_pages : 3, 2);

    /* q / o [B, (R,) Hq, D], lse [B, (R,) Hq]: the R axis when R > 1 or asked for */
    int64_t qshape[4], lshape[3];
    int32_t qrank, lrank;
    decode_shapes(B, R, Hq, D, with_r, qshape, lshape, &qrank, &lrank);
    int64_t pad = tc.padded ? 3 : 0;
    bk_tensor probe = bkt_view_padded(NULL, dt, qrank, qshape, pad),
              lprobe = bkt_view_padded(NULL, BK_DTYPE_F32, lrank, lshape, pad);
    int64_t span = bkt_view_span(&probe), lspan = bkt_view_span(&lprobe);
    void *q = bkt_alloc(dt, span), *o = bkt_alloc(dt, span), *lse = bkt_alloc(BK_DTYPE_F32, lspan);
    bkt_fill(q, dt, span, -2.0, 2.0);
    bkt_poison(o, dt, span);
    bkt_poison(lse, BK_DTYPE_F32, lspan);
    void *o_before = bkt_snapshot(o, (size_t)span * bk_dtype_size(dt));
    void *l_before = bkt_snapshot(lse, (size_t)lspan * sizeof(float));
    bk_tensor tq = bkt_view_padded(q, dt, qrank, qshape, pad), to = bkt_view_padded(o, dt, qrank, qshape, pad);
    bk_tensor tl = bkt_view_padded(lse, BK_DTYPE_F32, lrank, lshape, pad);

    /* the reference, row-major over [B, R, Hq, D] (the views' element order either way) */
    double *ref_o, *ref_l;
    decode_reference(&c, &tq, B, R, Hq, 1.0 / sqrt((double)D), &ref_o, &ref_l);

    bk_paged_decode_desc desc = {B, Hq, 1.0 / sqrt((double)D), tc.kv_splits, cache_desc(&c), tc.rows};
    bk_paged_decode_plan plan;
    bk_status st = bk_paged_decode_select(&desc, target, BK_PREFER_FASTEST, &plan);
    const size_t q_bytes = (size_t)span * bk_dtype_size(dt), l_bytes = (size_t)lspan * sizeof(float);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
        bkt_check(plan.info.precision.deterministic && (gpu || bk_paged_decode_workspace_size(&plan) == 0), what,
                  "plan is not deterministic or needs workspace");
        char sku[96];
        bk_sku_name(&plan.info.sku, sku, sizeof sku);
        char want[96];
        snprintf(want, sizeof want, "attention/paged_decode/%s/%s", bk_dtype_name(dt),
                 gpu ? "sm80/bespoke" : "cpu/reference");
        bkt_check(strcmp(sku, want) == 0, what, "sku %s, expected %s", sku, want);
        /* CUDA: 16-bit cases with > 4 pairs per kv head reach the tensor-core kernel */
        const bool want_tc = gpu && dt != BK_DTYPE_F32 && R * (Hq / Hkv) > 4;
        const bk_math_precision want_math = want_tc ? BK_MATH_F16_BF16_TENSOR : gpu ? BK_MATH_F32 : BK_MATH_F64;
        bkt_check(plan.info.precision.math == want_math, what, "precision.math %d, expected %d (the %s kernel)",
                  (int)plan.info.precision.math, (int)want_math, want_tc ? "tensor-core" : gpu ? "CUDA-core" : "CPU");
        bk_paged_decode_args args = {tq, cache_tensors(&c), to, tc.with_lse ? &tl : NULL};
        st = decode_run(&plan, &args, &c, q_bytes, q_bytes, l_bytes);
        /* CUDA: f32 math on rounded inputs, one rounding at the end; the f16/bf16 slack
         * of 2 is flash-attn's rule (at most 2x the error of a same-precision result) */
        const double slack = gpu ? 2.0 : 1.0;
        if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
            bkt_check_close(what, &to, ref_o, slack);
            if (tc.with_lse)
                bkt_check_close(what, &tl, ref_l, slack);
            else
                bkt_check(bkt_same_bytes(l_before, lse, (size_t)lspan * sizeof(float)), what,
                          "lse written though not requested");
            empty_rows_zero(what, &to, c.kv_len, R);
            bkt_check(bkt_untouched_outside(&to, o_before, span), what,
                      "o written outside its view");
            if (tc.with_lse)
                bkt_check(bkt_untouched_outside(&tl, l_before, lspan), what,
                          "lse written outside its view");
            /* determinism: rerun on one thread, then on all (more times when asked), into
             * poisoned outputs, each compared byte for byte with the first run */
            void *first = bkt_snapshot(o, (size_t)span * bk_dtype_size(dt));
            void *first_l = bkt_snapshot(lse, (size_t)lspan * sizeof(float));
            const int reruns = tc.reruns > 2 ? tc.reruns : 2;
            for (int rerun = 0; rerun < reruns; rerun++) {
#ifdef _OPENMP
                int threads = omp_get_max_threads();
                if (rerun == 0)
                    omp_set_num_threads(1);
#endif
                bkt_poison(o, dt, span);
                bkt_poison(lse, BK_DTYPE_F32, lspan);
                st = decode_run(&plan, &args, &c, q_bytes, q_bytes, l_bytes);
#ifdef _OPENMP
                omp_set_num_threads(threads);
#endif
                bkt_check(st == BK_STATUS_SUCCESS && bkt_same_bytes(first, o, (size_t)span * bk_dtype_size(dt)) &&
                              bkt_same_bytes(first_l, lse, (size_t)lspan * sizeof(float)),
                          what, "rerun %d is not bit-identical", rerun);
            }
            bkt_free(first);
            bkt_free(first_l);
        }
    }
    free(ref_o);
    free(ref_l);
    bkt_free(o_before);
    bkt_free(l_before);
    bkt_free(q);
    bkt_free(o);
    bkt_free(lse);
    cache_free(&c);
}

/* ------------------------------------------------------------- bad inputs -- */

typedef struct bad_env {
    bk_paged_decode_plan plan;
    bk_paged_decode_args good;
    void *o, *lse, *o0, *lse0;
    size_t o_bytes, lse_bytes;
} bad_env;

static void expect_run(bad_env *e, const bk_paged_decode_args *args, bk_status want, const char *what)
{
    bk_status st = bk_paged_decode_can_implement(&e->plan, args);
    bkt_expect_status(st, want, what);
    st = bk_paged_decode_run(&e->plan, NULL, (bk_workspace){0}, args);
    bkt_expect_status(st, want, what);
    bkt_check(bk_last_error()[0] != '\0', what, "no error sentence");
    bkt_check(bkt_same_bytes(e->o0, e->o, e->o_bytes) && bkt_same_bytes(e->lse0, e->lse, e->lse_bytes), what,
              "output written on failure");
}

static void expect_select(const bk_paged_decode_desc *d, bk_status want, const char *what, const char *text)
{
    bk_paged_decode_plan plan;
    bk_status st = bk_paged_decode_select(d, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
    bkt_expect_status(st, want, what);
    bkt_check(bk_last_error()[0] != '\0', what, "no error sentence");
    if (text)
        bkt_check(strstr(bk_last_error(), text) != NULL, what, "error \"%s\" lacks \"%s\"", bk_last_error(), text);
}

static void test_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_F16;
    const int32_t B = 3, Hq = 4, Hkv = 2, D = 64;
    static const int64_t kv_lens[3] = {5, 1, 9};
    cache c;
    cache_make(&c, dt, B, kv_lens, Hkv, 4, D, 1, 0);
    bk_paged_decode_desc d = {B, Hq, 0.125, 0, cache_desc(&c), 0};

    /* select */
    bk_paged_decode_desc bad = d;
    bad.paged_kv.head_dim = 96;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_decode head_dim 96", "head_dim is 96");
    bad = d;
    bad.q_heads = 3;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode q_heads % kv_heads",
                  "paged_decode: desc.q_heads is 3, expected a multiple of kv_heads = 2");
    bad = d;
    bad.batch = 0;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode batch 0", "desc.batch is 0");
    bad = d;
    bad.q_heads = 0;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode q_heads 0", NULL);
    bad = d;
    bad.scale = NAN;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode NaN scale", "desc.scale");
    bad = d;
    bad.scale = INFINITY;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode inf scale", NULL);
    bad = d;
    bad.kv_splits = -1;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode kv_splits -1", "kv_splits");
    bad = d;
    bad.paged_kv.dtype = BK_DTYPE_F64;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_decode f64", NULL);
    bad = d;
    bad.paged_kv.dtype = BK_DTYPE_I32;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_decode i32", NULL);
    bad = d;
    bad.paged_kv.page_size = 0;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode page_size 0", NULL);
    bad = d;
    bad.paged_kv.kv_heads = 0;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode kv_heads 0", NULL);
    bad = d;
    bad.paged_kv.num_pages = 0;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode num_pages 0", NULL);
    bad = d;
    bad.q_rows_per_request = -1;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_decode q_rows_per_request -1",
                  "desc.q_rows_per_request is -1");
    bad = d;
    bad.q_rows_per_request = BK_PAGED_DECODE_MAX_ROWS + 1;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_decode q_rows_per_request 9",
                  "paged_decode: desc.q_rows_per_request is 9, expected at most 8");
    bad = d;
    bad.q_rows_per_request = INT32_MAX;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_decode q_rows_per_request INT32_MAX", NULL);
    expect_select(NULL, BK_STATUS_INVALID_PROBLEM, "paged_decode NULL desc", NULL);
    bk_paged_decode_plan scratch;
    bkt_expect_status(bk_paged_decode_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, NULL),
                      BK_STATUS_INVALID_PROBLEM, "paged_decode NULL plan");
    bkt_expect_status(bk_paged_decode_select(&d, bk_target_cpu(), (bk_preference)7, &scratch),
                      BK_STATUS_INVALID_PROBLEM, "paged_decode bad preference");
    bkt_expect_status(bk_paged_decode_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &scratch),
                      BK_STATUS_UNSUPPORTED, "paged_decode on sm_75 (every CUDA kernel needs sm_80)");

    /* run */
    bad_env e;
    if (!bkt_expect_status(bk_paged_decode_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &e.plan),
                           BK_STATUS_SUCCESS, "paged_decode bad-input select")) {
        cache_free(&c);
        return;
    }
    int64_t qshape[3] = {B, Hq, D}, lshape[2] = {B, Hq};
    int64_t n = (int64_t)B * Hq * D;
    void *q = bkt_alloc(dt, n);
    bkt_fill(q, dt, n, -1, 1);
    e.o = bkt_alloc(dt, n);
    e.lse = bkt_alloc(BK_DTYPE_F32, B * Hq);
    bkt_poison(e.o, dt, n);
    bkt_poison(e.lse, BK_DTYPE_F32, B * Hq);
    e.o_bytes = (size_t)n * 2;
    e.lse_bytes = (size_t)B * Hq * 4;
    e.o0 = bkt_snapshot(e.o, e.o_bytes);
    e.lse0 = bkt_snapshot(e.lse, e.lse_bytes);
    bk_tensor tl = bkt_view(e.lse, BK_DTYPE_F32, 2, lshape);
    e.good = (bk_paged_decode_args){bkt_view(q, dt, 3, qshape), cache_tensors(&c), bkt_view(e.o, dt, 3, qshape), &tl};
    bk_paged_decode_args a;
    bk_tensor l2;

    a = e.good;
    a.q.shape[1] = 5;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode q.shape[1]");
    bkt_check(strstr(bk_last_error(), "paged_decode: q.shape[1] is 5, expected q_heads = 4") != NULL,
              "paged_decode q.shape message", "got \"%s\"", bk_last_error());
    a = e.good;
    a.q.dtype = BK_DTYPE_BF16;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode q dtype");
    a = e.good;
    a.o.dtype = BK_DTYPE_F32;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode o dtype");
    a = e.good;
    a.o.rank = 2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode o rank");
    a = e.good;
    a.q.data = NULL;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode q NULL data");
    a = e.good;
    a.o.capacity = n - 1;
    expect_run(&e, &a, BK_STATUS_BUFFER_TOO_SMALL, "paged_decode o capacity");
    a = e.good;
    a.o.strides[1] = 0;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode o broadcast stride");
    a = e.good;
    a.o.strides[0] = D; /* rows overlap heads */
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode o overlapping");
    a = e.good;
    a.q.strides[2] = 2;
    a.q.strides[1] = 2 * D;
    a.q.strides[0] = 2 * D * Hq;
    a.q.capacity = 0;
    expect_run(&e, &a, BK_STATUS_UNSUPPORTED, "paged_decode q inner stride 2");
    a = e.good;
    l2 = tl;
    l2.shape[1] = 2;
    a.lse = &l2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode lse shape");
    a = e.good;
    l2 = tl;
    l2.dtype = BK_DTYPE_F16;
    a.lse = &l2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode lse dtype");
    a = e.good;
    a.kv.k_pages.shape[2] = 5;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode k_pages shape");
    a = e.good;
    a.kv.v_pages.dtype = BK_DTYPE_BF16;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode v_pages dtype");
    a = e.good;
    a.kv.k_pages.strides[3] = 2;
    expect_run(&e, &a, BK_STATUS_UNSUPPORTED, "paged_decode k_pages not contiguous");
    a = e.good;
    a.kv.kv_indptr.shape[0] = B;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode kv_indptr shape");
    a = e.good;
    a.kv.last_page_len.dtype = BK_DTYPE_I64;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode last_page_len dtype");
    a = e.good;
    a.kv.kv_indices.rank = 2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode kv_indices rank");

    /* index values (paged.h's table); each is restored after its case */
    int32_t keep;
    keep = c.indptr[0];
    c.indptr[0] = 1;
    expect_run(&e, &e.good, BK_STATUS_INVALID_PROBLEM, "paged_decode kv_indptr[0] = 1");
    c.indptr[0] = keep;
    keep = c.indptr[2];
    c.indptr[2] = c.indptr[1] - 1;
    expect_run(&e, &e.good, BK_STATUS_INVALID_PROBLEM, "paged_decode kv_indptr decreasing");
    c.indptr[2] = keep;
    keep = c.last[1];
    c.last[1] = 0;
    expect_run(&e, &e.good, BK_STATUS_INVALID_PROBLEM, "paged_decode last_page_len 0");
    c.last[1] = 5;
    expect_run(&e, &e.good, BK_STATUS_INVALID_PROBLEM, "paged_decode last_page_len > page_size");
    c.last[1] = keep;
    keep = c.indptr[B];
    c.indptr[B] = c.n_indices + 1;
    expect_run(&e, &e.good, BK_STATUS_OUT_OF_RANGE, "paged_decode kv_indptr[batch] beyond kv_indices");
    c.indptr[B] = keep;
    keep = c.indices[2];
    c.indices[2] = -1;
    expect_run(&e, &e.good, BK_STATUS_OUT_OF_RANGE, "paged_decode page id -1");
    c.indices[2] = c.num_pages;
    expect_run(&e, &e.good, BK_STATUS_OUT_OF_RANGE, "paged_decode page id = num_pages");
    bkt_check(strstr(bk_last_error(), "kv_indices[2]") != NULL, "paged_decode page id message", "got \"%s\"",
              bk_last_error());
    c.indices[2] = keep;

    /* plans and pointers */
    bk_paged_decode_plan zero;
    memset(&zero, 0, sizeof zero);
    bkt_expect_status(bk_paged_decode_run(&zero, NULL, (bk_workspace){0}, &e.good), BK_STATUS_INVALID_PROBLEM,
                      "paged_decode plan not from select");
    bkt_expect_status(bk_paged_decode_run(NULL, NULL, (bk_workspace){0}, &e.good), BK_STATUS_INVALID_PROBLEM,
                      "paged_decode NULL plan");
    bkt_expect_status(bk_paged_decode_run(&e.plan, NULL, (bk_workspace){0}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "paged_decode NULL args");
    bkt_check(bkt_same_bytes(e.o0, e.o, e.o_bytes) && bkt_same_bytes(e.lse0, e.lse, e.lse_bytes),
              "paged_decode bad plans", "output written on failure");
    /* and the good call still works after all that */
    bkt_expect_status(bk_paged_decode_run(&e.plan, NULL, (bk_workspace){0}, &e.good), BK_STATUS_SUCCESS,
                      "paged_decode good call after bad ones");

    bkt_free(q);
    bkt_free(e.o);
    bkt_free(e.lse);
    bkt_free(e.o0);
    bkt_free(e.lse0);
    cache_free(&c);
}

/* ------------------------------------------------------------- CUDA graphs -- */

#ifdef BK_WITH_CUDA
enum { GRAPH_N = 8, GRAPH_PAGES = 1024 };

/* Device copies of `bytes` at `host`, synchronously (the kit's rule: cudaMemcpy from
 * pageable memory may return before the data lands). */
static bool graph_put(void *dev, const void *host, size_t bytes)
{
    return cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice) == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess;
}

/* Equal bytes of a device buffer and a host one. */
static bool graph_same(const void *dev, const void *host, size_t bytes)
{
    void *back = malloc(bytes ? bytes : 1);
    bool ok = cudaMemcpy(back, dev, bytes, cudaMemcpyDeviceToHost) == cudaSuccess && memcmp(back, host, bytes) == 0;
    free(back);
    return ok;
}

/* One plan for GRAPH_N requests (R rows each, bf16, D 128, Hq 8 over Hkv 2, pages of 16,
 * a pool of GRAPH_PAGES pages, kv_splits left to the heuristic so the split-KV merge is
 * in the graph), run captured ONCE into a CUDA graph on a non-default stream, then the
 * graph replayed three times; before each replay the CONTENTS of every input change: a
 * new pool and page permutation (cache_make), new kv lengths from 1 to 6000, requests
 * left unused (no page: kv_len 0, last_page_len garbage, rows o = 0 and lse = -inf), and
 * new q. Each replay is compared with the f64 reference; the padding of the strided o and
 * lse views must stay as poisoned and every input must be unchanged. */
static void test_graph_replay(bk_target target, int32_t R)
{
    const bk_dtype dt = BK_DTYPE_BF16;
    const int32_t N = GRAPH_N, Hq = 8, Hkv = 2, D = 128, PS = 16;
    /* the replays' kv lengths (0: request unused) */
    const int64_t lens[3][GRAPH_N] = {{1, 17, 4000, 300, 2, 1024, 77, 3001},
                                      {2500, 0, 33, 1, 4096, 0, 0, 0},
                                      {R > 1 ? R - 1 : 1, 6000, 15, 0, 700, 129, R, 0}};
    char what[120];
    snprintf(what, sizeof what, "paged_decode cuda graph replay R=%d", (int)R);
    const bool with_r = R > 1;
    int64_t qshape[4], lshape[3];
    int32_t qrank, lrank;
    decode_shapes(N, R, Hq, D, with_r, qshape, lshape, &qrank, &lrank);
    bk_tensor probe = bkt_view_padded(NULL, dt, qrank, qshape, 3), lprobe = bkt_view_padded(NULL, BK_DTYPE_F32, lrank,
                                                                                             lshape, 2);
    const int64_t span = bkt_view_span(&probe), lspan = bkt_view_span(&lprobe);
    const size_t q_bytes = (size_t)span * 2, l_bytes = (size_t)lspan * 4;
    const size_t pool_bytes = (size_t)GRAPH_PAGES * Hkv * PS * D * 2, idx_bytes = (size_t)GRAPH_PAGES * 4;
    bk_paged_decode_desc desc = {N, Hq, 1.0 / sqrt((double)D), 0, {GRAPH_PAGES, Hkv, PS, D, dt}, R};
    bk_paged_decode_plan plan;
    if (!bkt_expect_status(bk_paged_decode_select(&desc, target, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what))
        return;
    const size_t ws_bytes = bk_paged_decode_workspace_size(&plan);
    bkt_check(ws_bytes > 0, what, "the plan has no split-KV workspace: the merge is not in the graph");
    void *dq = NULL, *dout = NULL, *dl = NULL, *dk = NULL, *dv = NULL, *didx = NULL, *dptr = NULL, *dlast = NULL,
         *dws = NULL;
    cudaStream_t s = NULL;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    bool ok = cudaMalloc(&dq, q_bytes) == cudaSuccess && cudaMalloc(&dout, q_bytes) == cudaSuccess &&
              cudaMalloc(&dl, l_bytes) == cudaSuccess && cudaMalloc(&dk, pool_bytes) == cudaSuccess &&
              cudaMalloc(&dv, pool_bytes) == cudaSuccess && cudaMalloc(&didx, idx_bytes) == cudaSuccess &&
              cudaMalloc(&dptr, (N + 1) * 4) == cudaSuccess && cudaMalloc(&dlast, N * 4) == cudaSuccess &&
              cudaMalloc(&dws, ws_bytes ? ws_bytes : 1) == cudaSuccess &&
              cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess;
    if (!bkt_check(ok, what, "cudaMalloc / stream: %s", cudaGetErrorString(cudaGetLastError())))
        goto done;
    {
        /* the captured args: device pointers, shapes and strides fixed for every replay */
        int64_t pool[4] = {GRAPH_PAGES, Hkv, PS, D}, ni[1] = {GRAPH_PAGES}, np1[1] = {N + 1}, nb[1] = {N};
        bk_tensor tl = bkt_view_padded(dl, BK_DTYPE_F32, lrank, lshape, 2);
        bk_paged_decode_args a = {bkt_view_padded(dq, dt, qrank, qshape, 3),
                                  {bkt_view(dk, dt, 4, pool), bkt_view(dv, dt, 4, pool),
                                   bkt_view(didx, BK_DTYPE_I32, 1, ni), bkt_view(dptr, BK_DTYPE_I32, 1, np1),
                                   bkt_view(dlast, BK_DTYPE_I32, 1, nb)},
                                  bkt_view_padded(dout, dt, qrank, qshape, 3),
                                  &tl};
        ok = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess;
        bk_status st = bk_paged_decode_run(&plan, s, (bk_workspace){dws, ws_bytes}, &a);
        ok = cudaStreamEndCapture(s, &graph) == cudaSuccess && ok;
        ok = ok && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
        if (!bkt_expect_status(st, BK_STATUS_SUCCESS, what) ||
            !bkt_check(ok, what, "capture / instantiate failed: %s", cudaGetErrorString(cudaGetLastError())))
            goto done;
    }
    for (int rep = 0; rep < 3; rep++) {
        char rwhat[160];
        snprintf(rwhat, sizeof rwhat, "%s, replay %d", what, rep + 1);
        cache c;
        int32_t used = 0;
        for (int32_t b = 0; b < N; b++)
            used += (int32_t)((lens[rep][b] + PS - 1) / PS);
        cache_make(&c, dt, N, lens[rep], Hkv, PS, D, GRAPH_PAGES - used, GRAPH_PAGES - used);
        for (int32_t b = 0; b < N; b++)
            if (lens[rep][b] == 0)
                c.last[b] = -5 - b; /* a request of no page: never read */
        void *q = bkt_alloc(dt, span), *o = bkt_alloc(dt, span), *lse = bkt_alloc(BK_DTYPE_F32, lspan);
        bkt_fill(q, dt, span, -2.0, 2.0);
        bkt_poison(o, dt, span);
        bkt_poison(lse, BK_DTYPE_F32, lspan);
        void *o0 = bkt_snapshot(o, q_bytes), *l0 = bkt_snapshot(lse, l_bytes);
        ok = graph_put(dq, q, q_bytes) && graph_put(dout, o, q_bytes) && graph_put(dl, lse, l_bytes) &&
             graph_put(dk, c.k, pool_bytes) && graph_put(dv, c.v, pool_bytes) && graph_put(didx, c.indices, idx_bytes) &&
             graph_put(dptr, c.indptr, (N + 1) * 4) && graph_put(dlast, c.last, N * 4);
        ok = ok && cudaGraphLaunch(exec, s) == cudaSuccess && cudaStreamSynchronize(s) == cudaSuccess;
        ok = ok && cudaMemcpy(o, dout, q_bytes, cudaMemcpyDeviceToHost) == cudaSuccess &&
             cudaMemcpy(lse, dl, l_bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
        if (bkt_check(ok, rwhat, "upload / launch / download failed: %s", cudaGetErrorString(cudaGetLastError()))) {
            bk_tensor tq = bkt_view_padded(q, dt, qrank, qshape, 3), to = bkt_view_padded(o, dt, qrank, qshape, 3);
            bk_tensor tl = bkt_view_padded(lse, BK_DTYPE_F32, lrank, lshape, 2);
            double *ref_o, *ref_l;
            decode_reference(&c, &tq, N, R, Hq, desc.scale, &ref_o, &ref_l);
            bkt_check_close(rwhat, &to, ref_o, 2.0);
            bkt_check_close(rwhat, &tl, ref_l, 2.0);
            empty_rows_zero(rwhat, &to, c.kv_len, R);
            bkt_check(bkt_untouched_outside(&to, o0, span), rwhat, "o written outside its view");
            bkt_check(bkt_untouched_outside(&tl, l0, lspan), rwhat, "lse written outside its view");
            bkt_check(graph_same(dq, q, q_bytes) && graph_same(dk, c.k, pool_bytes) && graph_same(dv, c.v, pool_bytes) &&
                          graph_same(didx, c.indices, idx_bytes) && graph_same(dptr, c.indptr, (N + 1) * 4) &&
                          graph_same(dlast, c.last, N * 4),
                      rwhat, "an input was written");
            free(ref_o);
            free(ref_l);
        }
        bkt_free(q);
        bkt_free(o);
        bkt_free(lse);
        bkt_free(o0);
        bkt_free(l0);
        cache_free(&c);
    }
done:
    if (exec)
        cudaGraphExecDestroy(exec);
    if (graph)
        cudaGraphDestroy(graph);
    if (s)
        cudaStreamDestroy(s);
    void *bufs[9] = {dq, dout, dl, dk, dv, didx, dptr, dlast, dws};
    for (int i = 0; i < 9; i++)
        cudaFree(bufs[i]);
}
#endif

/* q / o / lse of a plan with R = 3 rows per request: the R axis is required, its extent
 * is R, and o may not repeat a position along it; a one-row plan takes either form but
 * a rank-4 view must have extent 1 there. Exact status, outputs untouched. */
static void test_bad_rows(void)
{
    const bk_dtype dt = BK_DTYPE_BF16;
    const int32_t B = 2, R = 3, Hq = 4, Hkv = 1, D = 64;
    static const int64_t kv_lens[2] = {6, 2};
    cache c;
    cache_make(&c, dt, B, kv_lens, Hkv, 4, D, 0, 0);
    bk_paged_decode_desc d = {B, Hq, 0.125, 0, cache_desc(&c), R};
    bad_env e;
    if (!bkt_expect_status(bk_paged_decode_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &e.plan),
                           BK_STATUS_SUCCESS, "paged_decode R=3 select")) {
        cache_free(&c);
        return;
    }
    int64_t qshape[4] = {B, R, Hq, D}, lshape[3] = {B, R, Hq};
    const int64_t n = (int64_t)B * R * Hq * D, nl = (int64_t)B * R * Hq;
    void *q = bkt_alloc(dt, n);
    bkt_fill(q, dt, n, -1, 1);
    e.o = bkt_alloc(dt, n);
    e.lse = bkt_alloc(BK_DTYPE_F32, nl);
    bkt_poison(e.o, dt, n);
    bkt_poison(e.lse, BK_DTYPE_F32, nl);
    e.o_bytes = (size_t)n * 2;
    e.lse_bytes = (size_t)nl * 4;
    e.o0 = bkt_snapshot(e.o, e.o_bytes);
    e.lse0 = bkt_snapshot(e.lse, e.lse_bytes);
    bk_tensor tl = bkt_view(e.lse, BK_DTYPE_F32, 3, lshape), l2;
    e.good = (bk_paged_decode_args){bkt_view(q, dt, 4, qshape), cache_tensors(&c), bkt_view(e.o, dt, 4, qshape), &tl};
    bk_paged_decode_args a;
    int64_t q3[3] = {B, Hq, D}, l2s[2] = {B, Hq};

    a = e.good;
    a.q = bkt_view(q, dt, 3, q3);
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 q without the R axis");
    bkt_check(strstr(bk_last_error(), "q.rank is 3, expected 4") != NULL, "paged_decode R=3 q rank message",
              "got \"%s\"", bk_last_error());
    a = e.good;
    a.o = bkt_view(e.o, dt, 3, q3);
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 o without the R axis");
    a = e.good;
    a.q.shape[1] = 2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 q.shape[1] = 2");
    bkt_check(strstr(bk_last_error(), "paged_decode: q.shape[1] is 2, expected q_rows_per_request = 3") != NULL,
              "paged_decode R=3 q.shape message", "got \"%s\"", bk_last_error());
    a = e.good;
    a.o.shape[1] = 4;
    a.o.capacity = 0;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 o.shape[1] = 4");
    a = e.good;
    a.o.shape[2] = 2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 o.shape[2] = 2");
    a = e.good;
    a.o.strides[1] = 0; /* the three rows at one address */
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 o rows broadcast");
    a = e.good;
    a.o.strides[1] = D; /* rows overlap heads */
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 o rows overlapping heads");
    a = e.good;
    a.q.strides[1] = 0; /* an input may not broadcast either */
    expect_run(&e, &a, BK_STATUS_UNSUPPORTED, "paged_decode R=3 q rows broadcast");
    a = e.good;
    l2 = bkt_view(e.lse, BK_DTYPE_F32, 2, l2s);
    a.lse = &l2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 lse without the R axis");
    a = e.good;
    l2 = tl;
    l2.shape[1] = 1;
    a.lse = &l2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 lse.shape[1] = 1");
    a = e.good;
    a.o.capacity = n - 1;
    expect_run(&e, &a, BK_STATUS_BUFFER_TOO_SMALL, "paged_decode R=3 o capacity");
    /* the page table: a decreasing kv_indptr stays invalid, a request of no page is fine */
    int32_t keep = c.indptr[1];
    c.indptr[1] = c.indptr[2] + 1;
    expect_run(&e, &e.good, BK_STATUS_INVALID_PROBLEM, "paged_decode R=3 kv_indptr decreasing");
    c.indptr[1] = keep;
    bkt_expect_status(bk_paged_decode_run(&e.plan, NULL, (bk_workspace){0}, &e.good), BK_STATUS_SUCCESS,
                      "paged_decode R=3 good call after bad ones");

    /* one row (R = 1): a rank-4 view needs extent 1 on the R axis */
    bk_paged_decode_desc d1 = d;
    d1.q_rows_per_request = 1;
    bkt_free(e.o0);
    bkt_free(e.lse0);
    bkt_poison(e.o, dt, n);
    bkt_poison(e.lse, BK_DTYPE_F32, nl);
    e.o0 = bkt_snapshot(e.o, e.o_bytes);
    e.lse0 = bkt_snapshot(e.lse, e.lse_bytes);
    if (bkt_expect_status(bk_paged_decode_select(&d1, bk_target_cpu(), BK_PREFER_FASTEST, &e.plan),
                          BK_STATUS_SUCCESS, "paged_decode R=1 select")) {
        a = e.good;
        expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=1 rank-4 q with 3 rows");
        bkt_check(strstr(bk_last_error(), "q.shape[1] is 3, expected q_rows_per_request = 1") != NULL,
                  "paged_decode R=1 rank-4 message", "got \"%s\"", bk_last_error());
        a.q.shape[1] = a.o.shape[1] = 1;
        a.lse = NULL;
        a.q = bkt_view(q, dt, 3, q3);
        a.o.rank = 5;
        expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_decode R=1 o rank 5");
    }
    bkt_free(q);
    bkt_free(e.o);
    bkt_free(e.lse);
    bkt_free(e.o0);
    bkt_free(e.lse0);
    cache_free(&c);
}

/* Extents whose products pass int64 (issue 13): can_implement refuses the pool with a
 * sentence naming the overflow and writes nothing; a CUDA plan's split-KV workspace is
 * SIZE_MAX, never a wrapped size. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F16;
    bk_paged_decode_desc d = {1, INT32_MAX, 0.1, 0, {INT32_MAX, INT32_MAX, INT32_MAX, 64, dt}, 0};
    int64_t sq[3] = {1, INT32_MAX, 64};
    uint16_t in[16], out[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_paged_decode_plan plan;
    if (bkt_expect_status(bk_paged_decode_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "paged_decode overflow select")) {
        bk_paged_decode_args a = {bkt_view_huge(in, dt, 3, sq), bkt_paged_kv_huge(&d.paged_kv, 1, in),
                                  bkt_view_huge(out, dt, 3, sq), NULL};
        bkt_expect_overflow(bk_paged_decode_can_implement(&plan, &a), "paged_decode", "paged_decode 2^99 pool");
        bkt_expect_overflow(bk_paged_decode_run(&plan, NULL, (bk_workspace){0}, &a), "paged_decode",
                            "paged_decode run 2^99 pool");
        bkt_check(bk_paged_decode_workspace_size(&plan) == 0, "paged_decode CPU workspace", "not 0");
    }
    if (bk_has_cuda()) {
        bk_paged_decode_desc w = {INT32_MAX, INT32_MAX, 0.1, INT32_MAX, {8, 1, 16, 256, dt}, BK_PAGED_DECODE_MAX_ROWS};
        if (bkt_expect_status(bk_paged_decode_select(&w, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                              BK_STATUS_SUCCESS, "paged_decode CUDA overflow select"))
            bkt_check(bk_paged_decode_workspace_size(&plan) == SIZE_MAX, "paged_decode CUDA split workspace", "%zu",
                      bk_paged_decode_workspace_size(&plan));
    }
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "paged_decode overflow", "o written on failure");
    bkt_free(out0);
}

/* What select picks on CUDA (plans are values: no device needed): the tensor-core kernel
 * (precision.math F16_BF16_TENSOR) for f16/bf16 with R x group > 4 pairs per kv head, on
 * sm_80 and sm_90 and under BK_PREFER_DETERMINISTIC; the CUDA-core kernel (F32) for f32,
 * fewer pairs and BK_PREFER_REFERENCE. Both SKUs are sm80/bespoke and deterministic, and
 * both plans size the split-KV workspace the one way (paged.h). */
static void test_select(void)
{
    if (!bk_has_cuda())
        return;
    const bk_target h100 = bk_target_cuda_cc(0, 9, 0), a100 = bk_target_cuda_cc(0, 8, 0);
    const struct {
        const char *name;
        bk_dtype dt;
        int32_t q_heads, kv_heads, rows, head_dim;
        bk_target target;
        bk_preference pref;
        bool tc;
    } cases[] = {
        {"bf16 Hq32 Hkv8 R1 D128 (4 pairs)", BK_DTYPE_BF16, 32, 8, 1, 128, h100, BK_PREFER_FASTEST, false},
        {"bf16 Hq32 Hkv8 R2 D128", BK_DTYPE_BF16, 32, 8, 2, 128, h100, BK_PREFER_FASTEST, true},
        {"f16 Hq16 Hkv2 R1 D64 sm_80", BK_DTYPE_F16, 16, 2, 0, 64, a100, BK_PREFER_FASTEST, true},
        {"f16 Hq8 Hkv2 R1 D64 sm_80 (4 pairs)", BK_DTYPE_F16, 8, 2, 0, 64, a100, BK_PREFER_FASTEST, false},
        {"bf16 Hq16 Hkv2 R8 D256", BK_DTYPE_BF16, 16, 2, 8, 256, h100, BK_PREFER_FASTEST, true},
        {"f16 Hq4 Hkv2 R2 (4 pairs)", BK_DTYPE_F16, 4, 2, 2, 128, h100, BK_PREFER_FASTEST, false},
        {"f16 Hq6 Hkv2 R2 (6 pairs)", BK_DTYPE_F16, 6, 2, 2, 128, h100, BK_PREFER_FASTEST, true},
        {"bf16 Hq4 Hkv4 R5 (MHA, 5 pairs)", BK_DTYPE_BF16, 4, 4, 5, 64, h100, BK_PREFER_FASTEST, true},
        {"bf16 Hq4 Hkv2 R1 (2 pairs)", BK_DTYPE_BF16, 4, 2, 1, 128, h100, BK_PREFER_FASTEST, false},
        {"f16 Hq6 Hkv2 R1 (3 pairs)", BK_DTYPE_F16, 6, 2, 0, 128, h100, BK_PREFER_FASTEST, false},
        {"bf16 Hq4 Hkv4 R3 (MHA, 3 pairs)", BK_DTYPE_BF16, 4, 4, 3, 256, a100, BK_PREFER_FASTEST, false},
        {"f32 Hq32 Hkv8 R8", BK_DTYPE_F32, 32, 8, 8, 128, h100, BK_PREFER_FASTEST, false},
        {"bf16 Hq32 Hkv8 R4 deterministic", BK_DTYPE_BF16, 32, 8, 4, 128, h100, BK_PREFER_DETERMINISTIC, true},
        {"bf16 Hq32 Hkv8 reference", BK_DTYPE_BF16, 32, 8, 1, 128, h100, BK_PREFER_REFERENCE, false},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char what[160];
        snprintf(what, sizeof what, "paged_decode select %s", cases[i].name);
        const int32_t B = 3, S = 5, R = cases[i].rows > 1 ? cases[i].rows : 1, Hq = cases[i].q_heads;
        const int32_t D = cases[i].head_dim;
        bk_paged_decode_desc d = {B, Hq, 0.1, S, {4096, cases[i].kv_heads, 16, D, cases[i].dt}, cases[i].rows};
        bk_paged_decode_plan plan;
        if (!bkt_expect_status(bk_paged_decode_select(&d, cases[i].target, cases[i].pref, &plan), BK_STATUS_SUCCESS,
                               what))
            continue;
        char sku[96], want[96];
        bk_sku_name(&plan.info.sku, sku, sizeof sku);
        snprintf(want, sizeof want, "attention/paged_decode/%s/sm80/bespoke", bk_dtype_name(cases[i].dt));
        bkt_check(strcmp(sku, want) == 0, what, "sku %s, expected %s", sku, want);
        const bk_math_precision math = cases[i].tc ? BK_MATH_F16_BF16_TENSOR : BK_MATH_F32;
        bkt_check(plan.info.precision.math == math && plan.info.precision.accumulator == BK_DTYPE_F32 &&
                      plan.info.precision.deterministic && plan.info.precision.bit_stable,
                  what, "precision {math %d, accumulator %s, deterministic %d}, expected math %d (the %s kernel)",
                  (int)plan.info.precision.math, bk_dtype_name(plan.info.precision.accumulator),
                  (int)plan.info.precision.deterministic, (int)math, cases[i].tc ? "tensor-core" : "CUDA-core");
        /* kv_splits 5: partial o [B, R, Hq, 5, D] then partial lse [B, R, Hq, 5], f32, each
           piece on 256 bytes */
        const size_t parts = (size_t)B * R * Hq * S, po = parts * D * 4;
        const size_t ws = ((po + 255) / 256) * 256 + parts * 4;
        bkt_check(bk_paged_decode_workspace_size(&plan) == ws, what, "workspace %zu bytes with 5 splits, expected %zu",
                  bk_paged_decode_workspace_size(&plan), ws);
        /* the heuristic splits one request over a large pool (65536 keys) */
        d.kv_splits = 0;
        d.batch = 1;
        if (bkt_expect_status(bk_paged_decode_select(&d, cases[i].target, cases[i].pref, &plan), BK_STATUS_SUCCESS,
                              what))
            bkt_check(bk_paged_decode_workspace_size(&plan) > 0, what, "no split-KV workspace from the heuristic");
    }
}

int main(void)
{
    bkt_init("test_paged_decode");
    static const bk_dtype dts[3] = {BK_DTYPE_F16, BK_DTYPE_BF16, BK_DTYPE_F32};
    static const int32_t dims[2] = {64, 128}, pages[3] = {1, 5, 16};
    static const int32_t heads[2][2] = {{8, 2}, {4, 4}};
    bk_target targets[2] = {bk_target_cpu()};
    int ntargets = 1 + bkt_cuda_target("paged_decode cuda", &targets[1]);
    for (int gi = 0; gi < ntargets; gi++) {
        int k = 0;
        for (int t = 0; t < 3; t++)
            for (int di = 0; di < 2; di++)
                for (int hi = 0; hi < 2; hi++)
                    for (int pi = 0; pi < 3; pi++, k++) {
                        decode_case tc = {dts[t], dims[di], heads[hi][0], heads[hi][1], pages[pi], k % 2 == 1,
                                          k % 3 != 2, k % 5 == 0 ? 4 : 0, 0, {0}, 0, 0, 0, false};
                        test_decode(targets[gi], tc);
                    }
        test_decode(targets[gi], (decode_case){BK_DTYPE_BF16, 256, 6, 3, 5, true, true, 0, 0, {0}, 0, 0, 0, false});
        test_decode(targets[gi], (decode_case){BK_DTYPE_F32, 64, 7, 1, 16, false, true, 0, 0, {0}, 0, 0, 0, false}); /* MQA */
        /* R query rows per request (causal among themselves): R 1 with the R axis, 2, 3,
         * 8; GQA groups 1, 4, 8; pages of 1, 16, 64 tokens; requests of no page, of 1
         * key, of R - 1 keys (row 0 sees none), odd lengths */
        static const int32_t rows[4] = {1, 2, 3, 8}, rpages[3] = {1, 16, 64};
        static const int32_t rheads[3][2] = {{4, 4}, {8, 2}, {8, 1}};
        k = 0;
        for (int ri = 0; ri < 4; ri++)
            for (int hi = 0; hi < 3; hi++)
                for (int pi = 0; pi < 3; pi++, k++) {
                    const int32_t R = rows[ri];
                    decode_case tc = {dts[k % 3], k % 4 == 3 ? 128 : 64, rheads[hi][0], rheads[hi][1], rpages[pi],
                                      k % 2 == 0, k % 3 != 1, k % 4 == 1 ? 5 : 0, 5, {1, R - 1, 0, 37, 131}, 2, 0,
                                      R, R == 1};
                    test_decode(targets[gi], tc);
                }
    }
    if (ntargets == 2) {
        /* GPU only: every head_dim for every dtype; GQA groups of 1, 2, 4, 8 and 6 (two
         * chunks, the second partial); split-KV from the heuristic (a large pool and one
         * or two requests), explicit splits beyond kv_len (empty splits: lse -inf parts),
         * and long keys. */
        const bk_target g = targets[1];
        for (int t = 0; t < 3; t++) {
            test_decode(g, (decode_case){dts[t], 256, 8, 8, 16, false, true, 0, 0, {0}, 0, 0, 0, false});
            test_decode(g, (decode_case){dts[t], 64, 16, 2, 16, true, true, 0, 0, {0}, 0, 0, 0, false});
            test_decode(g, (decode_case){dts[t], 128, 12, 2, 16, false, true, 0, 0, {0}, 0, 0, 0, false});
            test_decode(g, (decode_case){dts[t], 128, 4, 2, 16, false, true, 0, 0, {0}, 0, 0, 0, false});
            test_decode(g, (decode_case){dts[t], 128, 32, 8, 16, false, true, 0, 1, {bkt_quick() ? 700 : 3001}, 200, 0, 0, false});
            test_decode(g, (decode_case){dts[t], 64, 4, 1, 7, true, true, 64, 2, {7, 300}, 0, 0, 0, false});
        }
        test_decode(g, (decode_case){BK_DTYPE_BF16, 256, 8, 2, 16, false, false, 0, 2, {1, 2000}, 300, 0, 0, false});
        test_decode(g, (decode_case){BK_DTYPE_F16, 128, 4, 4, 1, false, true, 3, 3, {1, 2, 3}, 0, 0, 0, false});
        /* one split over long keys (the heuristic's choice when batch x kv heads fills a
         * wave): many tiles per CTA through each warp's own cp.async ring (tiles >
         * stages, the page ids looked up a tile ahead), the last tile partial; every
         * dtype, head_dim and group size 1 / 2 / 4 */
        for (int t = 0; t < 3; t++) {
            test_decode(g, (decode_case){dts[t], 128, 32, 8, 16, false, true, 1, 3,
                                         {bkt_quick() ? 300 : 2048, bkt_quick() ? 257 : 2047, 1}, 0, 3, 0, false});
            test_decode(g, (decode_case){dts[t], 64, 8, 2, 5, true, true, 1, 2, {bkt_quick() ? 400 : 1999, 129}, 7, 3, 0, false});
            test_decode(g, (decode_case){dts[t], 256, 6, 3, 3, false, true, 1, 2, {bkt_quick() ? 200 : 777, 65}, 2, 3, 0, false});
            test_decode(g, (decode_case){dts[t], 64, 4, 4, 16, true, false, 2, 2, {bkt_quick() ? 333 : 1500, 31}, 0, 3, 0, false});
        }
        /* determinism, hard: the shape whose rerun once differed on the H100 (f16 D64
         * page 1 with kv_splits; the kit's upload race, see decode_run) and the bench's
         * heads, rerun many times */
        test_decode(g, (decode_case){BK_DTYPE_F16, 64, 8, 2, 1, false, true, 4, 0, {0}, 0, bkt_quick() ? 4 : 24, 0, false});
        test_decode(g, (decode_case){BK_DTYPE_BF16, 128, 32, 8, 16, false, true, 0, 4, {1, 900, 2048, 77}, 0,
                                     bkt_quick() ? 3 : 12, 0, false});
        /* R > 1 on the GPU: long keys (one request of 32768 with R 8 over a GQA group of
         * 8: 64 pairs, 16 CTAs a kv head), pairs of a CTA across rows (group 3 x R 3 = 9
         * pairs: chunks of 4, 4, 1), explicit splits past kv_len (empty splits), one split
         * over many tiles, every dtype and head_dim, reruns bit-identical */
        const bool quick = bkt_quick();
        test_decode(g, (decode_case){BK_DTYPE_BF16, 128, 8, 1, 16, false, true, 0, 2, {quick ? 5000 : 32768, 9}, 0,
                                     3, 8, false});
        test_decode(g, (decode_case){BK_DTYPE_F16, 64, 32, 8, 64, true, true, 0, 3, {quick ? 3000 : 20001, 3001, 1},
                                     0, 3, 4, false});
        test_decode(g, (decode_case){BK_DTYPE_F32, 256, 6, 2, 1, false, true, 0, 3, {quick ? 999 : 4097, 2, 3}, 0, 3,
                                     3, false});
        test_decode(g, (decode_case){BK_DTYPE_BF16, 64, 6, 2, 5, true, true, 64, 4, {7, 3, 300, 2}, 0, 3, 3, false});
        test_decode(g, (decode_case){BK_DTYPE_F16, 128, 4, 4, 16, false, false, 1, 3, {quick ? 700 : 3000, 1, 2},
                                     0, 3, 2, false});
        test_decode(g, (decode_case){BK_DTYPE_BF16, 256, 16, 2, 16, true, true, 1, 2, {quick ? 500 : 2047, 8}, 0, 3,
                                     8, false});
        test_decode(g, (decode_case){BK_DTYPE_F32, 128, 8, 8, 16, false, true, 0, 8,
                                     {1, 2, 3, 4, 5, 6, 7, quick ? 900 : 9000}, 0, 3, 8, false});
        /* The tensor-core kernel (f16/bf16, R x group > 4 pairs per kv head): R 2..8 x group
         * 4 and 8 (and group 3 x R 2, 3 x 3, 6 x 3, 4 x 5: pairs that cross rows inside the
         * 16-row tile; 8 x 8, 8 x 7, 4 x 5 over several CTAs, the last partial), every head_dim,
         * pages of 1, 5, 16, 64, odd kv lengths (1, R - 1: row 0 sees none, no page, primes, past
         * several 64-key CTA tiles), split-KV from the heuristic and explicit (7: some splits
         * past kv_len), padded views, lse absent, reruns bit-identical */
        static const struct {
            int32_t rows, q_heads, kv_heads, head_dim, page;
        } tcs[] = {
            {2, 8, 2, 64, 1},   {3, 8, 2, 128, 16}, {5, 8, 2, 256, 5},  {8, 8, 2, 128, 64}, {2, 16, 2, 128, 16},
            {4, 16, 2, 64, 5},  {7, 16, 2, 256, 16}, {8, 16, 2, 128, 1}, {2, 6, 2, 64, 16},  {3, 9, 3, 128, 5},
            {3, 6, 1, 256, 64}, {5, 4, 1, 128, 16}, {1, 64, 8, 128, 16}, {1, 16, 2, 64, 64}, {6, 8, 1, 64, 16},
        };
        for (int i = 0; i < (int)(sizeof tcs / sizeof tcs[0]); i++) {
            const int32_t R = tcs[i].rows;
            test_decode(g, (decode_case){i % 2 ? BK_DTYPE_BF16 : BK_DTYPE_F16, tcs[i].head_dim, tcs[i].q_heads,
                                         tcs[i].kv_heads, tcs[i].page, i % 3 == 1, i % 4 != 3, i % 3 == 2 ? 7 : 0, 6,
                                         {1, R - 1, 0, 61, quick ? 517 : 2111, 131}, 4, 3, R, false});
        }
        /* CUDA graphs: one capture, three replays over new lengths, pages and live counts */
#ifdef BK_WITH_CUDA
        test_graph_replay(g, 1);
        test_graph_replay(g, 4);
#endif
    }
    test_select();
    test_bad_inputs();
    test_bad_rows();
    test_overflow();
    return bkt_finish();
}
