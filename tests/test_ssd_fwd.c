/* test_ssd_fwd.c - ssd_fwd (Mamba-2 SSD chunk scan) against the sequential recurrence in
 * f64 written here: every dtype, odd sizes, every chunk_size regime (1, 7, 16, 64, beyond
 * seq_len), small and large dt, strided views; chunk_size invariance, determinism (rerun
 * and thread count), bad inputs with their exact status and untouched outputs. */
#include "bk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const bk_dtype k_dtypes[] = {BK_DTYPE_F32, BK_DTYPE_F64, BK_DTYPE_F16, BK_DTYPE_BF16};

typedef struct ssd_case {
    int64_t b, l, h, d, n;
    int32_t chunk;
} ssd_case;

static const ssd_case k_cases[] = {
    {1, 1, 1, 1, 1, 1},     {2, 7, 3, 5, 16, 7},    {1, 33, 2, 16, 5, 7},   {2, 33, 3, 1, 64, 16},
    {1, 130, 2, 64, 16, 64}, {2, 130, 1, 16, 64, 16}, {1, 130, 2, 5, 1, 1},  {1, 33, 1, 64, 64, 100},
    {1, 5, 1, 256, 256, 2}, {3, 1, 2, 7, 3, 64},    {2, 0, 2, 4, 4, 3},     {0, 3, 2, 4, 4, 3},
    {1, 7, 2, 0, 3, 2},     {1, 7, 2, 3, 0, 2},
};

/* Inputs of one problem: the buffers, their views, and their values as f64 (row-major). */
typedef struct ssd_inputs {
    ssd_case s;
    bk_dtype dtype;
    void *buf[5];       /* x, dt, a, b, c */
    int64_t span[5];    /* elements of each buffer */
    bk_tensor view[5];
    double *val[5];
} ssd_inputs;

enum { IX, IDT, IA, IB, IC };

static void shape_of(const ssd_case *s, int which, int32_t *rank, int64_t *shape)
{
    int64_t width = which == IX ? s->d : s->n;
    if (which == IA) {
        *rank = 1;
        shape[0] = s->h;
    } else if (which == IDT) {
        *rank = 3;
        shape[0] = s->b, shape[1] = s->l, shape[2] = s->h;
    } else {
        *rank = 4;
        shape[0] = s->b, shape[1] = s->l, shape[2] = s->h, shape[3] = width;
    }
}

static int64_t numel(int32_t rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int32_t i = 0; i < rank; i++)
        n *= shape[i];
    return n;
}

/* A padded (pad > 0) or contiguous view of a fresh buffer of the given shape; the buffer
 * is filled with values in [lo, hi). */
static bk_tensor make_tensor(bk_dtype dt, int32_t rank, const int64_t *shape, int64_t pad, void **buf, double lo,
                             double hi, int64_t *span_out)
{
    bk_tensor probe = bkt_view_padded(NULL, dt, rank, shape, pad);
    int64_t span = bkt_view_span(&probe) + 1;
    if (span_out)
        *span_out = span;
    *buf = bkt_alloc(dt, span);
    bkt_fill(*buf, dt, span, lo, hi);
    return bkt_view_padded(*buf, dt, rank, shape, pad);
}

/* dt in [dt_lo, dt_hi), A in [-2, -0.1), x, B, C in [-1, 1). */
static void make_inputs(ssd_inputs *in, ssd_case s, bk_dtype dt, int64_t pad, double dt_lo, double dt_hi)
{
    static const double lo[5] = {-1, 0, -2, -1, -1}, hi[5] = {1, 0, -0.1, 1, 1};
    in->s = s;
    in->dtype = dt;
    for (int k = 0; k < 5; k++) {
        int32_t rank;
        int64_t shape[4];
        shape_of(&s, k, &rank, shape);
        double l = k == IDT ? dt_lo : lo[k], h = k == IDT ? dt_hi : hi[k];
        in->view[k] = make_tensor(dt, rank, shape, k == IA ? 0 : pad, &in->buf[k], l, h, &in->span[k]);
        in->val[k] = malloc((size_t)(numel(rank, shape) + 1) * sizeof(double));
        bkt_gather(&in->view[k], in->val[k]);
    }
}

