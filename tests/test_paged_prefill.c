/* test_paged_prefill.c - paged_prefill against a naive f64 reference that gathers each
 * request's K/V through its own page arithmetic and materialises the scores, with the
 * bottom-right causal mask written out row by row: f16/bf16, causal and not, GQA and
 * MHA, qo_len < kv_len, qo_len == kv_len, requests with 0 rows (first, middle, last),
 * qo_len > kv_len under causal (rows with no key: o = 0, lse = -inf), shuffled page ids,
 * padded views, lse absent, never-read pool slots poisoned with NaN; bad inputs (exact
 * status, outputs untouched); determinism (1 thread and all threads).
 * The cache fixture and the reference row are shared with test_paged_decode.c
 * (bk_paged_test.[ch]). */
#include "bk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef BK_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bk_paged_test.h"

/* ------------------------------------------------------------- correctness -- */

typedef struct prefill_case {
    bk_dtype dt;
    bool causal;
    int32_t head_dim, q_heads, kv_heads, page_size;
    bool padded, with_lse;
    int32_t batch;
    int64_t qo_len[MAX_BATCH], kv_len[MAX_BATCH];
} prefill_case;

/* Keys row i of a request (qo_len rows, kv_len keys) sees: all, or under the
 * bottom-right causal mask j <= i + kv_len - qo_len. */
static int64_t visible_keys(bool causal, int64_t i, int64_t qo_len, int64_t kv_len)
{
    if (!causal)
        return kv_len;
    int64_t n = i + kv_len - qo_len + 1;
    return n < 0 ? 0 : n > kv_len ? kv_len : n;
}

/* Runs the plan on its target: on CUDA every buffer travels through bkt_dev (a
 * non-default stream). With `graph`, run is captured into a CUDA graph on that stream
 * (global capture mode: any synchronising call inside run fails the capture), the graph
 * is instantiated and launched, and the outputs are what the graph computed. */
static bk_status prefill_run(const bk_paged_prefill_plan *plan, const bk_paged_prefill_args *host, const cache *c,
                             size_t q_bytes, size_t l_bytes, bool graph)
{
    bk_paged_prefill_args a = *host;
    bk_tensor lse = host->lse ? *host->lse : (bk_tensor){0};
    size_t pool = (size_t)c->num_pages * c->kv_heads * c->page_size * c->head_dim * bk_dtype_size(c->dt);
    bkt_dev dev = bkt_dev_begin(plan->info.target);
    a.q.data = bkt_dev_in(&dev, a.q.data, q_bytes);
    a.q_indptr.data = bkt_dev_in(&dev, a.q_indptr.data, (size_t)a.q_indptr.shape[0] * 4);
    a.kv.k_pages.data = bkt_dev_in(&dev, a.kv.k_pages.data, pool);
    a.kv.v_pages.data = bkt_dev_in(&dev, a.kv.v_pages.data, pool);
    a.kv.kv_indices.data = bkt_dev_in(&dev, a.kv.kv_indices.data, (size_t)a.kv.kv_indices.shape[0] * 4);
    a.kv.kv_indptr.data = bkt_dev_in(&dev, a.kv.kv_indptr.data, (size_t)a.kv.kv_indptr.shape[0] * 4);
    a.kv.last_page_len.data = bkt_dev_in(&dev, a.kv.last_page_len.data, (size_t)a.kv.last_page_len.shape[0] * 4);
    a.o.data = bkt_dev_out(&dev, a.o.data, q_bytes);
    if (host->lse) {
        lse.data = bkt_dev_out(&dev, lse.data, l_bytes);
        a.lse = &lse;
    }
    bk_status st;
#ifdef BK_WITH_CUDA
    if (graph && plan->info.target.kind == BK_TARGET_CUDA) {
        cudaStream_t s = (cudaStream_t)bkt_dev_stream(&dev);
        cudaGraph_t g = NULL;
        cudaGraphExec_t ge = NULL;
        bool ok = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess;
        st = bk_paged_prefill_run(plan, s, (bk_workspace){0}, &a);
        ok = cudaStreamEndCapture(s, &g) == cudaSuccess && ok;
        ok = ok && cudaGraphInstantiate(&ge, g, 0) == cudaSuccess;
        ok = ok && cudaGraphLaunch(ge, s) == cudaSuccess;
        bkt_check(ok, "paged_prefill graph capture", "capture / instantiate / launch failed: %s",
                  cudaGetErrorString(cudaGetLastError()));
        bool ended = bkt_dev_end(&dev);
        if (ge)
            cudaGraphExecDestroy(ge);
        if (g)
            cudaGraphDestroy(g);
        return ended && ok ? st : BK_STATUS_DEVICE_ERROR;
    }
#else
    (void)graph;
#endif
    st = bk_paged_prefill_run(plan, bkt_dev_stream(&dev), (bk_workspace){0}, &a);
    return bkt_dev_end(&dev) ? st : BK_STATUS_DEVICE_ERROR;
}

