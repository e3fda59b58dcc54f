/* test_ssd_fwd.c - ssd_fwd (Mamba-2 SSD chunk scan) against the sequential recurrence in
 * f64 written here: every dtype, odd sizes, every chunk_size regime (1, 7, 16, 64, beyond
 * seq_len), small and large dt, strided views; chunk_size invariance, determinism (rerun
 * and thread count), bad inputs with their exact status and untouched outputs. The options
 * (ngroups, skip, z, dt_bias, softplus, dt limit, initial/final states, seq_idx, varlen
 * states) against the fixture's sequential reference (bk_ssd_test.c): alone and together,
 * odd lengths, L = 1, L not a multiple of the chunk, seq_idx changes inside chunks. The
 * TF32 plan (f32 under BK_PREFER_ALLOW_TF32, CUDA) over the 16-bit tensor-core path's cases
 * with a TF32 tolerance; its selection is opt-in (every other preference keeps the exact
 * f32 plan). */
#include "bk_ssd_test.h"

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
    bk_ssd_desc d = {.batch = (int32_t)s.b, .seq_len = (int32_t)s.l, .heads = (int32_t)s.h, .head_dim = (int32_t)s.d,
                     .state_dim = (int32_t)s.n, .chunk_size = s.chunk, .dtype = dt};
    return d;
}