static void free_inputs(ssd_inputs *in)
{
    for (int k = 0; k < 5; k++) {
        bkt_free(in->buf[k]);
        free(in->val[k]);
    }
}

/* Independent reference: the sequential recurrence, one step at a time, in f64.
 *   h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T,  y_t = h_t C_t */
static void ref_fwd(const ssd_inputs *in, double *y)
{
    const ssd_case s = in->s;
    const double *x = in->val[IX], *dt = in->val[IDT], *A = in->val[IA], *B = in->val[IB], *C = in->val[IC];
    double *st = malloc((size_t)(s.d * s.n + 1) * sizeof(double));
    for (int64_t b = 0; b < s.b; b++)
        for (int64_t h = 0; h < s.h; h++) {
            memset(st, 0, (size_t)(s.d * s.n) * sizeof(double));
            for (int64_t t = 0; t < s.l; t++) {
                int64_t row = (b * s.l + t) * s.h + h;
                double decay = exp(dt[row] * A[h]);
                for (int64_t d = 0; d < s.d; d++) {
                    double acc = 0.0;
                    for (int64_t n = 0; n < s.n; n++) {
                        double *p = &st[d * s.n + n];
                        *p = decay * *p + dt[row] * x[row * s.d + d] * B[row * s.n + n];
                        acc += C[row * s.n + n] * *p;
                    }
                    y[row * s.d + d] = acc;
                }
            }
        }
    free(st);
}

static bk_ssd_desc desc_of(ssd_case s, bk_dtype dt)
{
    bk_ssd_desc d = {(int32_t)s.b, (int32_t)s.l, (int32_t)s.h, (int32_t)s.d, (int32_t)s.n, s.chunk, dt};
    return d;
}

static bk_ssd_fwd_args args_of(const ssd_inputs *in, bk_tensor y)
{
    bk_ssd_fwd_args a = {in->view[IX], in->view[IDT], in->view[IA], in->view[IB], in->view[IC], y};
    return a;
}

/* Runs the plan with a workspace of exactly workspace_size bytes. */
static bk_status run_fwd(const bk_ssd_fwd_plan *plan, const bk_ssd_fwd_args *args)
{
    size_t bytes = bk_ssd_fwd_workspace_size(plan);
    void *ws = bytes ? malloc(bytes) : NULL;
    bk_status st = bk_ssd_fwd_run(plan, NULL, (bk_workspace){ws, bytes}, args);
    free(ws);
    return st;
}

/* Runs the plan on `target` (inputs and y copied to the device and y back on CUDA, on a
 * non-default stream), with a workspace of exactly workspace_size bytes. */
static bk_status run_fwd_on(bk_target target, const bk_ssd_fwd_plan *plan, const ssd_inputs *in, bk_tensor y,
                            int64_t yspan)
{
    const size_t es = bk_dtype_size(in->dtype), bytes = bk_ssd_fwd_workspace_size(plan);
    void *ws = bytes ? calloc(1, bytes) : NULL;
    bkt_dev dev = bkt_dev_begin(target);
    bk_ssd_fwd_args a = args_of(in, y);
    bk_tensor *v[5] = {&a.x, &a.dt, &a.a, &a.b, &a.c};
    for (int k = 0; k < 5; k++)
        v[k]->data = bkt_dev_in(&dev, in->buf[k], (size_t)in->span[k] * es);
    a.y.data = bkt_dev_out(&dev, y.data, (size_t)yspan * es);
    void *dws = ws ? bkt_dev_in(&dev, ws, bytes) : NULL;
    bk_status st = bk_ssd_fwd_run(plan, bkt_dev_stream(&dev), (bk_workspace){dws, bytes}, &a);
    if (!bkt_dev_end(&dev) && st == BK_STATUS_SUCCESS)
        st = BK_STATUS_DEVICE_ERROR;
    free(ws);
    return st;
}