static void test_prefill_with(bk_target target, bk_preference pref, const prefill_case *tc, bool graph)
{
    const bool gpu = target.kind == BK_TARGET_CUDA, ref_kernel = gpu && pref == BK_PREFER_REFERENCE;
    const int32_t B = tc->batch, D = tc->head_dim, Hq = tc->q_heads, Hkv = tc->kv_heads;
    const bk_dtype dt = tc->dt;
    int32_t q_indptr[MAX_BATCH + 1] = {0};
    for (int32_t b = 0; b < B; b++)
        q_indptr[b + 1] = q_indptr[b] + (int32_t)tc->qo_len[b];
    const int32_t R = q_indptr[B];
    char what[200];
    char tname[32];
    snprintf(tname, sizeof tname, gpu ? "cuda%d%d%s" : "cpu", (int)target.cc_major, (int)target.cc_minor,
             ref_kernel ? " cuda-cores" : "");
    int len = snprintf(what, sizeof what, "paged_prefill %s%s %s%s D=%d Hq=%d Hkv=%d page=%d%s%s (qo,kv):",
                       tname, graph ? " graph" : "", bk_dtype_name(dt), tc->causal ? " causal" : "", (int)D, (int)Hq, (int)Hkv,
                       (int)tc->page_size, tc->padded ? " strided" : "", tc->with_lse ? " lse" : "");
    for (int32_t b = 0; b < B && len < (int)sizeof what; b++)
        len += snprintf(what + len, sizeof what - (size_t)len, " (%lld,%lld)", (long long)tc->qo_len[b],
                        (long long)tc->kv_len[b]);
    if (!bkt_case(what))
        return;
    cache c;
    cache_make(&c, dt, B, tc->kv_len, Hkv, tc->page_size, D, 2, 1);

    int64_t qshape[3] = {R, Hq, D}, lshape[2] = {R, Hq}, pshape[1] = {B + 1};
    int64_t pad = tc->padded ? 5 : 0;
    bk_tensor probe = bkt_view_padded(NULL, dt, 3, qshape, pad), lprobe = bkt_view_padded(NULL, BK_DTYPE_F32, 2, lshape, pad);
    int64_t span = bkt_view_span(&probe) + 1, lspan = bkt_view_span(&lprobe) + 1;
    void *q = bkt_alloc(dt, span), *o = bkt_alloc(dt, span), *lse = bkt_alloc(BK_DTYPE_F32, lspan);
    bkt_fill(q, dt, span, -2.0, 2.0);
    bkt_poison(o, dt, span);
    bkt_poison(lse, BK_DTYPE_F32, lspan);
    void *o_before = bkt_snapshot(o, (size_t)span * bk_dtype_size(dt));
    void *l_before = bkt_snapshot(lse, (size_t)lspan * sizeof(float));
    bk_tensor tq = bkt_view_padded(q, dt, 3, qshape, pad), to = bkt_view_padded(o, dt, 3, qshape, pad);
    bk_tensor tl = bkt_view_padded(lse, BK_DTYPE_F32, 2, lshape, pad);

    const double scale = 1.0 / sqrt((double)D);
    double *ref_o = malloc((size_t)(R * Hq * D + 1) * sizeof(double));
    double *ref_l = malloc((size_t)(R * Hq + 1) * sizeof(double));
    double qrow[256];
    for (int32_t b = 0; b < B; b++)
        for (int64_t i = 0; i < tc->qo_len[b]; i++) {
            int64_t r = q_indptr[b] + i;
            int64_t n = visible_keys(tc->causal, i, tc->qo_len[b], tc->kv_len[b]);
            for (int32_t h = 0; h < Hq; h++) {
                for (int32_t d = 0; d < D; d++)
                    qrow[d] = bkt_at(&tq, (int64_t[]){r, h, d});
                ref_row(&c, b, h / (Hq / Hkv), qrow, n, scale, ref_o + (r * Hq + h) * D, ref_l + r * Hq + h);
            }
        }

    bk_paged_prefill_desc desc = {B, R, Hq, scale, tc->causal, tc->padded, cache_desc(&c)};
    bk_paged_prefill_plan plan;
    bk_status st = bk_paged_prefill_select(&desc, target, pref, &plan);
    const size_t q_bytes = (size_t)span * bk_dtype_size(dt), l_bytes = (size_t)lspan * sizeof(float);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
        /* CUDA: the tensor-core kernels (wgmma on 9.0, mma.sync on 8.x) unless the
         * reference (CUDA-core) kernel is asked for */
        const bk_arch want_arch =
            !gpu ? BK_ARCH_CPU : !ref_kernel && target.cc_major == 9 ? BK_ARCH_SM90 : BK_ARCH_SM80;
        const bk_math_precision want_math =
            !gpu ? BK_MATH_F64 : ref_kernel ? BK_MATH_F32 : BK_MATH_F16_BF16_TENSOR;
        bkt_check(plan.info.precision.deterministic && bk_paged_prefill_workspace_size(&plan) == 0 &&
                      plan.info.sku.op == BK_OP_PAGED_PREFILL && plan.info.sku.dtype == dt &&
                      plan.info.sku.arch == want_arch && plan.info.precision.math == want_math,
                  what, "plan info wrong (arch %d, math %d)", (int)plan.info.sku.arch, (int)plan.info.precision.math);
        bk_paged_prefill_args args = {tq, bkt_view(q_indptr, BK_DTYPE_I32, 1, pshape), cache_tensors(&c), to,
                                      tc->with_lse ? &tl : NULL};
        st = prefill_run(&plan, &args, &c, q_bytes, l_bytes, graph);
        /* CUDA: f32 math on the 16-bit inputs, one rounding at the end (CUDA cores), or
         * tensor cores with P rounded to the input dtype before P V (as flash-attn does);
         * slack 2 is flash-attn's rule (2x the error of a same-precision result) */
        const double slack = gpu ? 2.0 : 1.0;
        if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
            bkt_check_close(what, &to, ref_o, slack);
            if (tc->with_lse)
                bkt_check_close(what, &tl, ref_l, slack);
            else
                bkt_check(bkt_same_bytes(l_before, lse, (size_t)lspan * sizeof(float)), what,
                          "lse written though not requested");
            bkt_check(bkt_untouched_outside(&to, o_before, span), what,
                      "o written outside its view");
            /* the empty rows: exactly 0 and -inf */
            int64_t empty = 0;
            bool exact = true;
            for (int32_t b = 0; b < B; b++)
                for (int64_t i = 0; i < tc->qo_len[b]; i++)
                    if (visible_keys(tc->causal, i, tc->qo_len[b], tc->kv_len[b]) == 0)
                        for (int32_t h = 0; h < Hq; h++, empty++) {
                            int64_t r = q_indptr[b] + i;
                            for (int32_t d = 0; d < D; d++)
                                exact = exact && bkt_at(&to, (int64_t[]){r, h, d}) == 0.0;
                            if (tc->with_lse)
                                exact = exact && bkt_at(&tl, (int64_t[]){r, h}) == -INFINITY;
                        }
            bkt_check(exact, what, "a row with no visible key is not exactly 0 / -inf (%lld such rows)",
                      (long long)empty);
            void *first = bkt_snapshot(o, (size_t)span * bk_dtype_size(dt));
            void *first_l = bkt_snapshot(lse, (size_t)lspan * sizeof(float));
            for (int rerun = 0; rerun < 2; rerun++) {
#ifdef _OPENMP
                int threads = omp_get_max_threads();
                if (rerun == 0)
                    omp_set_num_threads(1);
#endif
                bkt_poison(o, dt, span);
                bkt_poison(lse, BK_DTYPE_F32, lspan);
                st = prefill_run(&plan, &args, &c, q_bytes, l_bytes, false);
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

/* The case on the target's deterministic (fastest) kernel and, on CUDA, also on the
 * reference CUDA-core kernel. */
static void test_prefill(bk_target target, const prefill_case *tc, bool graph)
{
    test_prefill_with(target, BK_PREFER_DETERMINISTIC, tc, graph);
    if (target.kind == BK_TARGET_CUDA)
        test_prefill_with(target, BK_PREFER_REFERENCE, tc, graph);
}

/* ------------------------------------------------------------- bad inputs -- */

typedef struct bad_env {
    bk_paged_prefill_plan plan;
    void *o, *lse, *o0, *lse0;
    size_t o_bytes, lse_bytes;
} bad_env;

static void expect_run(bad_env *e, const bk_paged_prefill_args *args, bk_status want, const char *what)
{
    bkt_expect_status(bk_paged_prefill_can_implement(&e->plan, args), want, what);
    bkt_expect_status(bk_paged_prefill_run(&e->plan, NULL, (bk_workspace){0}, args), want, what);
    bkt_check(bk_last_error()[0] != '\0', what, "no error sentence");
    bkt_check(bkt_same_bytes(e->o0, e->o, e->o_bytes) && bkt_same_bytes(e->lse0, e->lse, e->lse_bytes), what,
              "output written on failure");
}

static void expect_select(const bk_paged_prefill_desc *d, bk_status want, const char *what, const char *text)
{
    bk_paged_prefill_plan plan;
    bkt_expect_status(bk_paged_prefill_select(d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), want, what);
    bkt_check(bk_last_error()[0] != '\0', what, "no error sentence");
    if (text)
        bkt_check(strstr(bk_last_error(), text) != NULL, what, "error \"%s\" lacks \"%s\"", bk_last_error(), text);
}

static void test_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_BF16;
    const int32_t B = 3, Hq = 6, Hkv = 3, D = 64;
    static const int64_t kv_lens[3] = {6, 2, 11};
    int32_t q_indptr[4] = {0, 2, 2, 7};
    const int32_t R = 7;
    cache c;
    cache_make(&c, dt, B, kv_lens, Hkv, 4, D, 0, 0);
    bk_paged_prefill_desc d = {B, R, Hq, 0.125, true, false, cache_desc(&c)};

    bk_paged_prefill_desc bad = d;
    bad.paged_kv.dtype = BK_DTYPE_F32;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_prefill f32", "paged_prefill: desc.paged_kv.dtype is f32");
    bad = d;
    bad.paged_kv.dtype = BK_DTYPE_F64;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_prefill f64", NULL);
    bad = d;
    bad.paged_kv.head_dim = 96;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_prefill head_dim 96", "head_dim is 96");
    bad = d;
    bad.paged_kv.head_dim = 512;
    expect_select(&bad, BK_STATUS_UNSUPPORTED, "paged_prefill head_dim 512", NULL);
    bad = d;
    bad.q_heads = 4;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_prefill q_heads % kv_heads", "multiple of kv_heads = 3");
    bad = d;
    bad.total_rows = -1;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_prefill total_rows -1", "desc.total_rows is -1");
    bad = d;
    bad.batch = 0;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_prefill batch 0", NULL);
    bad = d;
    bad.scale = NAN;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_prefill NaN scale", NULL);
    bad = d;
    bad.paged_kv.page_size = -2;
    expect_select(&bad, BK_STATUS_INVALID_PROBLEM, "paged_prefill page_size -2", NULL);
    expect_select(NULL, BK_STATUS_INVALID_PROBLEM, "paged_prefill NULL desc", NULL);
    bk_paged_prefill_plan scratch;
    bkt_expect_status(bk_paged_prefill_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &scratch),
                      BK_STATUS_UNSUPPORTED, "paged_prefill on sm_75 (every CUDA kernel needs sm_80)");

    bad_env e;
    if (!bkt_expect_status(bk_paged_prefill_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &e.plan),
                           BK_STATUS_SUCCESS, "paged_prefill bad-input select")) {
        cache_free(&c);
        return;
    }
    int64_t qshape[3] = {R, Hq, D}, lshape[2] = {R, Hq}, pshape[1] = {B + 1};
    int64_t n = (int64_t)R * Hq * D;
    void *q = bkt_alloc(dt, n);
    bkt_fill(q, dt, n, -1, 1);
    e.o = bkt_alloc(dt, n);
    e.lse = bkt_alloc(BK_DTYPE_F32, R * Hq);
    bkt_poison(e.o, dt, n);
    bkt_poison(e.lse, BK_DTYPE_F32, R * Hq);
    e.o_bytes = (size_t)n * 2;
    e.lse_bytes = (size_t)R * Hq * 4;
    e.o0 = bkt_snapshot(e.o, e.o_bytes);
    e.lse0 = bkt_snapshot(e.lse, e.lse_bytes);
    bk_tensor tl = bkt_view(e.lse, BK_DTYPE_F32, 2, lshape);
    bk_paged_prefill_args good = {bkt_view(q, dt, 3, qshape), bkt_view(q_indptr, BK_DTYPE_I32, 1, pshape),
                                  cache_tensors(&c), bkt_view(e.o, dt, 3, qshape), &tl};
    bk_paged_prefill_args a;
    bk_tensor l2;

    a = good;
    a.q.shape[0] = R + 1;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill q.shape[0]");
    bkt_check(strstr(bk_last_error(), "paged_prefill: q.shape[0] is 8, expected total_rows = 7") != NULL,
              "paged_prefill q.shape message", "got \"%s\"", bk_last_error());
    a = good;
    a.o.shape[2] = 128;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill o.shape[2]");
    a = good;
    a.o.dtype = BK_DTYPE_F16;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill o dtype");
    a = good;
    a.o.capacity = 10;
    expect_run(&e, &a, BK_STATUS_BUFFER_TOO_SMALL, "paged_prefill o capacity");
    a = good;
    a.o.strides[2] = 3;
    a.o.capacity = 0;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill o inner stride 3 overlapping");
    a = good;
    a.q.strides[2] = 0;
    expect_run(&e, &a, BK_STATUS_UNSUPPORTED, "paged_prefill q broadcast head_dim");
    a = good;
    a.q_indptr.shape[0] = B;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill q_indptr shape");
    a = good;
    a.q_indptr.dtype = BK_DTYPE_I64;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill q_indptr dtype");
    a = good;
    a.q_indptr.data = NULL;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill q_indptr NULL");
    a = good;
    l2 = tl;
    l2.shape[0] = B;
    a.lse = &l2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill lse shape");
    a = good;
    l2 = tl;
    l2.strides[0] = 1;
    l2.capacity = 0;
    a.lse = &l2;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill lse overlapping");
    a = good;
    a.kv.v_pages.shape[0] = c.num_pages + 1;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill v_pages shape");
    a = good;
    a.kv.last_page_len.shape[0] = B + 1;
    expect_run(&e, &a, BK_STATUS_INVALID_PROBLEM, "paged_prefill last_page_len shape");

    /* q_indptr values */
    q_indptr[0] = 1;
    expect_run(&e, &good, BK_STATUS_INVALID_PROBLEM, "paged_prefill q_indptr[0] = 1");
    q_indptr[0] = 0;
    q_indptr[2] = 1;
    expect_run(&e, &good, BK_STATUS_INVALID_PROBLEM, "paged_prefill q_indptr decreasing");
    bkt_check(strstr(bk_last_error(), "q_indptr[2] is 1") != NULL, "paged_prefill q_indptr message", "got \"%s\"",
              bk_last_error());
    q_indptr[2] = 2;
    q_indptr[3] = 6;
    expect_run(&e, &good, BK_STATUS_OUT_OF_RANGE, "paged_prefill q_indptr[batch] != total_rows");
    q_indptr[3] = 7;
    /* page table values */
    int32_t keep = c.last[2];
    c.last[2] = 9;
    expect_run(&e, &good, BK_STATUS_INVALID_PROBLEM, "paged_prefill last_page_len > page_size");
    c.last[2] = keep;
    keep = c.indptr[1];
    c.indptr[1] = 0;
    expect_run(&e, &good, BK_STATUS_INVALID_PROBLEM, "paged_prefill request with no page");
    c.indptr[1] = keep;
    keep = c.indptr[B];
    c.indptr[B] = c.n_indices + 3;
    expect_run(&e, &good, BK_STATUS_OUT_OF_RANGE, "paged_prefill kv_indptr[batch] beyond kv_indices");
    c.indptr[B] = keep;
    keep = c.indices[c.n_indices - 1];
    c.indices[c.n_indices - 1] = c.num_pages + 7;
    expect_run(&e, &good, BK_STATUS_OUT_OF_RANGE, "paged_prefill page id beyond the pool");
    c.indices[c.n_indices - 1] = keep;

    bk_paged_prefill_plan zero;
    memset(&zero, 0, sizeof zero);
    bkt_expect_status(bk_paged_prefill_run(&zero, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "paged_prefill plan not from select");
    bkt_expect_status(bk_paged_prefill_run(&e.plan, NULL, (bk_workspace){0}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "paged_prefill NULL args");
    bkt_check(bkt_same_bytes(e.o0, e.o, e.o_bytes) && bkt_same_bytes(e.lse0, e.lse, e.lse_bytes),
              "paged_prefill bad plans", "output written on failure");
    bkt_expect_status(bk_paged_prefill_run(&e.plan, NULL, (bk_workspace){0}, &good), BK_STATUS_SUCCESS,
                      "paged_prefill good call after bad ones");

    bkt_free(q);
    bkt_free(e.o);
    bkt_free(e.lse);
    bkt_free(e.o0);
    bkt_free(e.lse0);
    cache_free(&c);
}

/* total_rows 0: every request has 0 rows; nothing to write, success. */
static void test_no_rows(void)
{
    const char *what = "paged_prefill total_rows 0";
    static const int64_t kv_lens[2] = {3, 8};
    cache c;
    cache_make(&c, BK_DTYPE_F16, 2, kv_lens, 1, 4, 64, 0, 0);
    int32_t q_indptr[3] = {0, 0, 0};
    int64_t qshape[3] = {0, 2, 64}, pshape[1] = {3};
    bk_paged_prefill_desc d = {2, 0, 2, 0.125, true, false, cache_desc(&c)};
    bk_paged_prefill_plan plan;
    if (bkt_expect_status(bk_paged_prefill_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          what)) {
        bk_paged_prefill_args a = {bkt_view(NULL, BK_DTYPE_F16, 3, qshape), bkt_view(q_indptr, BK_DTYPE_I32, 1, pshape),
                                   cache_tensors(&c), bkt_view(NULL, BK_DTYPE_F16, 3, qshape), NULL};
        bkt_expect_status(bk_paged_prefill_run(&plan, NULL, (bk_workspace){0}, &a), BK_STATUS_SUCCESS, what);
    }
    cache_free(&c);
}

/* Extents whose products pass int64 (issue 13): can_implement refuses them with a
 * sentence naming the overflow and writes nothing. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_BF16;
    bk_paged_prefill_desc d = {1, INT32_MAX, INT32_MAX, 0.1, true, false, {INT32_MAX, INT32_MAX, INT32_MAX, 128, dt}};
    int64_t sq[3] = {INT32_MAX, INT32_MAX, 128}, sp[1] = {2};
    int32_t indptr[2] = {0, INT32_MAX};
    uint16_t in[16], out[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_paged_prefill_plan plan;
    if (bkt_expect_status(bk_paged_prefill_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "paged_prefill overflow select")) {
        bk_paged_prefill_args a = {bkt_view_huge(in, dt, 3, sq), bkt_view(indptr, BK_DTYPE_I32, 1, sp),
                                   bkt_paged_kv_huge(&d.paged_kv, 1, in), bkt_view_huge(out, dt, 3, sq), NULL};
        bkt_expect_overflow(bk_paged_prefill_can_implement(&plan, &a), "paged_prefill", "paged_prefill 2^69 q bytes");
        a.q.shape[0] = a.o.shape[0] = 1;
        plan.desc.total_rows = 1;
        bkt_expect_overflow(bk_paged_prefill_run(&plan, NULL, (bk_workspace){0}, &a), "paged_prefill",
                            "paged_prefill run 2^99 pool");
        bkt_check(bk_paged_prefill_workspace_size(&plan) == 0, "paged_prefill overflow workspace", "not 0");
    }
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "paged_prefill overflow", "o written on failure");
    bkt_free(out0);
}

int main(void)
{
    bkt_init("test_paged_prefill");
    /* (qo_len, kv_len) per request: qo < kv, qo == kv, 0 rows in the middle, qo > kv
     * (causal: the first qo - kv rows see nothing), one row over 130 keys, 33 == 33 */
    prefill_case mixed = {.batch = 6, .qo_len = {3, 7, 0, 9, 1, 33}, .kv_len = {7, 7, 5, 4, 130, 33}};
    /* 0 rows first and last; qo > kv by one; one key */
    prefill_case edges = {.batch = 5, .qo_len = {0, 5, 2, 13, 0}, .kv_len = {3, 12, 1, 12, 1}};
    static const bk_dtype dts[2] = {BK_DTYPE_F16, BK_DTYPE_BF16};
    static const int32_t heads[2][2] = {{8, 2}, {4, 4}};
    static const int32_t pages[3] = {1, 5, 16};
    bk_target targets[3] = {bk_target_cpu()};
    int ntargets = 1 + bkt_cuda_target("paged_prefill cuda", &targets[1]);
    /* on a Hopper device the sm80 (mma.sync) kernel runs too, through a target that
     * declares compute capability 8.0 */
    if (ntargets == 2 && targets[1].cc_major == 9)
        targets[ntargets++] = bk_target_cuda_cc(targets[1].device, 8, 0);
    for (int gi = 0; gi < ntargets; gi++) {
    const bk_target target = targets[gi];
    int k = 0;
    for (int t = 0; t < 2; t++)
        for (int causal = 0; causal < 2; causal++)
            for (int hi = 0; hi < 2; hi++, k++) {
                prefill_case tc = mixed;
                tc.dt = dts[t];
                tc.causal = causal;
                tc.head_dim = 64;
                tc.q_heads = heads[hi][0];
                tc.kv_heads = heads[hi][1];
                tc.page_size = pages[k % 3];
                tc.padded = k % 2 == 0;
                tc.with_lse = k % 4 != 3;
                test_prefill(target, &tc, false);
                tc = edges;
                tc.dt = dts[t];
                tc.causal = causal;
                tc.head_dim = 128;
                tc.q_heads = heads[hi][0];
                tc.kv_heads = heads[hi][1];
                tc.page_size = pages[(k + 1) % 3];
                tc.padded = k % 2 == 1;
                tc.with_lse = true;
                test_prefill(target, &tc, false);
            }
    prefill_case big = {BK_DTYPE_BF16, true, 256, 4, 2, 16, true, true, 2, {5, 17}, {9, 17}};
    test_prefill(target, &big, false);
    }
    for (int gi = 1; gi < ntargets; gi++) {
        /* GPU only: several row tiles per request (16 rows for the CUDA-core kernel, 128
         * for the tensor-core ones), every head_dim, GQA 4, a CUDA-graph capture of run
         * (replayed, compared like any run) */
        const bk_target g = targets[gi];
        prefill_case long_rows = {BK_DTYPE_BF16, true, 128, 8, 2, 16, false, true, 3, {290, 2, 129}, {333, 2, 200}};
        test_prefill(g, &long_rows, false);
        long_rows.causal = false;
        long_rows.dt = BK_DTYPE_F16;
        long_rows.head_dim = 64;
        long_rows.page_size = 3;
        long_rows.padded = true;
        test_prefill(g, &long_rows, false);
        prefill_case tiles = {BK_DTYPE_F16, true, 128, 8, 2, 16, false, true, 3, {100, 1, 64}, {300, 50, 64}};
        test_prefill(g, &tiles, false);
        test_prefill(g, &tiles, true);
        tiles.causal = false;
        tiles.dt = BK_DTYPE_BF16;
        tiles.head_dim = 64;
        tiles.page_size = 5;
        test_prefill(g, &tiles, true);
        prefill_case wide = {BK_DTYPE_F16, true, 256, 2, 1, 7, true, true, 3, {40, 0, 17}, {40, 3, 90}};
        test_prefill(g, &wide, false);
        /* every page size the Hopper loaders specialise at every head dim (cp.async slots
           of 4..32 rows: each producer warp a quarter of a tile, one page or several or
           part of one; a TMA box per page of 64+), partial last pages and tiles */
        static const int32_t slot_pages[6] = {4, 8, 16, 32, 64, 128};
        for (int i = 0; i < 6; i++)
            for (int di = 0; di < 3; di++) {
                const int v = i + di;
                prefill_case sp = {v % 2 ? BK_DTYPE_F16 : BK_DTYPE_BF16, v % 2 == 0, 64 << di, 8, 2,
                                   slot_pages[i], v % 3 == 0, true, 3, {150, 3, 129}, {301, 3, 260}};
                test_prefill(g, &sp, false);
            }
        /* GQA packing on the Hopper kernel: the q heads of a kv group share a tile (groups
           of 2..16, a tile holding 128 / group query rows of each), several tiles per
           request, on each Q loader (TMA box with pages of 64, cp.async slots with 16,
           row gathers with 1 and 5); a group of 3 is not packed */
        static const int32_t gqa[4][3] = {{16, 2, 64}, {16, 1, 16}, {6, 2, 1}, {32, 2, 5}};
        for (int i = 0; i < 4; i++) {
            prefill_case gq = {i % 2 ? BK_DTYPE_F16 : BK_DTYPE_BF16, i != 1, 64 << (i % 3), gqa[i][0], gqa[i][1],
                               gqa[i][2], i == 3, true, 3, {70, 1, 300}, {90, 20, 300}};
            test_prefill(g, &gq, false);
        }
        /* causal units over several rounds of the grid (13 tile ids x 16 heads = 208 units:
           on 132 SMs the Hopper kernel's second round is partial) */
        prefill_case rounds = {BK_DTYPE_BF16, true, 128, 16, 4, 16, false, true, 4, {300, 500, 77, 213},
                               {300, 600, 200, 213}};
        test_prefill(g, &rounds, false);
        prefill_case m2 = mixed;
        m2.dt = BK_DTYPE_BF16;
        m2.causal = true;
        m2.head_dim = 64;
        m2.q_heads = 8;
        m2.kv_heads = 2;
        m2.page_size = 16;
        m2.with_lse = true;
        test_prefill(g, &m2, true);
    }
    test_no_rows();
    test_bad_inputs();
    test_overflow();
    return bkt_finish();
}