static bk_ssd_fwd_args args_of(const ssd_inputs *in, bk_tensor y)
{
    bk_ssd_fwd_args a = {.x = in->view[IX], .dt = in->view[IDT], .a = in->view[IA], .b = in->view[IB], .c = in->view[IC], .y = y};
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

/* Runs the plan with args whose tensors are on dev's target, a zeroed workspace of exactly
 * workspace_size bytes and dev's stream; ends dev (sync, outputs back, free). */
static bk_status run_fwd_dev(bkt_dev *dev, const bk_ssd_fwd_plan *plan, const bk_ssd_fwd_args *a)
{
    const size_t bytes = bk_ssd_fwd_workspace_size(plan);
    void *ws = bytes ? calloc(1, bytes) : NULL;
    void *dws = ws ? bkt_dev_in(dev, ws, bytes) : NULL;
    bk_status st = bk_ssd_fwd_run(plan, bkt_dev_stream(dev), (bk_workspace){dws, bytes}, a);
    if (!bkt_dev_end(dev) && st == BK_STATUS_SUCCESS)
        st = BK_STATUS_DEVICE_ERROR;
    free(ws);
    return st;
}

/* Runs the plan on `target` (inputs and y copied to the device and y back on CUDA, on a
 * non-default stream), with a workspace of exactly workspace_size bytes. */
static bk_status run_fwd_on(bk_target target, const bk_ssd_fwd_plan *plan, const ssd_inputs *in, bk_tensor y,
                            int64_t yspan)
{
    const size_t es = bk_dtype_size(in->dtype);
    bkt_dev dev = bkt_dev_begin(target);
    bk_ssd_fwd_args a = args_of(in, y);
    bk_tensor *v[5] = {&a.x, &a.dt, &a.a, &a.b, &a.c};
    for (int k = 0; k < 5; k++)
        v[k]->data = bkt_dev_in(&dev, in->buf[k], (size_t)in->span[k] * es);
    a.y.data = bkt_dev_out(&dev, y.data, (size_t)yspan * es);
    return run_fwd_dev(&dev, plan, &a);
}

static void case_name(char *buf, size_t size, const char *op, bk_dtype dt, ssd_case s, const char *extra)
{
    snprintf(buf, size, "%s %s B%lld L%lld H%lld D%lld N%lld chunk %d%s", op, bk_dtype_name(dt), (long long)s.b,
             (long long)s.l, (long long)s.h, (long long)s.d, (long long)s.n, (int)s.chunk, extra);
}

/* GPU slack of the TF32 plan (f32 data): its tensor cores round to TF32 (10-bit mantissas,
 * as f16) what the 16-bit path rounds (the decay-weighted B, the f32 states, the masked
 * scores) and the f32 inputs x, B, C too; against bkt_tol_tf32 (twice the reference's TF32
 * rounding) it gets the 16-bit slack (3) plus two for the inputs' roundings (not yet
 * calibrated on a GPU; a wrong fragment layout or mask errs by 1e-1 to 1). */
static const double k_tf32_slack = 5.0;

/* An output of `plan` (y, a final or varlen state) against the f64 reference, with the
 * tolerance its precision calls for: the CPU and f32 CUDA-core plans bkt_tol (slack 1);
 * f16/bf16 tensor cores 3 bkt_tol: the tensor-core path also rounds the decay-weighted B,
 * the f32 states and the masked scores C.B exp(..) dt to 16 bits before their products
 * (f32 accumulate), which a 16-bit naive reference does as well (flash-attn's rule: at
 * most about twice that error; bkt_tol is already twice the output rounding); TF32
 * k_tf32_slack bkt_tol_tf32. */
static bool check_out(const char *what, const bk_plan_info *info, const bk_tensor *out, const double *ref)
{
    if (info->precision.math == BK_MATH_TF32)
        return bkt_check_close_tol(what, out, ref, k_tf32_slack * bkt_tol_tf32(ref, bk_tensor_numel(out)));
    return bkt_check_close(what, out, ref, info->target.kind == BK_TARGET_CUDA && out->dtype != BK_DTYPE_F32 ? 3.0 : 1.0);
}

/* The plan `pref` must select: TF32 math exactly for f32 on CUDA under
 * BK_PREFER_ALLOW_TF32, never otherwise. */
static bool check_math(const char *what, const bk_plan_info *info, bk_preference pref, bk_dtype dt)
{
    const bool tf32 = pref == BK_PREFER_ALLOW_TF32 && dt == BK_DTYPE_F32 && info->target.kind == BK_TARGET_CUDA;
    return bkt_check((info->precision.math == BK_MATH_TF32) == tf32, what, "precision.math %d under preference %d",
                     (int)info->precision.math, (int)pref);
}

/* One problem on `target` (the kernel `pref` selects) against the sequential f64
 * recurrence (check_out's tolerance), then a bit-identical rerun. */
static void test_forward_pad(bk_target target, bk_preference pref, bk_dtype dt, ssd_case s, int64_t in_pad,
                             int64_t y_pad, double dt_hi)
{
    char what[200], extra[64];
    snprintf(extra, sizeof extra, "%s%s%s%s", in_pad || y_pad ? " strided" : "", dt_hi > 0.5 ? " dt<1" : "",
             target.kind == BK_TARGET_CUDA ? " cuda" : "", pref == BK_PREFER_ALLOW_TF32 ? " tf32" : "");
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
    if (bkt_expect_status(bk_ssd_fwd_select(&d, target, pref, &plan), BK_STATUS_SUCCESS, what) &&
        check_math(what, &plan.info, pref, dt)) {
        if (bkt_expect_status(run_fwd_on(target, &plan, &in, y, yspan), BK_STATUS_SUCCESS, what) &&
            check_out(what, &plan.info, &y, ref)) {
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

static void test_forward(bk_target target, bk_preference pref, bk_dtype dt, ssd_case s, bool padded, double dt_hi)
{
    test_forward_pad(target, pref, dt, s, padded ? 3 : 0, padded ? 2 : 0, dt_hi);
}

/* The plan says what it is. */
static void test_plan_info(void)
{
    const char *what = "ssd_fwd plan info";
    bk_ssd_desc d = {.batch = 2, .seq_len = 9, .heads = 3, .head_dim = 4,
                     .state_dim = 5, .chunk_size = 4, .dtype = BK_DTYPE_BF16};
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

/* A call that must fail: a good call's args with one field changed, and its status. */
typedef struct fwd_bad_case {
    const char *what;
    bk_ssd_fwd_args args;
    bk_status want;
} fwd_bad_case;

/* Appends cases[nc++]: `good` with `field` set to `value`. */
#define FWD_CASE(text, field, value, status) \
    cases[nc].what = text;                   \
    cases[nc].args = good;                   \
    cases[nc].args.field = value;            \
    cases[nc++].want = status

/* Runs each case through run and can_implement: the exact status, an error sentence, and
 * every output out[i] (bytes[i] bytes) still equal to its snapshot before[i]. */
static void expect_bad_cases(const bk_ssd_fwd_plan *plan, bk_workspace ws, const fwd_bad_case *cases, int nc,
                             void *const *out, void *const *before, const size_t *bytes, int n_out)
{
    for (int c = 0; c < nc; c++) {
        bkt_expect_status(bk_ssd_fwd_run(plan, NULL, ws, &cases[c].args), cases[c].want, cases[c].what);
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        bool same = true;
        for (int i = 0; i < n_out; i++)
            same = same && bkt_same_bytes(before[i], out[i], bytes[i]);
        bkt_check(same, cases[c].what, "output written on failure");
        bkt_expect_status(bk_ssd_fwd_can_implement(plan, &cases[c].args), cases[c].want, cases[c].what);
    }
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
    fwd_bad_case cases[24];
    int nc = 0;
#define CASE FWD_CASE
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
    {
        void *out[1] = {y}, *before[1] = {y0};
        size_t bytes[1] = {sizeof y};
        expect_bad_cases(&plan, (bk_workspace){ws, need}, cases, nc, out, before, bytes, 1);
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

/* ------------------------------------------------------------ options -- */

/* The outputs of an options run: y, and final / varlen states when the options ask. */
typedef struct opt_out {
    bkt_buf y, fin, var;
} opt_out;

static void opt_out_make(opt_out *out, const bkt_ssd_problem *p, int64_t pad)
{
    const bkt_ssd_opts *o = &p->o;
    int64_t sy[4] = {o->b, o->l, o->h, o->d}, sf[4] = {o->b, o->h, o->d, o->n}, sv[4] = {o->nv, o->h, o->d, o->n};
    memset(out, 0, sizeof *out);
    bkt_buf_make(&out->y, p->dtype, 4, sy, pad, 0, 0);
    bkt_poison(out->y.data, p->dtype, out->y.span);
    if (o->final) {
        bkt_buf_make(&out->fin, p->dtype, 4, sf, pad, 0, 0);
        bkt_poison(out->fin.data, p->dtype, out->fin.span);
    }
    if (o->nv > 0) {
        bkt_buf_make(&out->var, p->dtype, 4, sv, pad, 0, 0);
        bkt_poison(out->var.data, p->dtype, out->var.span);
    }
}

static void opt_out_free(opt_out *out)
{
    bkt_buf *b[3] = {&out->y, &out->fin, &out->var};
    for (int i = 0; i < 3; i++)
        if (b[i]->data)
            bkt_buf_free(b[i]);
}

/* Runs the plan on `target` with every input and output of p / out (copied to the device
 * and back on CUDA), a workspace of exactly workspace_size bytes. */
static bk_status run_opts_on(bk_target target, const bk_ssd_fwd_plan *plan, const bkt_ssd_problem *p, opt_out *out)
{
    bkt_dev dev = bkt_dev_begin(target);
    bk_tensor slots[6], fin, var;
    bk_ssd_fwd_args a = bkt_ssd_fwd_inputs_on(&dev, p, slots);
    a.y = bkt_buf_on(&dev, &out->y, true);
    a.final_states = bkt_opt_on(&dev, &out->fin, true, &fin);
    a.varlen_states = bkt_opt_on(&dev, &out->var, true, &var);
    return run_fwd_dev(&dev, plan, &a);
}

/* One options problem on `target` against the fixture's reference: y, final and varlen
 * states, every element. Returns false, having run nothing, when a CUDA target's kernels
 * refuse the options (the refusal itself is checked in test_option_bad_inputs). */
static bool test_options_on(bk_target target, bk_preference pref, bk_dtype dt, const bkt_ssd_opts *o, int64_t pad)
{
    char what[256], txt[200];
    bkt_ssd_opts_text(o, txt, sizeof txt);
    snprintf(what, sizeof what, "ssd_fwd %s%s%s%s%s", bk_dtype_name(dt), txt, pad ? " strided" : "",
             target.kind == BK_TARGET_CUDA ? " cuda" : "", pref == BK_PREFER_ALLOW_TF32 ? " tf32" : "");
    bkt_ssd_problem p;
    bkt_ssd_make(&p, o, dt, pad);
    bk_ssd_desc d = bkt_ssd_desc(&p);
    bk_ssd_fwd_plan plan;
    bk_status st = bk_ssd_fwd_select(&d, target, pref, &plan);
    if (target.kind == BK_TARGET_CUDA && st == BK_STATUS_UNSUPPORTED) {
        bkt_ssd_free(&p);
        return false;
    }
    opt_out out;
    opt_out_make(&out, &p, pad ? 1 : 0);
    double *y = malloc((size_t)(out.y.numel + 1) * sizeof(double));
    double *fin = malloc((size_t)(o->b * o->h * o->d * o->n + 1) * sizeof(double));
    double *var = malloc((size_t)(o->nv * o->h * o->d * o->n + 1) * sizeof(double));
    bkt_ssd_ref(&p, y, fin, o->nv > 0 ? var : NULL);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what) && check_math(what, &plan.info, pref, dt) &&
        bkt_expect_status(run_opts_on(target, &plan, &p, &out), BK_STATUS_SUCCESS, what)) {
        check_out(what, &plan.info, &out.y.view, y);
        if (o->final)
            check_out(what, &plan.info, &out.fin.view, fin);
        if (o->nv > 0)
            check_out(what, &plan.info, &out.var.view, var);
    }
    free(y);
    free(fin);
    free(var);
    opt_out_free(&out);
    bkt_ssd_free(&p);
    return true;
}

/* The option sweep: each option alone, then together, over shapes that cover odd lengths,
 * L = 1, L not a multiple of the chunk, chunk 1, one chunk, ngroups 1 / 2 / 8 / heads. */
static const bkt_ssd_opts k_opt_cases[] = {
    /* b  l   h  d  n  chunk G  skip                     z      bias   splus  limit  lo    hi   init   final  seq  every nv */
    {2, 13, 4, 3, 5, 4, 1, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 13, 4, 3, 5, 4, 2, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {1, 17, 8, 4, 3, 5, 8, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {1, 17, 8, 4, 3, 5, 2, BK_SSD_SKIP_PER_HEAD, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_PER_CHANNEL, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_NONE, true, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_NONE, false, true, false, false, 0, 0, false, false, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_NONE, false, false, true, false, 0, 0, false, false, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_NONE, false, true, true, true, 0.1, 0.6, false, false, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, false, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, false, 0, 0},
    {2, 11, 3, 5, 4, 4, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, false, 0, 0},
    {2, 23, 2, 3, 4, 8, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, true, 4, 0},
    {2, 23, 2, 3, 4, 8, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, true, 3, 0},
    {1, 29, 2, 3, 4, 8, 1, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, false, 0, 4},
    {1, 1, 4, 3, 4, 8, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, false, 0, 0, true, true, true, 2, 0},
    {3, 1, 4, 2, 3, 1, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, true, 0.05, 2, true, true, false, 0, 0},
    {2, 37, 8, 4, 5, 7, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, true, 0.0, 1.5, true, true, true, 5, 0},
    {1, 37, 8, 4, 5, 7, 8, BK_SSD_SKIP_PER_CHANNEL, true, true, true, false, 0, 0, true, true, false, 0, 5},
    {2, 40, 4, 6, 3, 1, 1, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, true, true, true, 6, 0},
    {1, 50, 4, 6, 3, 64, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, true, 9, 0},
    {1, 0, 2, 3, 4, 4, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, false, 0, 2},
    /* per-token options only, D and N multiples of 8: the CUDA forward's vectorised path too */
    {2, 70, 4, 16, 32, 64, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, false, false, false, 0, 0},
    {1, 130, 8, 16, 16, 64, 1, BK_SSD_SKIP_PER_HEAD, true, false, true, false, 0, 0, false, false, false, 0, 0},
    {1, 130, 8, 24, 8, 64, 4, BK_SSD_SKIP_NONE, false, true, false, false, 0, 0, false, false, false, 0, 0},
    /* 128 (b, h) state tiles, seq_idx resets inside chunks (padded here, so the generic
     * kernels; unpadded in k_vec_cases, the fused chunk_state_pass_v) */
    {2, 150, 64, 16, 16, 64, 4, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, false, false, true, 7, 0},
    /* the same with states in and out and no seq_idx: the fused pass carries them */
    {2, 131, 64, 16, 16, 64, 4, BK_SSD_SKIP_PER_CHANNEL, true, true, true, false, 0, 0, true, true, false, 0, 0},
    /* states without packed sequences: the CUDA forward takes them (L = 0 included) */
    {2, 100, 4, 16, 16, 64, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, false, 0, 0},
    {2, 0, 4, 3, 5, 8, 2, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, false, 0, 0},
    {3, 0, 2, 3, 5, 8, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, false, 0, 0},
    {2, 0, 2, 3, 4, 4, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, true, 2, 0},
    /* varlen states over several of the CUDA kernels' 64-step chunks: with the resets of
     * cu_seqlens, and without (states carried across sequences) */
    {1, 150, 4, 8, 16, 64, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, true, 0, 4},
    {1, 200, 2, 3, 4, 8, 1, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, false, 0, 3},
    {1, 130, 3, 4, 5, 16, 0, BK_SSD_SKIP_NONE, false, true, true, false, 0, 0, true, false, true, 0, 6},
};

/* Options change nothing they should not: chunk_size invariance with every option on, and a
 * bit-identical rerun. */
static void test_options_chunk_invariance(void)
{
    const char *what = "ssd_fwd f64 options chunk_size invariance";
    bkt_ssd_opts o = {2, 45, 4, 3, 4, 1, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 2, true, true,
                      true, 4, 0};
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, BK_DTYPE_F64, 0);
    opt_out first, out;
    opt_out_make(&first, &p, 0);
    static const int32_t chunks[] = {1, 3, 8, 44, 45, 46, 1 << 30};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        p.o.chunk = chunks[i];
        bk_ssd_desc d = bkt_ssd_desc(&p);
        bk_ssd_fwd_plan plan;
        opt_out *cur = i == 0 ? &first : &out;
        if (i > 0)
            opt_out_make(&out, &p, 0);
        if (bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                              what) &&
            bkt_expect_status(run_opts_on(bk_target_cpu(), &plan, &p, cur), BK_STATUS_SUCCESS, what) && i > 0) {
            double e1 = bkt_rel_err((const double *)out.y.data, (const double *)first.y.data, out.y.numel);
            double e2 = bkt_rel_err((const double *)out.fin.data, (const double *)first.fin.data, out.fin.numel);
            bkt_check(e1 <= 1e-13 && e2 <= 1e-13, what, "chunk %d vs chunk 1: y %.3e, final %.3e", (int)chunks[i], e1,
                      e2);
        }
        if (i > 0 && chunks[i] == 8) { /* rerun over the previous outputs: bit-identical */
            void *y0 = bkt_snapshot(out.y.data, (size_t)out.y.span * 8);
            bkt_expect_status(run_opts_on(bk_target_cpu(), &plan, &p, &out), BK_STATUS_SUCCESS, what);
            bkt_check(bkt_same_bytes(y0, out.y.data, (size_t)out.y.span * 8), what, "rerun is not bit-identical");
            bkt_free(y0);
        }
        if (i > 0)
            opt_out_free(&out);
    }
    opt_out_free(&first);
    bkt_ssd_free(&p);
}

/* Cases for the CUDA forward's vectorised kernels, never padded (k_opt_cases pads one case
 * in three, which sends it to the generic kernels): N of 3 and 4 blocks of 64 (chunk_scan_v's
 * NV64); 64+ (b, h) with D <= 64 and N <= 128, the fused forward (one block per (b, h)),
 * with seq_idx resets inside chunks (k_opt_cases has it padded), every option at the bench's
 * D and N, partial D and N tiles (N of 1 and 2 blocks of 64), ngroups = heads, one chunk
 * (L 1 and L 64); and D 128
 * with 32 heads, the chunk-parallel scan after the fused state pass (initial and final
 * states there). */
static const bkt_ssd_opts k_vec_cases[] = {
    {1, 70, 2, 16, 136, 64, 1, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {1, 70, 2, 8, 256, 64, 2, BK_SSD_SKIP_PER_HEAD, true, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 150, 64, 16, 16, 64, 4, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, false, false, true, 7, 0},
    {2, 131, 64, 64, 128, 64, 8, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, true, true, true, 7, 0},
    {1, 200, 64, 40, 72, 64, 1, BK_SSD_SKIP_PER_HEAD, false, true, true, false, 0, 0, false, true, false, 0, 0},
    {2, 70, 32, 24, 56, 64, 32, BK_SSD_SKIP_NONE, true, false, false, false, 0, 0, true, false, false, 0, 0},
    {2, 1, 32, 8, 8, 64, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, false, 0, 0},
    {1, 64, 64, 16, 32, 64, 2, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, true, 5, 0},
    {1, 130, 32, 128, 128, 64, 4, BK_SSD_SKIP_PER_HEAD, true, false, false, false, 0, 0, true, true, false, 0, 0},
};

/* The sweep on `target` (the kernels `pref` selects); cases a CUDA target refuses are
 * counted in one skip line. */
static void test_options(bk_target target, bk_preference pref, const bk_dtype *dts, size_t ndt)
{
    int refused = 0, total = 0;
    for (size_t t = 0; t < ndt; t++) {
        for (size_t c = 0; c < sizeof k_opt_cases / sizeof k_opt_cases[0]; c++, total++)
            refused += !test_options_on(target, pref, dts[t], &k_opt_cases[c], (c % 3) == 1 ? 2 : 0);
        for (size_t c = 0; c < sizeof k_vec_cases / sizeof k_vec_cases[0]; c++, total++)
            refused += !test_options_on(target, pref, dts[t], &k_vec_cases[c], 0);
    }
    if (refused) {
        char why[96];
        snprintf(why, sizeof why, "%d of %d cases use options the CUDA kernels do not implement yet", refused, total);
        bkt_skip("ssd_fwd options cuda", why);
    }
}

/* CUDA does not read cu_seqlens on the host: a sequence whose bounds are out of order gets
 * a zero state, and the others the states they get from well-formed bounds with the same
 * last positions (bit for bit); run succeeds. */
static void test_varlen_bounds_cuda(bk_target gpu)
{
    const char *what = "ssd_fwd cuda varlen out-of-order bounds";
    const bkt_ssd_opts o = {1, 90, 2, 3, 4, 8, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false,
                            true, 0, 3};
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, BK_DTYPE_F32, 0);
    bk_ssd_desc d = bkt_ssd_desc(&p);
    bk_ssd_fwd_plan plan;
    if (bkt_expect_status(bk_ssd_fwd_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
        opt_out bad, good;
        opt_out_make(&bad, &p, 0);
        opt_out_make(&good, &p, 0);
        const int32_t cut_bad[4] = {0, 70, 40, 90}, cut_good[4] = {0, 70, 70, 90};
        memcpy(p.cu, cut_bad, sizeof cut_bad);
        bkt_expect_status(run_opts_on(gpu, &plan, &p, &bad), BK_STATUS_SUCCESS, what);
        memcpy(p.cu, cut_good, sizeof cut_good);
        bkt_expect_status(run_opts_on(gpu, &plan, &p, &good), BK_STATUS_SUCCESS, what);
        const size_t per = (size_t)(o.h * o.d * o.n) * sizeof(float);
        bkt_check(bkt_same_bytes(bad.var.data, good.var.data, 3 * per), what, "states differ from well-formed bounds");
        bool zero = true;
        for (size_t i = 0; i < per / sizeof(float); i++)
            zero &= ((const float *)bad.var.data)[per / sizeof(float) + i] == 0.f;
        bkt_check(zero, what, "the out-of-order sequence's state is not zero");
        opt_out_free(&bad);
        opt_out_free(&good);
    }
    bkt_ssd_free(&p);
}

/* The options' bad inputs: descriptor fields, option tensors present / absent against the
 * descriptor, their shapes and dtypes, malformed cu_seqlens; the exact status, a sentence,
 * nothing written. The CUDA backward refuses every option in select. */
static void test_option_bad_inputs(void)
{
    const bk_target cpu = bk_target_cpu();
    bkt_ssd_opts o = {1, 12, 4, 3, 5, 4, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, true, 0, 3};
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, BK_DTYPE_F32, 0);
    const bk_ssd_desc d = bkt_ssd_desc(&p);
    bk_ssd_desc bad;
    bk_ssd_fwd_plan plan;
    struct {
        const char *what;
        int field;
        bk_status want;
        const char *msg;
    } dcases[] = {
        {"ssd_fwd ngroups -1", 0, BK_STATUS_INVALID_PROBLEM, "ssd_fwd: desc.ngroups is -1, expected >= 0"},
        {"ssd_fwd ngroups 3 of 4 heads", 1, BK_STATUS_INVALID_PROBLEM,
         "ssd_fwd: desc.heads (4) is not a multiple of desc.ngroups (3)"},
        {"ssd_fwd skip 3", 2, BK_STATUS_INVALID_PROBLEM, NULL},
        {"ssd_fwd dt_min > dt_max", 3, BK_STATUS_INVALID_PROBLEM, NULL},
        {"ssd_fwd dt_max NaN", 4, BK_STATUS_INVALID_PROBLEM, NULL},
        {"ssd_fwd n_varlen_seqs -1", 5, BK_STATUS_INVALID_PROBLEM, NULL},
        {"ssd_fwd varlen with batch 2", 6, BK_STATUS_INVALID_PROBLEM,
         "ssd_fwd: desc.batch is 2, expected 1 with varlen states (n_varlen_seqs 3)"},
    };
    for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
        bad = d;
        switch (dcases[i].field) {
        case 0: bad.ngroups = -1; break;
        case 1: bad.ngroups = 3; break;
        case 2: bad.skip = (bk_ssd_skip)3; break;
        case 3: bad.has_dt_limit = true, bad.dt_min = 1, bad.dt_max = 0.5; break;
        case 4: bad.has_dt_limit = true, bad.dt_min = 0, bad.dt_max = NAN; break;
        case 5: bad.n_varlen_seqs = -1; break;
        case 6: bad.batch = 2; break;
        }
        memset(&plan, 0xab, sizeof plan);
        bk_ssd_fwd_plan before = plan;
        bkt_expect_status(bk_ssd_fwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), dcases[i].want, dcases[i].what);
        bkt_check(memcmp(&before, &plan, sizeof plan) == 0, dcases[i].what, "plan written on failure");
        if (dcases[i].msg)
            bkt_check(strcmp(bk_last_error(), dcases[i].msg) == 0, dcases[i].what, "got \"%s\"", bk_last_error());
        else
            bkt_check(bk_last_error()[0] != '\0', dcases[i].what, "no error sentence");
        bk_ssd_bwd_plan bplan;
        bkt_expect_status(bk_ssd_bwd_select(&bad, cpu, BK_PREFER_FASTEST, &bplan), dcases[i].want, dcases[i].what);
    }
    bk_ssd_bwd_plan bplan;
    bkt_expect_status(bk_ssd_bwd_select(&d, cpu, BK_PREFER_FASTEST, &bplan), BK_STATUS_UNSUPPORTED,
                      "ssd_bwd varlen states");
    bkt_check(strstr(bk_last_error(), "n_varlen_seqs") != NULL, "ssd_bwd varlen message", "got \"%s\"", bk_last_error());
    /* every option alone on a CUDA target: the forward takes each one; so does the
     * backward, but varlen states (no backward on any target, naming n_varlen_seqs) */
    for (int k = 0; k < 10; k++) {
        bk_ssd_desc c = {.batch = 1, .seq_len = 8, .heads = 4, .head_dim = 4, .state_dim = 4, .chunk_size = 4,
                         .dtype = BK_DTYPE_BF16};
        switch (k) {
        case 0: c.ngroups = 2; break;
        case 1: c.skip = BK_SSD_SKIP_PER_HEAD; break;
        case 2: c.has_z = true; break;
        case 3: c.has_dt_bias = true; break;
        case 4: c.dt_softplus = true; break;
        case 5: c.has_dt_limit = true, c.dt_max = 1; break;
        case 6: c.has_initial_states = true; break;
        case 7: c.has_final_states = true; break;
        case 8: c.has_seq_idx = true; break;
        case 9: c.n_varlen_seqs = 2; break;
        }
        char what[64];
        snprintf(what, sizeof what, "ssd_fwd option %d on sm_90", k);
#ifdef BK_WITH_CUDA
        const bool taken = true;
#else
        const bool taken = false;
#endif
        bkt_expect_status(bk_ssd_fwd_select(&c, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                          taken ? BK_STATUS_SUCCESS : BK_STATUS_UNSUPPORTED, what);
#ifdef BK_WITH_CUDA
        if (!taken)
            bkt_check(strstr(bk_last_error(), "not implemented by this kernel") != NULL, what, "got \"%s\"",
                      bk_last_error());
        bk_ssd_bwd_plan bp;
        snprintf(what, sizeof what, "ssd_bwd option %d on sm_90", k);
        bkt_expect_status(bk_ssd_bwd_select(&c, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &bp),
                          k == 9 ? BK_STATUS_UNSUPPORTED : BK_STATUS_SUCCESS, what);
        if (k == 9)
            bkt_check(strstr(bk_last_error(), "n_varlen_seqs") != NULL, what, "got \"%s\"", bk_last_error());
#endif
        bkt_expect_status(bk_ssd_fwd_select(&c, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what);
    }
    /* ngroups = heads is the plain problem: every target takes it */
    bk_ssd_desc same = {.batch = 1, .seq_len = 8, .heads = 4, .head_dim = 4, .state_dim = 4, .chunk_size = 4,
                        .dtype = BK_DTYPE_BF16, .ngroups = 4};
#ifdef BK_WITH_CUDA
    bkt_expect_status(bk_ssd_fwd_select(&same, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "ssd_fwd ngroups = heads on sm_90");
#else
    bkt_expect_status(bk_ssd_fwd_select(&same, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "ssd_fwd ngroups = heads");
#endif

    /* tensors */
    bkt_expect_status(bk_ssd_fwd_select(&d, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, "ssd_fwd options select");
    opt_out out;
    opt_out_make(&out, &p, 0);
    bk_ssd_fwd_args good = bkt_ssd_fwd_inputs(&p);
    good.y = out.y.view;
    good.final_states = &out.fin.view;
    good.varlen_states = &out.var.view;
    bk_tensor b_heads = p.b.view, seq_i64 = p.seq_view, skip_2d = p.skip.view, cu_short = p.cu_view;
    b_heads.shape[2] = 4;
    seq_i64.dtype = BK_DTYPE_I64;
    skip_2d.rank = 2, skip_2d.shape[1] = 3, skip_2d.strides[0] = 3, skip_2d.strides[1] = 1;
    cu_short.shape[0] = 3;
    size_t need = bk_ssd_fwd_workspace_size(&plan);
    void *ws = malloc(need);
    const size_t yb = (size_t)out.y.span * 4, fb = (size_t)out.fin.span * 4, vb = (size_t)out.var.span * 4;
    void *y0 = bkt_snapshot(out.y.data, yb), *f0 = bkt_snapshot(out.fin.data, fb), *v0 = bkt_snapshot(out.var.data, vb);
    fwd_bad_case cases[16];
    int nc = 0;
#define CASE FWD_CASE
    CASE("ssd_fwd b per head with ngroups 2", b, b_heads, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd skip NULL", skip, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd skip [heads, head_dim] for per head", skip, &skip_2d, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd z NULL", z, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd dt_bias NULL", dt_bias, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd initial_states NULL", initial_states, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd seq_idx NULL", seq_idx, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd seq_idx i64", seq_idx, &seq_i64, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd cu_seqlens NULL", cu_seqlens, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd cu_seqlens short", cu_seqlens, &cu_short, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd final_states NULL", final_states, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_fwd varlen_states NULL", varlen_states, NULL, BK_STATUS_INVALID_PROBLEM);
#undef CASE
    void *outs[3] = {out.y.data, out.fin.data, out.var.data}, *before[3] = {y0, f0, v0};
    const size_t bytes[3] = {yb, fb, vb};
    expect_bad_cases(&plan, (bk_workspace){ws, need}, cases, nc, outs, before, bytes, 3);
    bk_ssd_fwd_run(&plan, NULL, (bk_workspace){ws, need}, &cases[1].args);
    bkt_check(strcmp(bk_last_error(), "ssd_fwd: skip is NULL, expected a [heads] tensor since desc.skip is on") == 0,
              "ssd_fwd optional NULL message", "got \"%s\"", bk_last_error());
    /* an option's tensor given while the option is off */
    bk_ssd_desc off = d;
    off.has_z = false;
    bk_ssd_fwd_plan oplan;
    bk_ssd_fwd_select(&off, cpu, BK_PREFER_FASTEST, &oplan);
    bkt_expect_status(bk_ssd_fwd_run(&oplan, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_INVALID_PROBLEM,
                      "ssd_fwd z given with has_z off");
    bkt_check(strcmp(bk_last_error(), "ssd_fwd: z is given, expected NULL since desc.has_z is off") == 0,
              "ssd_fwd optional given message", "got \"%s\"", bk_last_error());
    /* malformed cu_seqlens data (read on the host) */
    const int32_t keep[4] = {p.cu[0], p.cu[1], p.cu[2], p.cu[3]};
    for (int k = 0; k < 3; k++) {
        static const char *const names[3] = {"ssd_fwd cu_seqlens[0] = 1", "ssd_fwd cu_seqlens decreasing",
                                              "ssd_fwd cu_seqlens[3] != seq_len"};
        memcpy(p.cu, keep, sizeof keep);
        if (k == 0)
            p.cu[0] = 1;
        else if (k == 1)
            p.cu[1] = 13, p.cu[2] = 2;
        else
            p.cu[3] = 11;
        bkt_expect_status(bk_ssd_fwd_run(&plan, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_INVALID_PROBLEM,
                          names[k]);
        bkt_check(strstr(bk_last_error(), "nothing was written") != NULL, names[k], "got \"%s\"", bk_last_error());
        bool same = true;
        for (int i = 0; i < 3; i++)
            same = same && bkt_same_bytes(before[i], outs[i], bytes[i]);
        bkt_check(same, names[k], "output written on failure");
    }
    memcpy(p.cu, keep, sizeof keep);
    bkt_expect_status(bk_ssd_fwd_run(&plan, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_SUCCESS,
                      "ssd_fwd options good call after bad ones");
    free(ws);
    bkt_free(y0);
    bkt_free(f0);
    bkt_free(v0);
    opt_out_free(&out);
    bkt_ssd_free(&p);
}

/* The TF32 plan (BK_PREFER_ALLOW_TF32, f32) on the device: the cases of the 16-bit
 * tensor-core path (k_cases in three variants, the larger shapes, strided views with
 * strides of 8 elements, the option sweep: ngroups, skip, z, dt_bias/softplus/limit,
 * initial/final/varlen states, seq_idx, odd lengths) against the f64 reference with
 * check_out's TF32 tolerance, each with a bit-identical rerun; and on the bench shape's D
 * and N its y is not the exact plan's (another kernel ran), while within its tolerance. */
static void test_tf32_cuda(bk_target gpu, bool quick)
{
    const bk_preference tf = BK_PREFER_ALLOW_TF32;
    const bk_dtype f32 = BK_DTYPE_F32;
    for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
        test_forward(gpu, tf, f32, k_cases[c], (c & 1) != 0, 0.1);
        if (quick)
            continue;
        test_forward(gpu, tf, f32, k_cases[c], (c & 1) == 0, 0.1);
        test_forward(gpu, tf, f32, k_cases[c], (c & 1) != 0, 1.0);
    }
    static const ssd_case big[] = {
        {1, 1000, 2, 32, 48, 64}, {2, 200, 2, 256, 256, 64}, {4, 512, 4, 64, 128, 64}, {2, 300, 32, 64, 128, 64}};
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++)
        if (!quick || c == 0)
            test_forward(gpu, tf, f32, big[c], c == 1, c == 2 ? 1.0 : 0.1);
    static const ssd_case vec[] = {{2, 130, 3, 32, 48, 64}, {1, 200, 2, 72, 24, 64}};
    for (size_t c = 0; c < sizeof vec / sizeof vec[0]; c++)
        test_forward_pad(gpu, tf, f32, vec[c], 8, c ? 3 : 8, 0.1);
    test_options(gpu, tf, &f32, 1);

    const char *what = "ssd_fwd cuda tf32 is not the exact plan";
    const ssd_case s = {2, 256, 4, 64, 128, 64};
    ssd_inputs in;
    make_inputs(&in, s, f32, 0, 0.001, 0.1);
    int64_t shape[4] = {s.b, s.l, s.h, s.d}, n = s.b * s.l * s.h * s.d, yspan;
    void *ybuf;
    bk_tensor y = make_tensor(f32, 4, shape, 0, &ybuf, 0, 0, &yspan);
    double *exact = malloc((size_t)n * sizeof(double));
    bk_ssd_desc d = desc_of(s, f32);
    bk_ssd_fwd_plan pe, pt;
    if (bkt_expect_status(bk_ssd_fwd_select(&d, gpu, BK_PREFER_FASTEST, &pe), BK_STATUS_SUCCESS, what) &&
        bkt_expect_status(bk_ssd_fwd_select(&d, gpu, tf, &pt), BK_STATUS_SUCCESS, what) &&
        bkt_expect_status(run_fwd_on(gpu, &pe, &in, y, yspan), BK_STATUS_SUCCESS, what)) {
        bkt_gather(&y, exact);
        bkt_poison(ybuf, f32, yspan);
        if (bkt_expect_status(run_fwd_on(gpu, &pt, &in, y, yspan), BK_STATUS_SUCCESS, what)) {
            double *got = malloc((size_t)n * sizeof(double));
            bkt_gather(&y, got);
            const double e = bkt_rel_err(got, exact, n);
            bkt_check(e > 0.0 && e <= k_tf32_slack * bkt_tol_tf32(exact, n), what,
                      "tf32 against exact f32: relative difference %.3e", e);
            free(got);
        }
    }
    free(exact);
    bkt_free(ybuf);
    free_inputs(&in);
}

/* ssd_fwd_select as bkt_ssd_select_fn (bkt_ssd_tf32_select). */
BKT_SSD_SELECT_INFO(fwd_select_info, bk_ssd_fwd_plan, bk_ssd_fwd_select, bk_ssd_fwd_workspace_size)

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
            test_forward(gpu, BK_PREFER_FASTEST, gdt[t], k_cases[c], (c & 1) != 0, 0.1);
            if (quick)
                continue;
            test_forward(gpu, BK_PREFER_FASTEST, gdt[t], k_cases[c], (c & 1) == 0, 0.1);
            test_forward(gpu, BK_PREFER_FASTEST, gdt[t], k_cases[c], (c & 1) != 0, 1.0);
        }
    static const ssd_case big[] = {
        {1, 1000, 2, 32, 48, 64}, /* 16 chunks, the last one partial */
        {2, 200, 2, 256, 256, 64},
        {4, 512, 4, 64, 128, 64}, /* the bench shape's D, N and chunk, shorter */
        {2, 300, 32, 64, 128, 64}, /* 64 (b, h): the fused forward (bf16), a block per (b, h) */
    };
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++) {
        if (quick && c != 0)
            continue;
        test_forward(gpu, BK_PREFER_FASTEST, BK_DTYPE_F32, big[c], c == 1, 0.1);
        test_forward(gpu, BK_PREFER_FASTEST, BK_DTYPE_BF16, big[c], false, 0.1);
        if (c == 0)
            test_forward(gpu, BK_PREFER_FASTEST, BK_DTYPE_F16, big[c], true, 1.0);
    }
    /* f16/bf16 with D, N multiples of 8 and 16-byte aligned rows take the vectorised kernels
     * (every contiguous case above with such D, N does too): strided views with strides that
     * are multiples of 8 elements (odd chunk count, partial D tile, N = 48 cut into slices of
     * 21 and 11 rows for the 16-bit states), and a y whose strides are not (the other path). */
    static const ssd_case vec[] = {{2, 130, 3, 32, 48, 64}, {1, 200, 2, 72, 24, 64}};
    for (size_t c = 0; c < sizeof vec / sizeof vec[0]; c++) {
        test_forward_pad(gpu, BK_PREFER_FASTEST, BK_DTYPE_BF16, vec[c], 8, 8, 0.1);
        if (quick)
            continue;
        test_forward_pad(gpu, BK_PREFER_FASTEST, BK_DTYPE_F16, vec[c], 8, 8, 1.0);
        test_forward_pad(gpu, BK_PREFER_FASTEST, BK_DTYPE_BF16, vec[c], 8, 3, 0.1);
    }
    test_options(gpu, BK_PREFER_FASTEST, gdt, sizeof gdt / sizeof gdt[0]);
    test_varlen_bounds_cuda(gpu);
    test_tf32_cuda(gpu, quick);
    const char *what = "ssd_fwd cuda plan info";
    bk_ssd_desc d = {.batch = 2, .seq_len = 33, .heads = 3, .head_dim = 16,
                     .state_dim = 16, .chunk_size = 16, .dtype = BK_DTYPE_BF16};
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
    bk_ssd_desc d = {.batch = INT32_MAX, .seq_len = INT32_MAX, .heads = INT32_MAX, .head_dim = 256, .state_dim = 256,
                     .chunk_size = 64, .dtype = dt};
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
        bk_ssd_fwd_args a = {.x = x, .dt = bkt_view_huge(in, dt, 3, sdt), .a = bkt_view_huge(in, dt, 1, sa), .b = x,
                             .c = x, .y = bkt_view_huge(out, dt, 4, sx)};
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
            test_forward(bk_target_cpu(), BK_PREFER_FASTEST, k_dtypes[t], k_cases[c], false, 0.1);
            test_forward(bk_target_cpu(), BK_PREFER_FASTEST, k_dtypes[t], k_cases[c], true, 0.1);
            test_forward(bk_target_cpu(), BK_PREFER_FASTEST, k_dtypes[t], k_cases[c], (c & 1) != 0, 1.0);
        }
    test_options(bk_target_cpu(), BK_PREFER_FASTEST, k_dtypes, sizeof k_dtypes / sizeof k_dtypes[0]);
    test_options_chunk_invariance();
    test_option_bad_inputs();
    test_plan_info();
    bkt_ssd_tf32_select("ssd_fwd", fwd_select_info);
    test_chunk_invariance();
    test_thread_count();
    test_bad_inputs();
    test_cuda();
    test_overflow();
    return bkt_finish();
}