static void case_name(char *buf, size_t size, const char *op, bk_dtype dt, ssd_case s, const char *extra)
{
    snprintf(buf, size, "%s %s B%lld L%lld H%lld D%lld N%lld chunk %d%s", op, bk_dtype_name(dt), (long long)s.b,
             (long long)s.l, (long long)s.h, (long long)s.d, (long long)s.n, (int)s.chunk, extra);
}

/* One problem on `target` against the sequential f64 recurrence. GPU slack: f32 1 (f32
 * math on CUDA cores); f16/bf16 3: the tensor-core path also rounds the decay-weighted B,
 * the f32 states and the masked scores C.B exp(..) dt to 16 bits before their products
 * (f32 accumulate), which a 16-bit naive reference does as well (flash-attn's rule: at
 * most about twice that error; bkt_tol is already twice the output rounding). */
static void test_forward_pad(bk_target target, bk_dtype dt, ssd_case s, int64_t in_pad, int64_t y_pad,
                             double dt_hi)
{
    char what[200], extra[64];
    snprintf(extra, sizeof extra, "%s%s%s", in_pad || y_pad ? " strided" : "", dt_hi > 0.5 ? " dt<1" : "",
             target.kind == BK_TARGET_CUDA ? " cuda" : "");
    if (in_pad == 8 || y_pad == 8) /* strides that are multiples of 8 elements */
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " pad %d/%d", (int)in_pad, (int)y_pad);
    case_name(what, sizeof what, "ssd_fwd", dt, s, extra);
    ssd_inputs in;
    make_inputs(&in, s, dt, in_pad, 0.001, dt_hi);
    int64_t shape[4] = {s.b, s.l, s.h, s.d}, n = s.b * s.l * s.h * s.d;
    void *ybuf;
    int64_t yspan;
    bk_tensor y = make_tensor(dt, 4, shape, y_pad, &ybuf, 0, 0, &yspan);
    bkt_poison(ybuf, dt, yspan);
    double *ref = malloc((size_t)(n + 1) * sizeof(double));
    ref_fwd(&in, ref);

    bk_ssd_desc d = desc_of(s, dt);
    bk_ssd_fwd_plan plan;
    if (bkt_expect_status(bk_ssd_fwd_select(&d, target, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
        if (bkt_expect_status(run_fwd_on(target, &plan, &in, y, yspan), BK_STATUS_SUCCESS, what) &&
            bkt_check_close(what, &y, ref, target.kind == BK_TARGET_CUDA && dt != BK_DTYPE_F32 ? 3.0 : 1.0)) {
            /* rerun over the previous output: bit-identical */
            size_t bytes = (size_t)yspan * bk_dtype_size(dt);
            void *first = bkt_snapshot(ybuf, bytes);
            bkt_expect_status(run_fwd_on(target, &plan, &in, y, yspan), BK_STATUS_SUCCESS, what);
            bkt_check(bkt_same_bytes(first, ybuf, bytes), what, "rerun is not bit-identical");
            bkt_free(first);
        }
    }
    free(ref);
    bkt_free(ybuf);
    free_inputs(&in);
}

static void test_forward(bk_target target, bk_dtype dt, ssd_case s, bool padded, double dt_hi)
{
    test_forward_pad(target, dt, s, padded ? 3 : 0, padded ? 2 : 0, dt_hi);
}

/* The plan says what it is. */
static void test_plan_info(void)
{
    const char *what = "ssd_fwd plan info";
    bk_ssd_desc d = {2, 9, 3, 4, 5, 4, BK_DTYPE_BF16};
    bk_ssd_fwd_plan plan;
    if (!bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cpu(), BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS,
                           what))
        return;
    char name[96];
    bk_sku_name(&plan.info.sku, name, sizeof name);
    bkt_check(strcmp(name, "ssm/ssd_fwd/bf16/cpu/reference") == 0, what, "sku %s", name);
    bkt_check(plan.info.precision.deterministic && plan.info.precision.bit_stable, what, "not deterministic");
    bkt_check(memcmp(&plan.desc, &d, sizeof d) == 0, what, "descriptor not kept");
    bkt_check(bk_ssd_fwd_workspace_size(&plan) > 0, what, "no workspace for a non-empty problem");
    bkt_check(bk_ssd_fwd_workspace_size(NULL) == 0, what, "workspace for a NULL plan");
}

/* chunk_size changes the work split only: every chunk size agrees with chunk 1 to f64
 * rounding. */
static void test_chunk_invariance(void)
{
    const char *what = "ssd_fwd f64 chunk_size invariance";
    ssd_case s = {2, 130, 2, 8, 6, 1};
    ssd_inputs in;
    make_inputs(&in, s, BK_DTYPE_F64, 0, 0.001, 1.0);
    int64_t shape[4] = {s.b, s.l, s.h, s.d}, n = s.b * s.l * s.h * s.d;
    double *y1 = bkt_alloc(BK_DTYPE_F64, n), *y = bkt_alloc(BK_DTYPE_F64, n);
    static const int32_t chunks[] = {1, 2, 7, 16, 64, 129, 130, 131, 1 << 30};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        s.chunk = chunks[i];
        bk_ssd_desc d = desc_of(s, BK_DTYPE_F64);
        bk_ssd_fwd_plan plan;
        double *out = i == 0 ? y1 : y;
        bkt_poison(out, BK_DTYPE_F64, n);
        bk_ssd_fwd_args args = args_of(&in, bkt_view(out, BK_DTYPE_F64, 4, shape));
        if (!bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what) ||
            !bkt_expect_status(run_fwd(&plan, &args), BK_STATUS_SUCCESS, what))
            continue;
        if (i > 0) {
            double err = bkt_rel_err(y, y1, n);
            bkt_check(err <= 1e-13, what, "chunk %d vs chunk 1: relative difference %.3e", (int)chunks[i], err);
        }
    }
    bkt_free(y1);
    bkt_free(y);
    free_inputs(&in);
}

/* The result does not depend on the number of threads. */
static void test_thread_count(void)
{
#ifdef _OPENMP
    const char *what = "ssd_fwd thread count";
    ssd_case s = {3, 41, 3, 9, 7, 8};
    ssd_inputs in;
    make_inputs(&in, s, BK_DTYPE_F32, 0, 0.001, 0.1);
    int64_t shape[4] = {s.b, s.l, s.h, s.d}, n = s.b * s.l * s.h * s.d;
    float *y1 = bkt_alloc(BK_DTYPE_F32, n), *y2 = bkt_alloc(BK_DTYPE_F32, n);
    bk_ssd_desc d = desc_of(s, BK_DTYPE_F32);
    bk_ssd_fwd_plan plan;
    bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what);
    int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    bk_ssd_fwd_args a1 = args_of(&in, bkt_view(y1, BK_DTYPE_F32, 4, shape));
    bkt_expect_status(run_fwd(&plan, &a1), BK_STATUS_SUCCESS, what);
    omp_set_num_threads(keep > 1 ? keep : 3);
    bk_ssd_fwd_args a2 = args_of(&in, bkt_view(y2, BK_DTYPE_F32, 4, shape));
    bkt_expect_status(run_fwd(&plan, &a2), BK_STATUS_SUCCESS, what);
    omp_set_num_threads(keep);
    bkt_check(bkt_same_bytes(y1, y2, (size_t)n * sizeof(float)), what, "1 thread and %d threads differ",
              keep > 1 ? keep : 3);
    bkt_free(y1);
    bkt_free(y2);
    free_inputs(&in);
#else
    bkt_skip("ssd_fwd thread count", "built without OpenMP");
#endif
}

/* Every bad input: the exact status, the output's bytes unchanged, an error sentence. */
static void test_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    ssd_case s = {2, 5, 3, 4, 6, 2};
    ssd_inputs in;
    make_inputs(&in, s, dt, 0, 0.001, 0.1);
    int64_t shape[4] = {2, 5, 3, 4}, n = 2 * 5 * 3 * 4;
    float y[120];
    bkt_poison(y, dt, n);
    void *y0 = bkt_snapshot(y, sizeof y);
    bk_ssd_desc d = desc_of(s, dt), bad;
    bk_ssd_fwd_plan plan;
    const bk_target cpu = bk_target_cpu();

    /* descriptor */
    struct {
        const char *what;
        int field; /* 0 batch 1 seq_len 2 heads 3 head_dim 4 state_dim 5 chunk 6 dtype */
        int32_t value;
        bk_status want;
    } dcases[] = {
        {"ssd_fwd chunk_size 0", 5, 0, BK_STATUS_INVALID_PROBLEM},
        {"ssd_fwd chunk_size -4", 5, -4, BK_STATUS_INVALID_PROBLEM},
        {"ssd_fwd head_dim 257", 3, 257, BK_STATUS_UNSUPPORTED},
        {"ssd_fwd state_dim 257", 4, 257, BK_STATUS_UNSUPPORTED},
        {"ssd_fwd negative batch", 0, -1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_fwd negative seq_len", 1, -2, BK_STATUS_INVALID_PROBLEM},
        {"ssd_fwd negative heads", 2, -1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_fwd negative head_dim", 3, -1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_fwd negative state_dim", 4, -1, BK_STATUS_INVALID_PROBLEM},
        {"ssd_fwd dtype i32", 6, BK_DTYPE_I32, BK_STATUS_UNSUPPORTED},
        {"ssd_fwd dtype i64", 6, BK_DTYPE_I64, BK_STATUS_UNSUPPORTED},
        {"ssd_fwd dtype not an enum value", 6, 77, BK_STATUS_INVALID_PROBLEM},
    };
    for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
        bad = d;
        int32_t *f[6] = {&bad.batch, &bad.seq_len, &bad.heads, &bad.head_dim, &bad.state_dim, &bad.chunk_size};
        if (dcases[i].field < 6)
            *f[dcases[i].field] = dcases[i].value;
        else
            bad.dtype = (bk_dtype)dcases[i].value;
        memset(&plan, 0xab, sizeof plan);
        bk_ssd_fwd_plan before = plan;
        bkt_expect_status(bk_ssd_fwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), dcases[i].want, dcases[i].what);
        bkt_check(bk_last_error()[0] != '\0', dcases[i].what, "no error sentence");
        bkt_check(memcmp(&before, &plan, sizeof plan) == 0, dcases[i].what, "plan written on failure");
    }
    bad = d;
    bad.chunk_size = 0;
    bk_ssd_fwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan);
    bkt_check(strcmp(bk_last_error(), "ssd_fwd: desc.chunk_size is 0, expected >= 1") == 0, "ssd_fwd chunk message",
              "got \"%s\"", bk_last_error());
    bad = d;
    bad.head_dim = 257;
    bk_ssd_fwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan);
    bkt_check(strstr(bk_last_error(), "head_dim is 257, expected <= 256") != NULL, "ssd_fwd head_dim message",
              "got \"%s\"", bk_last_error());
    bad = d;
    bad.head_dim = bad.state_dim = 256; /* the limit itself is fine */
    bkt_expect_status(bk_ssd_fwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, "ssd_fwd D = N = 256");
    bkt_expect_status(bk_ssd_fwd_select(NULL, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "ssd_fwd NULL desc");
    bkt_expect_status(bk_ssd_fwd_select(&d, cpu, BK_PREFER_FASTEST, NULL), BK_STATUS_INVALID_PROBLEM,
                      "ssd_fwd NULL plan");
    bkt_expect_status(bk_ssd_fwd_select(&d, cpu, (bk_preference)9, &plan), BK_STATUS_INVALID_PROBLEM,
                      "ssd_fwd bad preference");
    bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_fwd no CUDA kernel below sm_80");
    bad = d;
    bad.dtype = BK_DTYPE_F64;
    bkt_expect_status(bk_ssd_fwd_select(&bad, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_fwd f64 is CPU-only");
#ifdef BK_WITH_CUDA
    bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "ssd_fwd select on sm_90");
    bad = d;
    bad.state_dim = 257;
    bkt_expect_status(bk_ssd_fwd_select(&bad, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_fwd cuda state_dim 257");
#else
    bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_fwd built without CUDA");
#endif

    /* tensors and workspace */
    bkt_expect_status(bk_ssd_fwd_select(&d, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, "ssd_fwd select");
    bk_ssd_fwd_args good = args_of(&in, bkt_view(y, dt, 4, shape));
    size_t need = bk_ssd_fwd_workspace_size(&plan);
    void *ws = malloc(need);
    enum { NC = 24 };
    struct {
        const char *what;
        bk_ssd_fwd_args args;
        bk_status want;
    } cases[NC];
    int nc = 0;
#define CASE(text, field, value, status)  \
    cases[nc].what = text;                \
    cases[nc].args = good;                \
    cases[nc].args.field = value;         \
    cases[nc++].want = status
    CASE("ssd_fwd x.shape[3] != head_dim", x.shape[3], 5, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd x.shape[0] != batch", x.shape[0], 1, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd dt.shape[1] != seq_len", dt.shape[1], 4, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd dt rank 4", dt.rank, 4, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd a.shape[0] != heads", a.shape[0], 2, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd b.shape[3] != state_dim", b.shape[3], 4, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd c.shape[2] != heads", c.shape[2], 1, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd y.shape[1] != seq_len", y.shape[1], 6, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd x dtype f64", x.dtype, BK_DTYPE_F64, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd a dtype f16", a.dtype, BK_DTYPE_F16, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd y dtype bf16", y.dtype, BK_DTYPE_BF16, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd c NULL data", c.data, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd y NULL data", y.data, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd x negative stride", x.strides[1], -12, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd y overlapping strides", y.strides[1], 4, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd y broadcast stride", y.strides[2], 0, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd b broadcast stride", b.strides[2], 0, BK_STATUS_UNSUPPORTED);
    CASE("ssd_fwd x inner stride 2", x.strides[3], 2, BK_STATUS_UNSUPPORTED);
    CASE("ssd_fwd dt inner stride 2", dt.strides[2], 2, BK_STATUS_UNSUPPORTED);
    CASE("ssd_fwd y capacity too small", y.capacity, 119, BK_STATUS_BUFFER_TOO_SMALL);
    CASE("ssd_fwd b capacity too small", b.capacity, 100, BK_STATUS_BUFFER_TOO_SMALL);
    CASE("ssd_fwd a capacity too small", a.capacity, 2, BK_STATUS_BUFFER_TOO_SMALL);
#undef CASE
    for (int c = 0; c < nc; c++) {
        bk_status st = bk_ssd_fwd_run(&plan, NULL, (bk_workspace){ws, need}, &cases[c].args);
        bkt_expect_status(st, cases[c].want, cases[c].what);
        bkt_check(bkt_same_bytes(y0, y, sizeof y), cases[c].what, "output written on failure");
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        bkt_expect_status(bk_ssd_fwd_can_implement(&plan, &cases[c].args), cases[c].want, cases[c].what);
    }
    bk_ssd_fwd_run(&plan, NULL, (bk_workspace){ws, need}, &cases[0].args);
    bkt_check(strcmp(bk_last_error(), "ssd_fwd: x.shape[3] is 5, expected head_dim = 4") == 0, "ssd_fwd shape message",
              "got \"%s\"", bk_last_error());

    struct {
        const char *what;
        bk_workspace ws;
        bk_status want;
    } wcases[] = {
        {"ssd_fwd workspace one byte short", {ws, need - 1}, BK_STATUS_WORKSPACE_TOO_SMALL},
        {"ssd_fwd workspace empty", {ws, 0}, BK_STATUS_WORKSPACE_TOO_SMALL},
        {"ssd_fwd workspace NULL", {NULL, need}, BK_STATUS_INVALID_PROBLEM},
    };
    for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++) {
        bkt_expect_status(bk_ssd_fwd_run(&plan, NULL, wcases[i].ws, &good), wcases[i].want, wcases[i].what);
        bkt_check(bkt_same_bytes(y0, y, sizeof y), wcases[i].what, "output written on failure");
        bkt_check(bk_last_error()[0] != '\0', wcases[i].what, "no error sentence");
    }
    bkt_expect_status(bk_ssd_fwd_run(NULL, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_INVALID_PROBLEM,
                      "ssd_fwd NULL plan");
    bkt_expect_status(bk_ssd_fwd_run(&plan, NULL, (bk_workspace){ws, need}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "ssd_fwd NULL args");
    /* a plan of the other op */
    bk_ssd_bwd_plan bplan;
    bkt_expect_status(bk_ssd_bwd_select(&d, cpu, BK_PREFER_FASTEST, &bplan), BK_STATUS_SUCCESS, "ssd_bwd select");
    bkt_expect_status(bk_ssd_fwd_run((const bk_ssd_fwd_plan *)&bplan, NULL, (bk_workspace){ws, need}, &good),
                      BK_STATUS_INVALID_PROBLEM, "ssd_fwd given a backward plan");
    bkt_check(bkt_same_bytes(y0, y, sizeof y), "ssd_fwd given a backward plan", "output written on failure");
    /* and the good call works with that workspace */
    bkt_expect_status(bk_ssd_fwd_run(&plan, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_SUCCESS,
                      "ssd_fwd good call after bad ones");
    free(ws);
    bkt_free(y0);
    free_inputs(&in);
}

/* The CUDA kernel on the device: every case of the CPU sweep (f32, f16, bf16; f64 is
 * CPU-only), larger shapes (many chunks, D = N = 256 with a partial last chunk, the bench
 * shape's D and N with L 512), the plan it reports, and a bit-identical rerun (inside
 * test_forward). Under BK_TEST_QUICK (sanitizers) a smaller sweep. */
static void test_cuda(void)
{
    bk_target gpu;
    if (!bkt_cuda_target("ssd_fwd cuda", &gpu))
        return;
    static const bk_dtype gdt[] = {BK_DTYPE_F32, BK_DTYPE_F16, BK_DTYPE_BF16};
    const bool quick = bkt_quick();
    for (size_t t = 0; t < sizeof gdt / sizeof gdt[0]; t++)
        for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
            test_forward(gpu, gdt[t], k_cases[c], (c & 1) != 0, 0.1);
            if (quick)
                continue;
            test_forward(gpu, gdt[t], k_cases[c], (c & 1) == 0, 0.1);
            test_forward(gpu, gdt[t], k_cases[c], (c & 1) != 0, 1.0);
        }
    static const ssd_case big[] = {
        {1, 1000, 2, 32, 48, 64}, /* 16 chunks, the last one partial */
        {2, 200, 2, 256, 256, 64},
        {4, 512, 4, 64, 128, 64}, /* the bench shape's D, N and chunk, shorter */
    };
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++) {
        if (quick && c != 0)
            continue;
        test_forward(gpu, BK_DTYPE_F32, big[c], c == 1, 0.1);
        test_forward(gpu, BK_DTYPE_BF16, big[c], false, 0.1);
        if (c == 0)
            test_forward(gpu, BK_DTYPE_F16, big[c], true, 1.0);
    }
    /* f16/bf16 with D, N multiples of 8 and 16-byte aligned rows take the vectorised kernels
     * (every contiguous case above with such D, N does too): strided views with strides that
     * are multiples of 8 elements (odd chunk count, partial D tile, N = 48 cut into slices of
     * 21 and 11 rows for the 16-bit states), and a y whose strides are not (the other path). */
    static const ssd_case vec[] = {{2, 130, 3, 32, 48, 64}, {1, 200, 2, 72, 24, 64}};
    for (size_t c = 0; c < sizeof vec / sizeof vec[0]; c++) {
        test_forward_pad(gpu, BK_DTYPE_BF16, vec[c], 8, 8, 0.1);
        if (quick)
            continue;
        test_forward_pad(gpu, BK_DTYPE_F16, vec[c], 8, 8, 1.0);
        test_forward_pad(gpu, BK_DTYPE_BF16, vec[c], 8, 3, 0.1);
    }
    const char *what = "ssd_fwd cuda plan info";
    bk_ssd_desc d = {2, 33, 3, 16, 16, 16, BK_DTYPE_BF16};
    bk_ssd_fwd_plan plan;
    if (bkt_expect_status(bk_ssd_fwd_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
        char name[96];
        bk_sku_name(&plan.info.sku, name, sizeof name);
        bkt_check(strcmp(name, "ssm/ssd_fwd/bf16/sm80/bespoke") == 0, what, "sku %s", name);
        bkt_check(plan.info.precision.deterministic && plan.info.precision.accumulator == BK_DTYPE_F32 &&
                      plan.info.precision.math == BK_MATH_F16_BF16_TENSOR,
                  what, "precision not as documented");
        /* the documented formula: K = 1 chunk, BH = 6: states (f32, 256-byte aligned), then dec */
        size_t want = ((6 * 16 * 16 * 4 + 255) & ~(size_t)255) + 6 * 4;
        bkt_check(bk_ssd_fwd_workspace_size(&plan) == want, what, "workspace %zu bytes, formula says %zu",
                  bk_ssd_fwd_workspace_size(&plan), want);
    }
    d.dtype = BK_DTYPE_F64;
    bkt_expect_status(bk_ssd_fwd_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_UNSUPPORTED,
                      "ssd_fwd cuda f64");
}

/* Extents whose products pass int64 (issue 13): can_implement refuses them with a
 * sentence naming the overflow and writes nothing; a CUDA plan's workspace (states of
 * every chunk) is SIZE_MAX, never a wrapped size. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bk_ssd_desc d = {INT32_MAX, INT32_MAX, INT32_MAX, 256, 256, 64, dt};
    int64_t sx[4] = {INT32_MAX, INT32_MAX, INT32_MAX, 256}, sdt[3] = {INT32_MAX, INT32_MAX, INT32_MAX};
    int64_t sa[1] = {INT32_MAX};
    float in[16], out[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_ssd_fwd_plan plan;
    if (bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "ssd_fwd overflow select")) {
        bk_tensor x = bkt_view_huge(in, dt, 4, sx);
        bk_ssd_fwd_args a = {x, bkt_view_huge(in, dt, 3, sdt), bkt_view_huge(in, dt, 1, sa), x, x,
                             bkt_view_huge(out, dt, 4, sx)};
        bkt_expect_overflow(bk_ssd_fwd_can_implement(&plan, &a), "ssd_fwd", "ssd_fwd 2^101 x");
        bkt_expect_overflow(bk_ssd_fwd_run(&plan, NULL, (bk_workspace){0}, &a), "ssd_fwd", "ssd_fwd run 2^101");
    }
    if (bk_has_cuda() && bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                                           BK_STATUS_SUCCESS, "ssd_fwd CUDA overflow select"))
        bkt_check(bk_ssd_fwd_workspace_size(&plan) == SIZE_MAX, "ssd_fwd CUDA overflow workspace", "%zu",
                  bk_ssd_fwd_workspace_size(&plan));
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "ssd_fwd overflow", "y written on failure");
    bkt_free(out0);
}

int main(void)
{
    bkt_init("test_ssd_fwd");
    for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
        for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
            test_forward(bk_target_cpu(), k_dtypes[t], k_cases[c], false, 0.1);
            test_forward(bk_target_cpu(), k_dtypes[t], k_cases[c], true, 0.1);
            test_forward(bk_target_cpu(), k_dtypes[t], k_cases[c], (c & 1) != 0, 1.0);
        }
    test_plan_info();
    test_chunk_invariance();
    test_thread_count();
    test_bad_inputs();
    test_cuda();
    test_overflow();
    return bkt_finish();
}
