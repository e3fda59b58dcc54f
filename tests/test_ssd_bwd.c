/* test_ssd_bwd.c - ssd_bwd (Mamba-2 SSD chunk scan backward) against reverse-mode
 * differentiation of the sequential recurrence in f64 written here, and against central
 * finite differences of the library's own f64 forward; every dtype, odd sizes, every
 * chunk_size regime, strided views; chunk_size invariance, determinism (rerun over the
 * previous outputs, so accumulation would show; thread count), empty problems (dA still
 * written), bad inputs with their exact status and untouched outputs. The options
 * (ngroups, skip, z, dt_bias, softplus, dt limit, initial/final states, seq_idx): every
 * gradient (dskip, dz, ddt_bias, dinitial_states included, dB/dC summed over groups)
 * against central finite differences of the fixture's sequential f64 reference
 * (bk_ssd_test.c), every dtype, on the CPU and on CUDA (every option: a refusal fails;
 * several 64-step chunks with seq_idx changes at chunk edges; larger shapes against the
 * CPU backward). On CUDA, f16/bf16 run the tensor-core backward (every case with
 * head_dim, state_dim > 0; its plan says BK_MATH_F16_BF16_TENSOR), and so does f32 under
 * BK_PREFER_ALLOW_TF32 (the TF32 plan: BK_MATH_TF32, the same sweeps with a TF32
 * tolerance); without it f32 keeps the exact plan. */
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
    {1, 1, 1, 1, 1, 1},     {2, 7, 3, 5, 16, 7},     {1, 33, 2, 16, 5, 7},  {2, 33, 3, 1, 64, 16},
    {1, 130, 2, 64, 16, 64}, {2, 130, 1, 16, 64, 16}, {1, 130, 2, 5, 1, 1},  {1, 33, 1, 64, 64, 100},
    {1, 5, 1, 256, 256, 2}, {3, 1, 2, 7, 3, 64},     {2, 0, 2, 4, 4, 3},    {0, 3, 2, 4, 4, 3},
    {1, 7, 2, 0, 3, 2},     {1, 7, 2, 3, 0, 2},
};

/* The tensors of one backward problem, by index. */
enum { IX, IDT, IA, IB, IC, IDY, ODX, ODDT, ODA, ODB, ODC, NT };
static const char *const k_names[NT] = {"x", "dt", "a", "b", "c", "dy", "dx", "ddt", "da", "db", "dc"};
/* Which shape each has: 0 [B,L,H,D], 1 [B,L,H], 2 [H], 3 [B,L,H,N]. */
static const int k_role[NT] = {0, 1, 2, 3, 3, 0, 0, 1, 2, 3, 3};

typedef struct ssd_problem {
    ssd_case s;
    bk_dtype dtype;
    void *buf[NT];
    int64_t span[NT]; /* elements of each buffer */
    bk_tensor view[NT];
    double *val[NT]; /* inputs as f64, row-major */
} ssd_problem;

static int32_t shape_of(const ssd_case *s, int role, int64_t *shape)
{
    switch (role) {
    case 0: shape[0] = s->b, shape[1] = s->l, shape[2] = s->h, shape[3] = s->d; return 4;
    case 1: shape[0] = s->b, shape[1] = s->l, shape[2] = s->h; return 3;
    case 2: shape[0] = s->h; return 1;
    default: shape[0] = s->b, shape[1] = s->l, shape[2] = s->h, shape[3] = s->n; return 4;
    }
}

static int64_t count_of(const ssd_case *s, int role)
{
    int64_t shape[4];
    int32_t rank = shape_of(s, role, shape);
    int64_t n = 1;
    for (int32_t i = 0; i < rank; i++)
        n *= shape[i];
    return n;
}

/* Fresh inputs (dt in [dt_lo, dt_hi), A in [-2, -0.1), the rest in [-1, 1)) and poisoned
 * outputs; when pad > 0 the views are padded by `pad` elements per axis (outputs by
 * pad + 1; A and dA stay dense), else every view is contiguous. */
static void make_problem(ssd_problem *p, ssd_case s, bk_dtype dt, int64_t pad, double dt_lo, double dt_hi)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->dtype = dt;
    for (int k = 0; k < NT; k++) {
        int64_t shape[4];
        int32_t rank = shape_of(&s, k_role[k], shape);
        int64_t kpad = k_role[k] == 2 || pad == 0 ? 0 : pad + (k >= ODX ? 1 : 0);
        bk_tensor probe = bkt_view_padded(NULL, dt, rank, shape, kpad);
        p->span[k] = bkt_view_span(&probe) + 1;
        p->buf[k] = bkt_alloc(dt, p->span[k]);
        p->view[k] = bkt_view_padded(p->buf[k], dt, rank, shape, kpad);
        if (k >= ODX) {
            bkt_poison(p->buf[k], dt, p->span[k]);
            continue;
        }
        double lo = -1, hi = 1;
        if (k == IDT)
            lo = dt_lo, hi = dt_hi;
        if (k == IA)
            lo = -2, hi = -0.1;
        bkt_fill(p->buf[k], dt, p->span[k], lo, hi);
        p->val[k] = malloc((size_t)(count_of(&s, k_role[k]) + 1) * sizeof(double));
        bkt_gather(&p->view[k], p->val[k]);
    }
}

static void free_problem(ssd_problem *p)
{
    for (int k = 0; k < NT; k++) {
        bkt_free(p->buf[k]);
        free(p->val[k]);
    }
}

static bk_ssd_bwd_args bwd_args(const ssd_problem *p)
{
    const bk_tensor *v = p->view;
    bk_ssd_bwd_args a = {.x = v[IX], .dt = v[IDT], .a = v[IA], .b = v[IB], .c = v[IC], .dy = v[IDY], .dx = v[ODX],
                         .ddt = v[ODDT], .da = v[ODA], .db = v[ODB], .dc = v[ODC]};
    return a;
}

/* Independent reference: reverse-mode differentiation of the sequential recurrence,
 * keeping every state h_t. With decay_t = exp(dt_t A):
 *   dh_t  = dy_t C_t^T + decay_{t+1} dh_{t+1}          (dh_L = 0)
 *   dC_t  = h_t^T dy_t
 *   dx_t  = dt_t dh_t B_t,      dB_t = dt_t dh_t^T x_t
 *   g_t   = <dh_t, h_{t-1}> (gradient of decay_t),     ga_t = decay_t g_t
 *   ddt_t = x_t^T dh_t B_t + A ga_t,                    dA += dt_t ga_t
 * out[k] receives the gradients in row-major order for k = ODX..ODC. da_mag[h] receives
 * sum_{b,t} dt_t decay_t sum_i |dh_t[i] h_{t-1}[i]|: the size of the terms dA[h] sums, so
 * a reduction that cancels is judged against what it added up, not against the small
 * result. ddt_mag[r] ([B, L, H]) receives ddt_t evaluated on absolute values throughout
 * (|x|, |dy|, |B|, |C|, |A|, and the states and dh_t those give): each rounding of a
 * factor perturbs a term by its relative size, so the rounding error of ddt_t, a sum
 * whose terms cancel, is bounded by a multiple of ddt_mag (check_by_terms). */
static void ref_bwd(const ssd_problem *p, double *out[NT], double *da_mag, double *ddt_mag)
{
    const ssd_case s = p->s;
    const int64_t D = s.d, N = s.n, L = s.l, H = s.h, DN = D * N;
    const double *x = p->val[IX], *dt = p->val[IDT], *A = p->val[IA], *B = p->val[IB], *C = p->val[IC],
                 *dy = p->val[IDY];
    double *hs = calloc((size_t)((L + 1) * DN + 1), sizeof(double)); /* hs[t+1] = h_t, hs[0] = 0 */
    double *dh = calloc((size_t)(DN + 1), sizeof(double));
    /* the same on absolute values, for ddt_mag */
    double *hs_abs = calloc((size_t)((L + 1) * DN + 1), sizeof(double));
    double *dh_abs = calloc((size_t)(DN + 1), sizeof(double));
    for (int64_t h = 0; h < H; h++)
        out[ODA][h] = da_mag[h] = 0.0;
    for (int64_t b = 0; b < s.b; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t t = 0; t < L; t++) {
                int64_t r = (b * L + t) * H + h;
                double decay = exp(dt[r] * A[h]);
                for (int64_t d = 0; d < D; d++)
                    for (int64_t n = 0; n < N; n++) {
                        const int64_t i = d * N + n;
                        hs[(t + 1) * DN + i] = decay * hs[t * DN + i] + dt[r] * x[r * D + d] * B[r * N + n];
                        hs_abs[(t + 1) * DN + i] =
                            decay * hs_abs[t * DN + i] + dt[r] * fabs(x[r * D + d] * B[r * N + n]);
                    }
            }
            memset(dh, 0, (size_t)DN * sizeof(double));
            memset(dh_abs, 0, (size_t)DN * sizeof(double));
            for (int64_t t = L - 1; t >= 0; t--) {
                int64_t r = (b * L + t) * H + h;
                const double *ht = hs + (t + 1) * DN, *hp = hs + t * DN, *hp_abs = hs_abs + t * DN;
                double decay = exp(dt[r] * A[h]);
                /* dh_t = dy_t C_t^T + (decay_{t+1} dh_{t+1}, already in dh) */
                for (int64_t d = 0; d < D; d++)
                    for (int64_t n = 0; n < N; n++) {
                        dh[d * N + n] += dy[r * D + d] * C[r * N + n];
                        dh_abs[d * N + n] += fabs(dy[r * D + d] * C[r * N + n]);
                    }
                for (int64_t n = 0; n < N; n++) {
                    double acc = 0.0;
                    for (int64_t d = 0; d < D; d++)
                        acc += ht[d * N + n] * dy[r * D + d];
                    out[ODC][r * N + n] = acc;
                }
                double xdhb = 0.0, xdhb_abs = 0.0;
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0.0, acc_abs = 0.0;
                    for (int64_t n = 0; n < N; n++) {
                        acc += dh[d * N + n] * B[r * N + n];
                        acc_abs += dh_abs[d * N + n] * fabs(B[r * N + n]);
                    }
                    out[ODX][r * D + d] = dt[r] * acc;
                    xdhb += x[r * D + d] * acc;
                    xdhb_abs += fabs(x[r * D + d]) * acc_abs;
                }
                for (int64_t n = 0; n < N; n++) {
                    double acc = 0.0;
                    for (int64_t d = 0; d < D; d++)
                        acc += dh[d * N + n] * x[r * D + d];
                    out[ODB][r * N + n] = dt[r] * acc;
                }
                double g = 0.0, g_mag = 0.0, g_abs = 0.0;
                for (int64_t i = 0; i < DN; i++) {
                    g += dh[i] * hp[i];
                    g_mag += fabs(dh[i] * hp[i]);
                    g_abs += dh_abs[i] * hp_abs[i];
                }
                double ga = decay * g;
                da_mag[h] += dt[r] * decay * g_mag;
                out[ODDT][r] = xdhb + A[h] * ga;
                ddt_mag[r] = xdhb_abs + fabs(A[h]) * decay * g_abs;
                out[ODA][h] += dt[r] * ga;
                for (int64_t i = 0; i < DN; i++) {
                    dh[i] *= decay;
                    dh_abs[i] *= decay;
                }
            }
        }
    free(hs);
    free(dh);
    free(hs_abs);
    free(dh_abs);
}

/* The first i with |got[i] - ref[i]| > tol (mag[i] + |ref[i]|), or -1 (NaN counts). */
static int64_t first_beyond_terms(const double *got, const double *ref, const double *mag, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - ref[i]) <= tol * (mag[i] + fabs(ref[i]))))
            return i;
    return -1;
}

/* got (n values) against ref, each element within `tol` (relative) of the magnitude of
 * its terms (mag) rather than of the possibly tiny result. */
static bool check_values_by_terms(const char *what, const double *got, const double *ref, const double *mag, int64_t n,
                                  double tol)
{
    const int64_t bad = first_beyond_terms(got, ref, mag, n, tol);
    return bkt_check(bad < 0, what, "element %lld = %.9g, expected %.9g (terms of size %.3g, tolerance %.2e)",
                     (long long)(bad < 0 ? 0 : bad), bad < 0 ? 0.0 : got[bad], bad < 0 ? 0.0 : ref[bad],
                     bad < 0 ? 0.0 : mag[bad], tol);
}

/* An output whose elements are sums with cancelling terms (dA[h] and ddt_bias[h] over
 * (b, t); ddt of the TF32 plan): check_values_by_terms on its n elements. Unwritten (NaN)
 * fails. */
static bool check_by_terms(const char *what, const bk_tensor *out, const double *ref, const double *mag, int64_t n,
                           double tol)
{
    double *got = malloc((size_t)(n + 1) * sizeof(double));
    bkt_gather(out, got);
    const bool ok = check_values_by_terms(what, got, ref, mag, n, tol);
    free(got);
    return ok;
}

/* The reference's own term sizes bound its result: |ref[i]| <= mag[i] (f64 rounding
 * aside), so check_by_terms judges a result against no less than its size. */
static bool check_terms_bound(const char *what, const double *ref, const double *mag, int64_t n)
{
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!(fabs(ref[i]) <= mag[i] * (1.0 + 1e-9) + 1e-300))
            bad = i;
    return bkt_check(bad < 0, what, "reference element %lld = %.9g above the size of its terms %.9g",
                     (long long)(bad < 0 ? 0 : bad), bad < 0 ? 0.0 : ref[bad], bad < 0 ? 0.0 : mag[bad]);
}

static bk_ssd_desc desc_of(ssd_case s, bk_dtype dt)
{
    bk_ssd_desc d = {.batch = (int32_t)s.b, .seq_len = (int32_t)s.l, .heads = (int32_t)s.h, .head_dim = (int32_t)s.d,
                     .state_dim = (int32_t)s.n, .chunk_size = s.chunk, .dtype = dt};
    return d;
}

static bk_status run_bwd(const bk_ssd_bwd_plan *plan, const bk_ssd_bwd_args *args)
{
    size_t bytes = bk_ssd_bwd_workspace_size(plan);
    void *ws = bytes ? malloc(bytes) : NULL;
    bk_status st = bk_ssd_bwd_run(plan, NULL, (bk_workspace){ws, bytes}, args);
    free(ws);
    return st;
}

/* Runs the plan with args whose tensors are on dev's target, a zeroed workspace of exactly
 * workspace_size bytes and dev's stream; ends dev (sync, outputs back, free). */
static bk_status run_bwd_dev(bkt_dev *dev, const bk_ssd_bwd_plan *plan, const bk_ssd_bwd_args *a)
{
    const size_t bytes = bk_ssd_bwd_workspace_size(plan);
    void *ws = bytes ? calloc(1, bytes) : NULL;
    void *dws = ws ? bkt_dev_in(dev, ws, bytes) : NULL;
    bk_status st = bk_ssd_bwd_run(plan, bkt_dev_stream(dev), (bk_workspace){dws, bytes}, a);
    if (!bkt_dev_end(dev) && st == BK_STATUS_SUCCESS)
        st = BK_STATUS_DEVICE_ERROR;
    free(ws);
    return st;
}

/* Runs the plan on `target` (inputs and outputs copied to the device and the outputs
 * back on CUDA, on a non-default stream), with a workspace of exactly workspace_size. */
static bk_status run_bwd_on(bk_target target, const bk_ssd_bwd_plan *plan, ssd_problem *p)
{
    const size_t es = bk_dtype_size(p->dtype);
    bkt_dev dev = bkt_dev_begin(target);
    bk_ssd_bwd_args a = bwd_args(p);
    bk_tensor *v[NT] = {&a.x, &a.dt, &a.a, &a.b, &a.c, &a.dy, &a.dx, &a.ddt, &a.da, &a.db, &a.dc};
    for (int k = 0; k < NT; k++)
        v[k]->data = k < ODX ? bkt_dev_in(&dev, p->buf[k], (size_t)p->span[k] * es)
                             : bkt_dev_out(&dev, p->buf[k], (size_t)p->span[k] * es);
    return run_bwd_dev(&dev, plan, &a);
}

static void case_name(char *buf, size_t size, bk_dtype dt, ssd_case s, const char *extra)
{
    snprintf(buf, size, "ssd_bwd %s B%lld L%lld H%lld D%lld N%lld chunk %d%s", bk_dtype_name(dt), (long long)s.b,
             (long long)s.l, (long long)s.h, (long long)s.d, (long long)s.n, (int)s.chunk, extra);
}

/* GPU slack of a 16-bit backward on tensor cores, as the forward's (test_ssd_fwd.c): its
 * products also round dL/du, the f32 states and state gradients and the masked weights
 * to 16 bits (f32 accumulate). A numpy model of those roundings on these tests' shapes and
 * inputs (every dtype, dt < 0.1 and < 1, the options) stayed within 1.6 of bkt_tol (the
 * output rounding alone: about 0.7); dx, dB, dC barely move, ddt, dinitial_states and dA
 * (sums that cancel) move most. That model bounds norms over many elements; a result of
 * one or a few elements sees the worst case instead: up to four operands of a product
 * rounded to 16 bits (dt x or dt B, dL/du, a state, a weight), then the output's own
 * rounding, 5 half-units. On the H100 (bench/RESULTS.md run 12, calls 4, 5 and 9, main and
 * this code) 3 failed about one run in three, on exactly such results (ddt_bias and dA of
 * 3-4 heads, dC of a one-element problem), and 4 once (dC, one element, 4.3): 5. */
static const double k_tc_slack = 5.0;

/* GPU slack of the TF32 plan (f32 data) against bkt_tol_tf32 (twice the reference's TF32
 * rounding): its tensor cores round to TF32 (10-bit mantissas, as f16) what the 16-bit
 * path rounds, the f32 inputs x, B, C, dy too, and dL/du once (the 16-bit path keeps it as
 * hi + lo). Calibrated on the H100 (bench/RESULTS.md run 12, call 5, 4 seeds): the worst
 * case was ddt_bias of 3 heads at 8.1x bkt_tol_tf32 (5 failed 3 of 4 runs): 10. A wrong
 * fragment layout or mask errs by 1e-1 to 1, 50x more. */
static const double k_tf32_slack = 10.0;

/* dA and ddt_bias of the TF32 plan: sums over the sequence whose terms cancel, fed by
 * inputs that TF32 rounds (the 16-bit path gets them exact), so their error relative to
 * the result grows with the cancellation: up to 45x bkt_tol_tf32 on the H100 (dA of 2-3
 * heads, bench/RESULTS.md run 12 call 10). 8 times k_tf32_slack; a fragment or mask bug
 * still errs 5x beyond. */
static const double k_tf32_sum_factor = 8.0;

/* The tolerance of an output of `plan` against an f64 reference: a TF32 plan's
 * k_tf32_slack bkt_tol_tf32, else bkt_tol times `slack` (the caller's, for the target and
 * dtype of the exact and 16-bit plans). */
static double plan_tol(const bk_plan_info *info, const bk_tensor *out, const double *ref, double slack)
{
    const int64_t n = bk_tensor_numel(out);
    return info->precision.math == BK_MATH_TF32 ? k_tf32_slack * bkt_tol_tf32(ref, n)
                                                : slack * bkt_tol(out->dtype, ref, n);
}

/* The plan `pref` must select: TF32 math exactly for f32 on CUDA under
 * BK_PREFER_ALLOW_TF32, never otherwise. */
static bool check_math(const char *what, const bk_plan_info *info, bk_preference pref, bk_dtype dt)
{
    const bool tf32 = pref == BK_PREFER_ALLOW_TF32 && dt == BK_DTYPE_F32 && info->target.kind == BK_TARGET_CUDA;
    return bkt_check((info->precision.math == BK_MATH_TF32) == tf32, what, "precision.math %d under preference %d",
                     (int)info->precision.math, (int)pref);
}

/* One problem on `target` (the kernel `pref` selects) against the f64 reverse-mode
 * reference. GPU slack: f32 1 (f32 arithmetic from the rounded inputs, one rounding of each
 * output, as the reference); f16/bf16 k_tc_slack (tensor cores); TF32 plan_tol's. dA is
 * judged against the size of its terms on every plan; so is ddt on the TF32 plan: ddt_t =
 * x_t^T dh_t B_t + A ga_t sums products whose factors TF32 rounds to 11 significant bits
 * (x, dy, B, C; states, dS and dL/du on the way), several roundings a term, and
 * where the terms cancel the error relative to the result is unbounded (a 6-element case
 * of L 1 missed the norm tolerance by 5%: bench/RESULTS.md run 27). Per element, against
 * ddt_mag, plan_tol is at least 5 units of 2^-11 of (ddt_mag + |ddt|), 10 where nothing
 * cancels. */
static void test_backward(bk_target target, bk_preference pref, bk_dtype dt, ssd_case s, bool padded, double dt_hi)
{
    char what[200], item[240], extra[64];
    snprintf(extra, sizeof extra, "%s%s%s%s", padded ? " strided" : "", dt_hi > 0.5 ? " dt<1" : "",
             target.kind == BK_TARGET_CUDA ? " cuda" : "", pref == BK_PREFER_ALLOW_TF32 ? " tf32" : "");
    case_name(what, sizeof what, dt, s, extra);
    ssd_problem p;
    make_problem(&p, s, dt, padded ? 2 : 0, 0.001, dt_hi);
    double *ref[NT] = {0};
    for (int k = ODX; k < NT; k++)
        ref[k] = malloc((size_t)(count_of(&s, k_role[k]) + 1) * sizeof(double));
    double *da_mag = malloc((size_t)(s.h + 1) * sizeof(double));
    const int64_t rows = count_of(&s, k_role[ODDT]);
    double *ddt_mag = malloc((size_t)(rows + 1) * sizeof(double));
    ref_bwd(&p, ref, da_mag, ddt_mag);
    {
        char item[300];
        snprintf(item, sizeof item, "%s: ddt", what);
        check_terms_bound(item, ref[ODDT], ddt_mag, rows);
    }

    bk_ssd_desc d = desc_of(s, dt);
    bk_ssd_bwd_plan plan;
    if (bkt_expect_status(bk_ssd_bwd_select(&d, target, pref, &plan), BK_STATUS_SUCCESS, what) &&
        check_math(what, &plan.info, pref, dt)) {
        if (bkt_expect_status(run_bwd_on(target, &plan, &p), BK_STATUS_SUCCESS, what)) {
            const double slack = target.kind == BK_TARGET_CUDA && dt != BK_DTYPE_F32 ? k_tc_slack : 1.0;
            bool ok = true;
            for (int k = ODX; k < NT; k++) {
                snprintf(item, sizeof item, "%s %s", what, k_names[k]);
                if (k == ODA)
                    ok = check_by_terms(item, &p.view[k], ref[k], da_mag, s.h,
                                        plan_tol(&plan.info, &p.view[k], ref[k], 1.0)) &&
                         ok;
                else if (k == ODDT && plan.info.precision.math == BK_MATH_TF32)
                    ok = check_by_terms(item, &p.view[k], ref[k], ddt_mag, rows,
                                        plan_tol(&plan.info, &p.view[k], ref[k], slack)) &&
                         ok;
                else
                    ok = bkt_check_close_tol(item, &p.view[k], ref[k], plan_tol(&plan.info, &p.view[k], ref[k], slack)) &&
                         ok;
            }
            if (ok) {
                /* rerun over the previous outputs: bit-identical (so nothing is accumulated) */
                void *first[NT] = {0};
                for (int k = ODX; k < NT; k++)
                    first[k] = bkt_snapshot(p.buf[k], (size_t)p.span[k] * bk_dtype_size(dt));
                bkt_expect_status(run_bwd_on(target, &plan, &p), BK_STATUS_SUCCESS, what);
                for (int k = ODX; k < NT; k++) {
                    snprintf(item, sizeof item, "%s %s rerun", what, k_names[k]);
                    bkt_check(bkt_same_bytes(first[k], p.buf[k], (size_t)p.span[k] * bk_dtype_size(dt)), item,
                              "not bit-identical");
                    bkt_free(first[k]);
                }
            }
        }
    }
    for (int k = ODX; k < NT; k++)
        free(ref[k]);
    free(da_mag);
    free(ddt_mag);
    free_problem(&p);
}

/* Loss sum(W * y) through the library's f64 forward. */
static double loss(const bk_ssd_fwd_plan *fp, const ssd_problem *p, const double *w, double *y, int64_t ny)
{
    int64_t shape[4] = {p->s.b, p->s.l, p->s.h, p->s.d};
    bk_ssd_fwd_args a = {.x = p->view[IX], .dt = p->view[IDT], .a = p->view[IA], .b = p->view[IB],
                         .c = p->view[IC], .y = bkt_view(y, BK_DTYPE_F64, 4, shape)};
    size_t bytes = bk_ssd_fwd_workspace_size(fp);
    void *ws = bytes ? malloc(bytes) : NULL;
    bk_status st = bk_ssd_fwd_run(fp, NULL, (bk_workspace){ws, bytes}, &a);
    free(ws);
    if (st != BK_STATUS_SUCCESS)
        return NAN;
    double l = 0.0;
    for (int64_t i = 0; i < ny; i++)
        l += w[i] * y[i];
    return l;
}

/* Central differences of the f64 forward for L = sum(W * y), against ssd_bwd with dy = W,
 * for every A and several entries of x, dt, B, C. Chunk 4 over 9 steps: full and partial
 * chunks, states passed twice. */
static void test_finite_differences(int32_t chunk, double dt_hi)
{
    char what[96];
    snprintf(what, sizeof what, "ssd_bwd f64 vs central differences (chunk %d, dt<%g)", (int)chunk, dt_hi);
    ssd_case s = {2, 9, 2, 3, 4, chunk};
    ssd_problem p;
    make_problem(&p, s, BK_DTYPE_F64, 0, 0.001, dt_hi);
    bk_ssd_desc d = desc_of(s, BK_DTYPE_F64);
    bk_ssd_fwd_plan fp;
    bk_ssd_bwd_plan bp;
    int64_t ny = count_of(&s, 0);
    double *y = bkt_alloc(BK_DTYPE_F64, ny);
    const double *w = p.buf[IDY]; /* dy = W, contiguous */
    if (!bkt_expect_status(bk_ssd_fwd_select(&d, bk_target_cpu(), BK_PREFER_REFERENCE, &fp), BK_STATUS_SUCCESS, what) ||
        !bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_REFERENCE, &bp), BK_STATUS_SUCCESS, what))
        goto done;
    bk_ssd_bwd_args args = bwd_args(&p);
    if (!bkt_expect_status(run_bwd(&bp, &args), BK_STATUS_SUCCESS, what))
        goto done;
    static const int inputs[5] = {IX, IDT, IA, IB, IC};
    static const int grads[5] = {ODX, ODDT, ODA, ODB, ODC};
    for (int k = 0; k < 5; k++) {
        int64_t n = count_of(&s, k_role[inputs[k]]);
        int tries = inputs[k] == IA ? (int)n : 7;
        for (int i = 0; i < tries; i++) {
            int64_t at = inputs[k] == IA ? i : bkt_randint(0, n - 1);
            double *v = (double *)p.buf[inputs[k]] + at, keep = *v;
            const double eps = 1e-6;
            *v = keep + eps;
            double lp = loss(&fp, &p, w, y, ny);
            *v = keep - eps;
            double lm = loss(&fp, &p, w, y, ny);
            *v = keep;
            double fd = (lp - lm) / (2 * eps), g = ((const double *)p.buf[grads[k]])[at];
            bkt_check(fabs(fd - g) <= 1e-7 * (1 + fabs(fd)), what, "%s[%lld]: gradient %.12g, differences %.12g",
                      k_names[grads[k]], (long long)at, g, fd);
        }
    }
done:
    bkt_free(y);
    free_problem(&p);
}

/* chunk_size changes the work split only: every output agrees with chunk 1 to f64 rounding. */
static void test_chunk_invariance(void)
{
    const char *what = "ssd_bwd f64 chunk_size invariance";
    ssd_case s = {2, 67, 2, 6, 5, 1};
    ssd_problem p;
    make_problem(&p, s, BK_DTYPE_F64, 0, 0.001, 1.0);
    static const int32_t chunks[] = {1, 3, 16, 64, 66, 67, 68, 1 << 30};
    double *first[NT] = {0};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        s.chunk = chunks[i];
        bk_ssd_desc d = desc_of(s, BK_DTYPE_F64);
        bk_ssd_bwd_plan plan;
        for (int k = ODX; k < NT; k++)
            bkt_poison(p.buf[k], BK_DTYPE_F64, p.span[k]);
        bk_ssd_bwd_args args = bwd_args(&p);
        if (!bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                               what) ||
            !bkt_expect_status(run_bwd(&plan, &args), BK_STATUS_SUCCESS, what))
            continue;
        for (int k = ODX; k < NT; k++) {
            int64_t n = count_of(&s, k_role[k]);
            if (i == 0) {
                first[k] = bkt_snapshot(p.buf[k], (size_t)n * sizeof(double));
                continue;
            }
            double err = bkt_rel_err(p.buf[k], first[k], n);
            bkt_check(err <= 1e-12, what, "%s: chunk %d vs chunk 1: relative difference %.3e", k_names[k],
                      (int)chunks[i], err);
        }
    }
    for (int k = ODX; k < NT; k++)
        bkt_free(first[k]);
    free_problem(&p);
}

/* The result, dA included, does not depend on the number of threads. */
static void test_thread_count(void)
{
#ifdef _OPENMP
    const char *what = "ssd_bwd thread count";
    ssd_case s = {5, 23, 3, 7, 6, 5};
    ssd_problem p;
    make_problem(&p, s, BK_DTYPE_F32, 0, 0.001, 0.5);
    bk_ssd_desc d = desc_of(s, BK_DTYPE_F32);
    bk_ssd_bwd_plan plan;
    bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS, what);
    bk_ssd_bwd_args args = bwd_args(&p);
    int keep = omp_get_max_threads(), many = keep > 1 ? keep : 3;
    omp_set_num_threads(1);
    bkt_expect_status(run_bwd(&plan, &args), BK_STATUS_SUCCESS, what);
    void *one[NT] = {0};
    for (int k = ODX; k < NT; k++) {
        one[k] = bkt_snapshot(p.buf[k], (size_t)p.span[k] * sizeof(float));
        bkt_poison(p.buf[k], BK_DTYPE_F32, p.span[k]);
    }
    omp_set_num_threads(many);
    bkt_expect_status(run_bwd(&plan, &args), BK_STATUS_SUCCESS, what);
    omp_set_num_threads(keep);
    for (int k = ODX; k < NT; k++) {
        bkt_check(bkt_same_bytes(one[k], p.buf[k], (size_t)p.span[k] * sizeof(float)), what,
                  "%s: 1 thread and %d threads differ", k_names[k], many);
        bkt_free(one[k]);
    }
    free_problem(&p);
#else
    bkt_skip("ssd_bwd thread count", "built without OpenMP");
#endif
}

static void test_plan_info(void)
{
    const char *what = "ssd_bwd plan info";
    bk_ssd_desc d = {.batch = 2, .seq_len = 9, .heads = 3, .head_dim = 256,
                     .state_dim = 256, .chunk_size = 4, .dtype = BK_DTYPE_F16};
    bk_ssd_bwd_plan plan;
    if (!bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS,
                           what))
        return;
    char name[96];
    bk_sku_name(&plan.info.sku, name, sizeof name);
    bkt_check(strcmp(name, "ssm/ssd_bwd/f16/cpu/reference") == 0, what, "sku %s", name);
    bkt_check(plan.info.precision.deterministic && plan.info.precision.bit_stable, what, "not deterministic");
    /* the documented formula: S = 6 slots, Q = 4, K = 3 chunks, D = N = 256, one head per
     * group (no dB/dC sums), no skip */
    size_t S = 6, Q = 4, K = 3, DN = 256 * 256, BH = 6,
           pieces[] = {S * K * DN, S * DN, S * Q * 256, S * Q * 256, S * Q * 256, S * Q * 256, S * Q, S * Q,
                       S * Q,      S * Q,  S * Q,       S * Q,       0,           0,           BH,    BH,    0};
    size_t want = 0;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        want = ((want + 255) & ~(size_t)255) + 8 * pieces[i];
    bkt_check(bk_ssd_bwd_workspace_size(&plan) == want, what, "workspace %zu bytes, formula says %zu",
              bk_ssd_bwd_workspace_size(&plan), want);
    d.seq_len = 0;
    bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
    bkt_check(bk_ssd_bwd_workspace_size(&plan) == 0, what, "workspace for an empty sequence");
}

/* Every bad input: the exact status, every output's bytes unchanged, an error sentence. */
static void test_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    ssd_case s = {2, 5, 3, 4, 6, 2};
    ssd_problem p;
    make_problem(&p, s, dt, 0, 0.001, 0.1);
    void *before[NT] = {0};
    for (int k = ODX; k < NT; k++)
        before[k] = bkt_snapshot(p.buf[k], (size_t)p.span[k] * sizeof(float));
    bk_ssd_desc d = desc_of(s, dt), bad;
    bk_ssd_bwd_plan plan;
    const bk_target cpu = bk_target_cpu();

    bad = d;
    bad.chunk_size = 0;
    bkt_expect_status(bk_ssd_bwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "ssd_bwd chunk_size 0");
    bkt_check(strcmp(bk_last_error(), "ssd_bwd: desc.chunk_size is 0, expected >= 1") == 0, "ssd_bwd chunk message",
              "got \"%s\"", bk_last_error());
    bad = d;
    bad.head_dim = 257;
    bkt_expect_status(bk_ssd_bwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_UNSUPPORTED,
                      "ssd_bwd head_dim 257");
    bad = d;
    bad.state_dim = 300;
    bkt_expect_status(bk_ssd_bwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_UNSUPPORTED,
                      "ssd_bwd state_dim 300");
    bkt_check(strstr(bk_last_error(), "state_dim is 300, expected <= 256") != NULL, "ssd_bwd state_dim message",
              "got \"%s\"", bk_last_error());
    bad = d;
    bad.dtype = BK_DTYPE_I32;
    bkt_expect_status(bk_ssd_bwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_UNSUPPORTED, "ssd_bwd i32");
    bad = d;
    bad.seq_len = -1;
    bkt_expect_status(bk_ssd_bwd_select(&bad, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "ssd_bwd negative seq_len");
    bkt_expect_status(bk_ssd_bwd_select(NULL, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "ssd_bwd NULL desc");
    bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_bwd no CUDA kernel below sm_80");
    bad = d;
    bad.dtype = BK_DTYPE_F64;
    bkt_expect_status(bk_ssd_bwd_select(&bad, bk_target_cuda_cc(0, 8, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_bwd f64 is CPU-only");
#ifdef BK_WITH_CUDA
    bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cuda_cc(0, 8, 0), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "ssd_bwd select on sm_80");
#else
    bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cuda_cc(0, 8, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_bwd built without CUDA");
#endif

    bkt_expect_status(bk_ssd_bwd_select(&d, cpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, "ssd_bwd select");
    bk_ssd_bwd_args good = bwd_args(&p);
    size_t need = bk_ssd_bwd_workspace_size(&plan);
    void *ws = malloc(need);
    enum { NC = 32 };
    struct {
        const char *what;
        bk_ssd_bwd_args args;
        bk_status want;
    } cases[NC];
    int nc = 0;
#define CASE(text, field, value, status)  \
    cases[nc].what = text;                \
    cases[nc].args = good;                \
    cases[nc].args.field = value;         \
    cases[nc++].want = status
    CASE("ssd_bwd x.shape[3] != head_dim", x.shape[3], 3, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dt.shape[0] != batch", dt.shape[0], 3, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd a.shape[0] != heads", a.shape[0], 4, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd b.shape[3] != state_dim", b.shape[3], 5, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd c.shape[1] != seq_len", c.shape[1], 4, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dy.shape[2] != heads", dy.shape[2], 2, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dx.shape[3] != head_dim", dx.shape[3], 6, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd ddt.shape[1] != seq_len", ddt.shape[1], 6, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd da.shape[0] != heads", da.shape[0], 2, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd db.shape[3] != state_dim", db.shape[3], 4, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dc rank 3", dc.rank, 3, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dy dtype f64", dy.dtype, BK_DTYPE_F64, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd da dtype bf16", da.dtype, BK_DTYPE_BF16, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd ddt dtype f16", ddt.dtype, BK_DTYPE_F16, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dy NULL data", dy.data, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd da NULL data", da.data, NULL, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dx overlapping strides", dx.strides[2], 2, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd da broadcast stride", da.strides[0], 0, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd db negative stride", db.strides[0], -90, BK_STATUS_INVALID_PROBLEM);
    CASE("ssd_bwd dc inner stride 2", dc.strides[3], 2, BK_STATUS_UNSUPPORTED);
    /* spread out so that it does not overlap: only the inner stride is wrong */
    cases[nc - 1].args.dc.strides[2] = 12, cases[nc - 1].args.dc.strides[1] = 36;
    cases[nc - 1].args.dc.strides[0] = 180, cases[nc - 1].args.dc.capacity = 0;
    CASE("ssd_bwd dy inner stride 3", dy.strides[3], 3, BK_STATUS_UNSUPPORTED);
    CASE("ssd_bwd x broadcast stride", x.strides[0], 0, BK_STATUS_UNSUPPORTED);
    CASE("ssd_bwd dx capacity too small", dx.capacity, 119, BK_STATUS_BUFFER_TOO_SMALL);
    CASE("ssd_bwd da capacity too small", da.capacity, 2, BK_STATUS_BUFFER_TOO_SMALL);
    CASE("ssd_bwd dy capacity too small", dy.capacity, 1, BK_STATUS_BUFFER_TOO_SMALL);
#undef CASE
    for (int c = 0; c < nc; c++) {
        bkt_expect_status(bk_ssd_bwd_run(&plan, NULL, (bk_workspace){ws, need}, &cases[c].args), cases[c].want,
                          cases[c].what);
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        for (int k = ODX; k < NT; k++)
            bkt_check(bkt_same_bytes(before[k], p.buf[k], (size_t)p.span[k] * sizeof(float)), cases[c].what,
                      "%s written on failure", k_names[k]);
    }
    bk_ssd_bwd_run(&plan, NULL, (bk_workspace){ws, need}, &cases[8].args);
    bkt_check(strcmp(bk_last_error(), "ssd_bwd: da.shape[0] is 2, expected heads = 3") == 0, "ssd_bwd shape message",
              "got \"%s\"", bk_last_error());

    struct {
        const char *what;
        bk_workspace ws;
        bk_status want;
    } wcases[] = {
        {"ssd_bwd workspace one byte short", {ws, need - 1}, BK_STATUS_WORKSPACE_TOO_SMALL},
        {"ssd_bwd workspace of the forward's size", {ws, 64}, BK_STATUS_WORKSPACE_TOO_SMALL},
        {"ssd_bwd workspace NULL", {NULL, 0}, BK_STATUS_INVALID_PROBLEM},
    };
    for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++) {
        bkt_expect_status(bk_ssd_bwd_run(&plan, NULL, wcases[i].ws, &good), wcases[i].want, wcases[i].what);
        bkt_check(bk_last_error()[0] != '\0', wcases[i].what, "no error sentence");
        for (int k = ODX; k < NT; k++)
            bkt_check(bkt_same_bytes(before[k], p.buf[k], (size_t)p.span[k] * sizeof(float)), wcases[i].what,
                      "%s written on failure", k_names[k]);
    }
    bkt_expect_status(bk_ssd_bwd_run(NULL, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_INVALID_PROBLEM,
                      "ssd_bwd NULL plan");
    bkt_expect_status(bk_ssd_bwd_run(&plan, NULL, (bk_workspace){ws, need}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "ssd_bwd NULL args");
    bk_ssd_fwd_plan fplan;
    bkt_expect_status(bk_ssd_fwd_select(&d, cpu, BK_PREFER_FASTEST, &fplan), BK_STATUS_SUCCESS, "ssd_fwd select");
    bkt_expect_status(bk_ssd_bwd_run((const bk_ssd_bwd_plan *)&fplan, NULL, (bk_workspace){ws, need}, &good),
                      BK_STATUS_INVALID_PROBLEM, "ssd_bwd given a forward plan");
    for (int k = ODX; k < NT; k++) {
        bkt_check(bkt_same_bytes(before[k], p.buf[k], (size_t)p.span[k] * sizeof(float)), "ssd_bwd bad inputs",
                  "%s written on failure", k_names[k]);
        bkt_free(before[k]);
    }
    bkt_expect_status(bk_ssd_bwd_run(&plan, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_SUCCESS,
                      "ssd_bwd good call after bad ones");
    free(ws);
    free_problem(&p);
}

/* ------------------------------------------------------------ options -- */

/* loss = sum wy . y + sum wf . final_states, the fixture's reference. */
static double opt_loss(const bkt_ssd_problem *p, const double *wy, const double *wf, double *y, double *fin)
{
    const bkt_ssd_opts *o = &p->o;
    bkt_ssd_ref(p, y, fin, NULL);
    double l = 0.0;
    for (int64_t i = 0; i < o->b * o->l * o->h * o->d; i++)
        l += wy[i] * y[i];
    for (int64_t i = 0; wf && i < o->b * o->h * o->d * o->n; i++)
        l += wf[i] * fin[i];
    return l;
}

/* g[i] = dloss / d t->val[i] by central differences (step 1e-5) of the f64 reference. */
static void opt_fd(bkt_ssd_problem *p, bkt_buf *t, const double *wy, const double *wf, double *y, double *fin,
                   double *g)
{
    const double step = 1e-5;
    for (int64_t i = 0; i < t->numel; i++) {
        const double keep = t->val[i];
        t->val[i] = keep + step;
        const double lp = opt_loss(p, wy, wf, y, fin);
        t->val[i] = keep - step;
        const double lm = opt_loss(p, wy, wf, y, fin);
        t->val[i] = keep;
        g[i] = (lp - lm) / (2 * step);
    }
}

enum { G_X, G_DT, G_A, G_B, G_C, G_SKIP, G_Z, G_BIAS, G_INIT, NG };
static const char *const k_gnames[NG] = {"dx", "ddt", "da", "db", "dc", "dskip", "dz", "ddt_bias", "dinitial_states"};

/* plan_tol for gradient k: dA and ddt_bias of the TF32 plan k_tf32_sum_factor wider. */
static double grad_tol(const bk_plan_info *info, int k, const bk_tensor *out, const double *ref, double slack)
{
    const bool sums = info->precision.math == BK_MATH_TF32 && (k == G_A || k == G_BIAS);
    return plan_tol(info, out, ref, slack) * (sums ? k_tf32_sum_factor : 1.0);
}

/* Runs the backward of p on `target` (every tensor copied to the device and the gradients
 * back on CUDA), with a workspace of exactly workspace_size bytes. grad[k] is the gradient
 * of input k (absent when the input is). */
static bk_status run_opts_bwd(bk_target target, const bk_ssd_bwd_plan *plan, const bkt_ssd_problem *p,
                              const bkt_buf *dy, const bkt_buf *dfin, const bkt_buf grad[NG])
{
    bkt_dev dev = bkt_dev_begin(target);
    bk_tensor slots[6], s_dfin, s_dskip, s_dz, s_dbias, s_dinit;
    const bk_ssd_fwd_args f = bkt_ssd_fwd_inputs_on(&dev, p, slots);
    bk_ssd_bwd_args a = {.x = f.x, .dt = f.dt, .a = f.a, .b = f.b, .c = f.c, .dy = bkt_buf_on(&dev, dy, false),
                         .dx = bkt_buf_on(&dev, &grad[G_X], true), .ddt = bkt_buf_on(&dev, &grad[G_DT], true),
                         .da = bkt_buf_on(&dev, &grad[G_A], true), .db = bkt_buf_on(&dev, &grad[G_B], true),
                         .dc = bkt_buf_on(&dev, &grad[G_C], true)};
    a.skip = f.skip, a.z = f.z, a.dt_bias = f.dt_bias, a.initial_states = f.initial_states, a.seq_idx = f.seq_idx;
    a.dfinal_states = bkt_opt_on(&dev, dfin, false, &s_dfin);
    a.dskip = bkt_opt_on(&dev, &grad[G_SKIP], true, &s_dskip);
    a.dz = bkt_opt_on(&dev, &grad[G_Z], true, &s_dz);
    a.ddt_bias = bkt_opt_on(&dev, &grad[G_BIAS], true, &s_dbias);
    a.dinitial_states = bkt_opt_on(&dev, &grad[G_INIT], true, &s_dinit);
    return run_bwd_dev(&dev, plan, &a);
}

/* The backward of one options problem on `target` against finite differences: every
 * gradient, every element; outputs poisoned before the run; then a rerun over the previous
 * outputs must be bit-identical. Every target runs every option (a refusal fails). */
static void test_options_bwd(bk_target target, bk_preference pref, bk_dtype dt, const bkt_ssd_opts *o, int64_t pad)
{
    char what[256], txt[200];
    bkt_ssd_opts_text(o, txt, sizeof txt);
    snprintf(what, sizeof what, "ssd_bwd %s%s%s%s%s", bk_dtype_name(dt), txt, pad ? " strided" : "",
             target.kind == BK_TARGET_CUDA ? " cuda" : "", pref == BK_PREFER_ALLOW_TF32 ? " tf32" : "");
    bkt_ssd_problem p;
    bkt_ssd_make(&p, o, dt, pad);
    bkt_buf *in[NG] = {&p.x, &p.dt, &p.a, &p.b, &p.c, &p.skip, &p.z, &p.bias, &p.init};
    bkt_buf dy, dfin, grad[NG];
    int64_t sy[4] = {o->b, o->l, o->h, o->d}, sf[4] = {o->b, o->h, o->d, o->n};
    bkt_buf_make(&dy, dt, 4, sy, pad, -1, 1);
    memset(&dfin, 0, sizeof dfin);
    if (o->final)
        bkt_buf_make(&dfin, dt, 4, sf, pad, -1, 1);
    memset(grad, 0, sizeof grad);
    for (int k = 0; k < NG; k++)
        if (in[k]->data) {
            const bk_tensor *v = &in[k]->view;
            bkt_buf_make(&grad[k], dt, v->rank, v->shape, pad && v->rank > 1 ? pad + 1 : 0, 0, 0);
            bkt_poison(grad[k].data, dt, grad[k].span);
        }
    bk_ssd_desc d = bkt_ssd_desc(&p);
    bk_ssd_bwd_plan plan;
    bk_status st = bk_ssd_bwd_select(&d, target, pref, &plan);
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what) && check_math(what, &plan.info, pref, dt) &&
             bkt_expect_status(run_opts_bwd(target, &plan, &p, &dy, &dfin, grad), BK_STATUS_SUCCESS, what)) {
        double *y = malloc((size_t)(dy.numel + 1) * sizeof(double));
        double *fin = malloc((size_t)(o->b * o->h * o->d * o->n + 1) * sizeof(double));
        /* f64: the differences' own error, ~1e-7; CUDA: f32 arithmetic (f32), tensor cores
         * (f16, bf16: k_tc_slack; TF32: plan_tol's) */
        const double slack = dt == BK_DTYPE_F64                ? 1e5
                             : target.kind != BK_TARGET_CUDA ? 1.0
                             : dt == BK_DTYPE_F32            ? 3.0
                                                             : k_tc_slack;
        /* the analytic f64 reverse pass of the two sums over (b, t), dA and ddt_bias, with
           the size of their terms (bkt_ssd_ref_sums) */
        const int64_t H = o->h;
        double *sums = malloc((size_t)(4 * H + 1) * sizeof(double));
        double *da = sums, *da_mag = sums + H, *dbias = sums + 2 * H, *dbias_mag = sums + 3 * H;
        bkt_ssd_ref_sums(&p, dy.val, o->final ? dfin.val : NULL, da, da_mag, dbias, dbias_mag);
        for (int k = 0; k < NG; k++) {
            if (!in[k]->data)
                continue;
            double *g = malloc((size_t)(in[k]->numel + 1) * sizeof(double));
            opt_fd(&p, in[k], dy.val, o->final ? dfin.val : NULL, y, fin, g);
            char w2[300];
            snprintf(w2, sizeof w2, "%s: %s", what, k_gnames[k]);
            if (k == G_BIAS) {
                /* ddt_bias: H sums whose terms cancel, so few heads leave a result far
                   smaller than its terms (seen: bf16, 3 heads, 2.8x a norm-relative
                   tolerance, the kernels' 16-bit operands): judged by terms against the
                   analytic reference, which agrees with the differences to their own error */
                char w4[340];
                snprintf(w4, sizeof w4, "%s: reference against the differences", w2);
                check_terms_bound(w4, dbias, dbias_mag, H);
                check_values_by_terms(w4, dbias, g, dbias_mag, H, 1e-7);
                check_by_terms(w2, &grad[k].view, dbias, dbias_mag, H,
                               grad_tol(&plan.info, k, &grad[k].view, dbias, slack));
            } else {
                bkt_check_close_tol(w2, &grad[k].view, g, grad_tol(&plan.info, k, &grad[k].view, g, slack));
            }
            free(g);
        }
        /* dA also against the analytic reference, judged against the size of its terms */
        char w3[300];
        snprintf(w3, sizeof w3, "%s: dA analytic", what);
        check_terms_bound(w3, da, da_mag, H);
        check_by_terms(w3, &grad[G_A].view, da, da_mag, H, grad_tol(&plan.info, G_A, &grad[G_A].view, da, slack));
        free(sums);
        free(y);
        free(fin);
        /* rerun over the previous outputs: bit-identical (nothing accumulates) */
        size_t bytes = (size_t)grad[G_B].span * bk_dtype_size(dt);
        void *db0 = bkt_snapshot(grad[G_B].data, bytes);
        void *da0 = bkt_snapshot(grad[G_A].data, (size_t)grad[G_A].span * bk_dtype_size(dt));
        bkt_expect_status(run_opts_bwd(target, &plan, &p, &dy, &dfin, grad), BK_STATUS_SUCCESS, what);
        bkt_check(bkt_same_bytes(db0, grad[G_B].data, bytes) &&
                      bkt_same_bytes(da0, grad[G_A].data, (size_t)grad[G_A].span * bk_dtype_size(dt)),
                  what, "rerun is not bit-identical");
        bkt_free(db0);
        bkt_free(da0);
    }
    for (int k = 0; k < NG; k++)
        if (grad[k].data)
            bkt_buf_free(&grad[k]);
    bkt_buf_free(&dy);
    if (dfin.data)
        bkt_buf_free(&dfin);
    bkt_ssd_free(&p);
}

/* The options' tensors of the backward: each one NULL while its option is on (and the
 * option's gradient given while it is off): INVALID_PROBLEM, a sentence, nothing written. */
static void test_option_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bkt_ssd_opts o = {2, 7, 4, 2, 3, 4, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, false, 0, 0, true, true, true,
                      3, 0};
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, dt, 0);
    bkt_buf *in[NG] = {&p.x, &p.dt, &p.a, &p.b, &p.c, &p.skip, &p.z, &p.bias, &p.init};
    bkt_buf dy, dfin, grad[NG];
    int64_t sy[4] = {o.b, o.l, o.h, o.d}, sf[4] = {o.b, o.h, o.d, o.n};
    bkt_buf_make(&dy, dt, 4, sy, 0, -1, 1);
    bkt_buf_make(&dfin, dt, 4, sf, 0, -1, 1);
    for (int k = 0; k < NG; k++) {
        bkt_buf_make(&grad[k], dt, in[k]->view.rank, in[k]->view.shape, 0, 0, 0);
        bkt_poison(grad[k].data, dt, grad[k].span);
    }
    bk_ssd_bwd_args good = {.x = p.x.view, .dt = p.dt.view, .a = p.a.view, .b = p.b.view, .c = p.c.view,
                            .dy = dy.view, .dx = grad[G_X].view, .ddt = grad[G_DT].view, .da = grad[G_A].view,
                            .db = grad[G_B].view, .dc = grad[G_C].view};
    const bk_ssd_fwd_args fa = bkt_ssd_fwd_inputs(&p);
    good.skip = fa.skip, good.z = fa.z, good.dt_bias = fa.dt_bias, good.initial_states = fa.initial_states;
    good.seq_idx = fa.seq_idx, good.dfinal_states = &dfin.view;
    good.dskip = &grad[G_SKIP].view, good.dz = &grad[G_Z].view, good.ddt_bias = &grad[G_BIAS].view;
    good.dinitial_states = &grad[G_INIT].view;
    bk_ssd_desc d = bkt_ssd_desc(&p);
    bk_ssd_bwd_plan plan;
    bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "ssd_bwd options select");
    void *before[NG];
    for (int k = 0; k < NG; k++)
        before[k] = bkt_snapshot(grad[k].data, (size_t)grad[k].span * 4);
    BKT_BAD_TABLE(bk_ssd_bwd_args, cases, 12);
    BKT_BAD(cases, good, "ssd_bwd skip NULL", skip, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd z NULL", z, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd dt_bias NULL", dt_bias, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd initial_states NULL", initial_states, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd seq_idx NULL", seq_idx, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd dfinal_states NULL", dfinal_states, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd dskip NULL", dskip, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd dz NULL", dz, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd ddt_bias NULL", ddt_bias, NULL, BK_STATUS_INVALID_PROBLEM);
    BKT_BAD(cases, good, "ssd_bwd dinitial_states NULL", dinitial_states, NULL, BK_STATUS_INVALID_PROBLEM);
    bk_tensor db_heads = grad[G_B].view;
    db_heads.shape[2] = 4;
    BKT_BAD(cases, good, "ssd_bwd db per head with ngroups 2", db, db_heads, BK_STATUS_INVALID_PROBLEM);
    size_t need = bk_ssd_bwd_workspace_size(&plan);
    void *ws = malloc(need);
    for (int c = 0; c < cases_n; c++) {
        bkt_expect_status(bk_ssd_bwd_run(&plan, NULL, (bk_workspace){ws, need}, &cases[c].args), cases[c].want,
                          cases[c].what);
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        bool same = true;
        for (int k = 0; k < NG; k++)
            same = same && bkt_same_bytes(before[k], grad[k].data, (size_t)grad[k].span * 4);
        bkt_check(same, cases[c].what, "output written on failure");
    }
    bk_ssd_desc off = d;
    off.has_dt_bias = false;
    bk_ssd_bwd_plan oplan;
    bk_ssd_bwd_select(&off, bk_target_cpu(), BK_PREFER_FASTEST, &oplan);
    bkt_expect_status(bk_ssd_bwd_run(&oplan, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_INVALID_PROBLEM,
                      "ssd_bwd dt_bias given with has_dt_bias off");
    bkt_expect_status(bk_ssd_bwd_run(&plan, NULL, (bk_workspace){ws, need}, &good), BK_STATUS_SUCCESS,
                      "ssd_bwd options good call after bad ones");
#ifdef BK_WITH_CUDA
    /* the CUDA kernel takes every option; varlen states have no backward on any target */
    if (bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                          BK_STATUS_SUCCESS, "ssd_bwd options on sm_90"))
        bkt_check(plan.info.target.kind == BK_TARGET_CUDA, "ssd_bwd options on sm_90", "not a CUDA plan");
    bk_ssd_desc vl = d;
    vl.batch = 1;
    vl.n_varlen_seqs = 2;
    bkt_expect_status(bk_ssd_bwd_select(&vl, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "ssd_bwd varlen on sm_90");
    bkt_check(strstr(bk_last_error(), "n_varlen_seqs") != NULL, "ssd_bwd varlen on sm_90", "got \"%s\"",
              bk_last_error());
#endif
    free(ws);
    for (int k = 0; k < NG; k++) {
        bkt_free(before[k]);
        bkt_buf_free(&grad[k]);
    }
    bkt_buf_free(&dy);
    bkt_buf_free(&dfin);
    bkt_ssd_free(&p);
}

static const bkt_ssd_opts k_opt_cases[] = {
    /* b  l   h  d  n  chunk G  skip                     z      bias   splus  limit  lo    hi   init   final  seq  every nv */
    {2, 9, 4, 3, 4, 4, 1, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {1, 11, 8, 2, 3, 4, 2, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {1, 11, 8, 2, 3, 3, 8, BK_SSD_SKIP_PER_HEAD, false, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 9, 3, 3, 4, 4, 0, BK_SSD_SKIP_PER_CHANNEL, true, false, false, false, 0, 0, false, false, false, 0, 0},
    {2, 9, 3, 3, 4, 4, 0, BK_SSD_SKIP_NONE, false, true, true, false, 0, 0, false, false, false, 0, 0},
    {2, 9, 3, 3, 4, 4, 0, BK_SSD_SKIP_NONE, false, true, true, true, 0.1, 0.6, false, false, false, 0, 0},
    {2, 9, 3, 3, 4, 4, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, false, 0, 0},
    {2, 9, 3, 3, 4, 4, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, false, 0, 0},
    {2, 19, 2, 3, 3, 8, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, true, 3, 0},
    {1, 1, 4, 3, 4, 8, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, false, 0, 0, true, true, true, 2, 0},
    {2, 17, 4, 3, 3, 5, 2, BK_SSD_SKIP_PER_HEAD, true, true, true, true, 0.0, 1.5, true, true, true, 4, 0},
    {1, 13, 4, 2, 3, 1, 1, BK_SSD_SKIP_PER_CHANNEL, true, true, true, false, 0, 0, true, true, true, 3, 0},
    {2, 0, 2, 2, 3, 4, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, true, 2, 0},
    /* several of the CUDA kernels' 64-step chunks (states passed both ways, the last chunk
     * partial): seq_idx changes at, next to and inside chunk edges (fixed: every 0) or at
     * random, ngroups 1 / 2 / heads, every option */
    {1, 200, 4, 3, 4, 64, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, true, true, true, 0, 0},
    {1, 150, 4, 3, 5, 16, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, true, 37, 0},
    {1, 129, 2, 4, 3, 64, 0, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, false, 0, 0},
    {2, 70, 8, 2, 3, 8, 8, BK_SSD_SKIP_NONE, true, false, true, false, 0, 0, false, false, true, 0, 0},
};

/* With every option and groups of heads (dB, dC summed in the workspace), the gradients
 * do not depend on the number of threads. */
static void test_options_thread_count(void)
{
#ifdef _OPENMP
    const char *what = "ssd_bwd options thread count";
    const bk_dtype dt = BK_DTYPE_F32;
    bkt_ssd_opts o = {3, 21, 8, 3, 4, 4, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 2, true, true,
                      true, 4, 0};
    bkt_ssd_problem p;
    bkt_ssd_make(&p, &o, dt, 0);
    bkt_buf *in[NG] = {&p.x, &p.dt, &p.a, &p.b, &p.c, &p.skip, &p.z, &p.bias, &p.init};
    bkt_buf dy, dfin, g1[NG], g2[NG];
    int64_t sy[4] = {o.b, o.l, o.h, o.d}, sf[4] = {o.b, o.h, o.d, o.n};
    bkt_buf_make(&dy, dt, 4, sy, 0, -1, 1);
    bkt_buf_make(&dfin, dt, 4, sf, 0, -1, 1);
    for (int k = 0; k < NG; k++) {
        bkt_buf_make(&g1[k], dt, in[k]->view.rank, in[k]->view.shape, 0, 0, 0);
        bkt_buf_make(&g2[k], dt, in[k]->view.rank, in[k]->view.shape, 0, 0, 0);
    }
    bk_ssd_desc d = bkt_ssd_desc(&p);
    bk_ssd_bwd_plan plan;
    bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what);
    int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    bkt_expect_status(run_opts_bwd(bk_target_cpu(), &plan, &p, &dy, &dfin, g1), BK_STATUS_SUCCESS, what);
    omp_set_num_threads(keep > 1 ? keep : 3);
    bkt_expect_status(run_opts_bwd(bk_target_cpu(), &plan, &p, &dy, &dfin, g2), BK_STATUS_SUCCESS, what);
    omp_set_num_threads(keep);
    for (int k = 0; k < NG; k++) {
        bkt_check(bkt_same_bytes(g1[k].data, g2[k].data, (size_t)g1[k].span * 4), what, "%s: 1 thread and %d differ",
                  k_gnames[k], keep > 1 ? keep : 3);
        bkt_buf_free(&g1[k]);
        bkt_buf_free(&g2[k]);
    }
    bkt_buf_free(&dy);
    bkt_buf_free(&dfin);
    bkt_ssd_free(&p);
#else
    bkt_skip("ssd_bwd options thread count", "built without OpenMP");
#endif
}

/* The sweep on `target` (the kernels `pref` selects): every case on every dtype (none may
 * be refused, CUDA included). */
static void test_options(bk_target target, bk_preference pref, const bk_dtype *dts, size_t ndt)
{
    for (size_t t = 0; t < ndt; t++)
        for (size_t c = 0; c < sizeof k_opt_cases / sizeof k_opt_cases[0]; c++)
            test_options_bwd(target, pref, dts[t], &k_opt_cases[c], (c % 3) == 2 ? 2 : 0);
}

/* CUDA against the CPU backward on the same inputs (the CPU's are checked against finite
 * differences above), for shapes too large for finite differences: D and N above the
 * kernels' 64-wide tiles (dskip per channel over two D tiles), several chunks, every
 * option (the 16-bit fused state passes and the f32 ones both; the fused path's <dS, S>
 * in dA takes the states rounded to the dtype, as their chunk products already do, under
 * the same tolerance). f32, bf16 and f16 (f32 only under BK_TEST_QUICK); slack f32 3, 16-bit
 * k_tc_slack + k_ref_ulp. The reference here is itself rounded to the dtype, so bkt_tol
 * sees no rounding floor in it (tol = u/2 slack, u the unit roundoff), yet two roundings
 * of values a compute error apart differ by one ulp when a midpoint lies between them:
 * up to 2u of the largest element, relative to the norm (seen: ddt_bias f16, -68.8125
 * against -68.75, 0.9 ulp of the norm). k_ref_ulp = 4 (4 u/2 = 2u) adds that flip. */
static const double k_ref_ulp = 4.0;
static void test_options_vs_cpu(bk_target gpu, bk_preference pref)
{
    static const bkt_ssd_opts big[] = {
        {1, 150, 4, 70, 66, 64, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, true, true, true, 0, 0},
        {2, 100, 4, 64, 128, 64, 1, BK_SSD_SKIP_PER_HEAD, true, true, true, false, 0, 0, true, true, true, 30, 0},
        /* groups of heads and no other option (the kernels' grouped instantiation) */
        {2, 150, 4, 70, 66, 64, 2, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, false, 0, 0},
        {1, 130, 4, 64, 128, 64, 1, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, true, true, false, 0, 0},
        /* from here unpadded views, D and N multiples of 8: the 16-bit fused state passes
         * (bwd_tstates in ssd.cu; the cases above take the f32 ones) with every option,
         * groups only, the gate alone */
        {2, 200, 4, 64, 64, 64, 2, BK_SSD_SKIP_PER_CHANNEL, true, true, true, true, 0.01, 1, true, true, true, 0, 0},
        {2, 150, 4, 64, 64, 64, 2, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, false, 0, 0},
        {1, 130, 2, 64, 128, 64, 0, BK_SSD_SKIP_PER_HEAD, true, false, false, false, 0, 0, false, true, false, 0, 0},
        /* one group of 32 heads (the bench's ngroups 1) over 5 chunks: 32 heads' dB, dC
         * rows summed per group */
        {2, 300, 32, 16, 32, 64, 1, BK_SSD_SKIP_NONE, false, false, false, false, 0, 0, false, true, false, 0, 0},
    };
    const size_t padded = 4; /* cases below this index: views padded by the index */
    static const bk_dtype dts[] = {BK_DTYPE_F32, BK_DTYPE_BF16, BK_DTYPE_F16};
    for (size_t t = 0; t < sizeof dts / sizeof dts[0]; t++)
        for (size_t c = 0; c < sizeof big / sizeof big[0]; c++) {
            if ((bkt_quick() || pref == BK_PREFER_ALLOW_TF32) && t > 0)
                continue; /* sanitizers: f32 only; TF32: f32 only */
            const bk_dtype dt = dts[t];
            const bkt_ssd_opts *o = &big[c];
            char what[256], txt[200];
            bkt_ssd_opts_text(o, txt, sizeof txt);
            snprintf(what, sizeof what, "ssd_bwd %s%s cuda%s vs cpu", bk_dtype_name(dt), txt,
                     pref == BK_PREFER_ALLOW_TF32 ? " tf32" : "");
            bkt_ssd_problem p;
            bkt_ssd_make(&p, o, dt, c < padded ? (int64_t)c : 0);
            bkt_buf *in[NG] = {&p.x, &p.dt, &p.a, &p.b, &p.c, &p.skip, &p.z, &p.bias, &p.init};
            bkt_buf dy, dfin, gc[NG], gg[NG];
            int64_t sy[4] = {o->b, o->l, o->h, o->d}, sf[4] = {o->b, o->h, o->d, o->n};
            bkt_buf_make(&dy, dt, 4, sy, 0, -1, 1);
            bkt_buf_make(&dfin, dt, 4, sf, 0, -1, 1);
            memset(gc, 0, sizeof gc);
            memset(gg, 0, sizeof gg);
            for (int k = 0; k < NG; k++) {
                if (!in[k]->data)
                    continue;
                bkt_buf_make(&gc[k], dt, in[k]->view.rank, in[k]->view.shape, 0, 0, 0);
                bkt_buf_make(&gg[k], dt, in[k]->view.rank, in[k]->view.shape, 0, 0, 0);
                bkt_poison(gg[k].data, dt, gg[k].span);
            }
            bk_ssd_desc d = bkt_ssd_desc(&p);
            bk_ssd_bwd_plan cplan, gplan;
            if (bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &cplan), BK_STATUS_SUCCESS,
                                  what) &&
                bkt_expect_status(bk_ssd_bwd_select(&d, gpu, pref, &gplan), BK_STATUS_SUCCESS, what) &&
                check_math(what, &gplan.info, pref, dt) &&
                bkt_expect_status(run_opts_bwd(bk_target_cpu(), &cplan, &p, &dy, &dfin, gc), BK_STATUS_SUCCESS,
                                  what) &&
                bkt_expect_status(run_opts_bwd(gpu, &gplan, &p, &dy, &dfin, gg), BK_STATUS_SUCCESS, what)) {
                /* dA and ddt_bias: sums over (b, t) whose terms cancel, so few heads leave a
                   result far smaller than its terms and a norm-relative bound too tight for the
                   rounding of those terms; they are judged against the analytic f64 reverse
                   pass and the size of their terms (check_by_terms), as test_backward does (the
                   CPU's are checked against the same reference in test_options_bwd) */
                const int64_t H = o->h;
                double *sums = malloc((size_t)(4 * H + 1) * sizeof(double));
                double *ref_of[NG] = {NULL}, *mag_of[NG] = {NULL};
                ref_of[G_A] = sums, mag_of[G_A] = sums + H, ref_of[G_BIAS] = sums + 2 * H;
                mag_of[G_BIAS] = sums + 3 * H;
                bkt_ssd_ref_sums(&p, dy.val, o->final ? dfin.val : NULL, ref_of[G_A], mag_of[G_A], ref_of[G_BIAS],
                                 mag_of[G_BIAS]);
                static const int summed[] = {G_A, G_BIAS};
                for (int i = 0; i < 2; i++) {
                    const int k = summed[i];
                    if (!in[k]->data)
                        continue;
                    char wa[300];
                    snprintf(wa, sizeof wa, "%s: %s", what, k_gnames[k]);
                    check_by_terms(wa, &gg[k].view, ref_of[k], mag_of[k], H,
                                   grad_tol(&gplan.info, k, &gg[k].view, ref_of[k],
                                            dt == BK_DTYPE_F32 ? 3.0 : k_tc_slack));
                }
                free(sums);
                for (int k = 0; k < NG; k++) {
                    if (!in[k]->data || k == G_A || k == G_BIAS)
                        continue;
                    double *ref = malloc((size_t)(gc[k].numel + 1) * sizeof(double));
                    bkt_gather(&gc[k].view, ref);
                    char w2[300];
                    snprintf(w2, sizeof w2, "%s: %s", what, k_gnames[k]);
                    bkt_check_close_tol(w2, &gg[k].view, ref,
                                        grad_tol(&gplan.info, k, &gg[k].view, ref,
                                                 dt == BK_DTYPE_F32 ? 3.0 : k_tc_slack + k_ref_ulp));
                    free(ref);
                }
            }
            for (int k = 0; k < NG; k++)
                if (in[k]->data) {
                    bkt_buf_free(&gc[k]);
                    bkt_buf_free(&gg[k]);
                }
            bkt_buf_free(&dy);
            bkt_buf_free(&dfin);
            bkt_ssd_free(&p);
        }
}

/* The TF32 plan (BK_PREFER_ALLOW_TF32, f32) on the device, over the cases of the 16-bit
 * tensor-core backward: the option sweep against finite differences (ngroups, skip, z,
 * dt_bias/softplus/limit, initial/final states, seq_idx, odd lengths), the larger option
 * shapes against the CPU backward, k_cases in three variants and the larger shapes against
 * the reverse-mode reference (plan_tol's TF32 tolerance), each with a bit-identical rerun;
 * and on the bench shape's D and N its dx is not the exact plan's (another kernel ran). */
static void test_tf32_cuda(bk_target gpu, bool quick)
{
    const bk_preference tf = BK_PREFER_ALLOW_TF32;
    const bk_dtype f32 = BK_DTYPE_F32;
    test_options(gpu, tf, &f32, 1);
    test_options_vs_cpu(gpu, tf);
    for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
        test_backward(gpu, tf, f32, k_cases[c], (c & 1) != 0, 0.1);
        if (quick)
            continue;
        test_backward(gpu, tf, f32, k_cases[c], (c & 1) == 0, 0.1);
        test_backward(gpu, tf, f32, k_cases[c], (c & 1) != 0, 1.0);
    }
    static const ssd_case big[] = {{1, 1000, 2, 32, 48, 64}, {1, 150, 2, 256, 256, 64}, {2, 512, 4, 64, 128, 64}};
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++)
        if (!quick || c == 0)
            test_backward(gpu, tf, f32, big[c], c == 1, 0.1);

    const char *what = "ssd_bwd cuda tf32 is not the exact plan";
    const ssd_case s = {2, 256, 4, 64, 128, 64};
    ssd_problem p;
    make_problem(&p, s, f32, 0, 0.001, 0.1);
    bk_ssd_desc d = desc_of(s, f32);
    bk_ssd_bwd_plan pe, pt;
    const size_t bytes = (size_t)p.span[ODX] * sizeof(float);
    if (bkt_expect_status(bk_ssd_bwd_select(&d, gpu, BK_PREFER_FASTEST, &pe), BK_STATUS_SUCCESS, what) &&
        bkt_expect_status(bk_ssd_bwd_select(&d, gpu, tf, &pt), BK_STATUS_SUCCESS, what) &&
        bkt_expect_status(run_bwd_on(gpu, &pe, &p), BK_STATUS_SUCCESS, what)) {
        void *exact = bkt_snapshot(p.buf[ODX], bytes);
        if (bkt_expect_status(run_bwd_on(gpu, &pt, &p), BK_STATUS_SUCCESS, what))
            bkt_check(!bkt_same_bytes(exact, p.buf[ODX], bytes), what, "dx bit-identical to the exact plan's");
        bkt_free(exact);
    }
    free_problem(&p);
}

/* ssd_bwd_select as bkt_ssd_select_fn (bkt_ssd_tf32_select). */
BKT_SSD_SELECT_INFO(bwd_select_info, bk_ssd_bwd_plan, bk_ssd_bwd_select, bk_ssd_bwd_workspace_size)

/* The CUDA kernels on the device: every case of the CPU sweep (f32, f16, bf16; f64 is
 * CPU-only), larger shapes, the plan and the workspace formula. Determinism: the rerun
 * inside test_backward (over the previous outputs). Smaller under BK_TEST_QUICK. */
static void test_cuda(void)
{
    bk_target gpu;
    if (!bkt_cuda_target("ssd_bwd cuda", &gpu))
        return;
    static const bk_dtype gdt[] = {BK_DTYPE_F32, BK_DTYPE_F16, BK_DTYPE_BF16};
    const bool quick = bkt_quick();
    test_options(gpu, BK_PREFER_FASTEST, gdt, sizeof gdt / sizeof gdt[0]);
    test_options_vs_cpu(gpu, BK_PREFER_FASTEST);
    for (size_t t = 0; t < sizeof gdt / sizeof gdt[0]; t++)
        for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
            if (quick && t > 0 && (c & 1))
                continue; /* sanitizers: every case in f32, half of them in f16 and bf16 */
            test_backward(gpu, BK_PREFER_DETERMINISTIC, gdt[t], k_cases[c], (c & 1) != 0, 0.1);
            if (quick)
                continue;
            test_backward(gpu, BK_PREFER_DETERMINISTIC, gdt[t], k_cases[c], (c & 1) == 0, 0.1);
            test_backward(gpu, BK_PREFER_DETERMINISTIC, gdt[t], k_cases[c], (c & 1) != 0, 1.0);
        }
    static const ssd_case big[] = {
        {1, 1000, 2, 32, 48, 64}, /* 16 chunks, the last one partial (bf16: f32 states, a walk
                                     of 16 chunks from 2 blocks is not fused) */
        {1, 150, 2, 256, 256, 64}, /* bf16: the fused 16-bit state passes, 16 state tiles */
        {2, 512, 4, 64, 128, 64}, /* the bench shape's D, N and chunk, shorter (fused) */
    };
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++) {
        if (quick && c != 0)
            continue;
        test_backward(gpu, BK_PREFER_DETERMINISTIC, BK_DTYPE_F32, big[c], c == 1, 0.1);
        test_backward(gpu, BK_PREFER_DETERMINISTIC, BK_DTYPE_BF16, big[c], false, 0.1);
    }
    const char *what = "ssd_bwd cuda plan info";
    bk_ssd_desc d = {.batch = 2, .seq_len = 130, .heads = 3, .head_dim = 16,
                     .state_dim = 24, .chunk_size = 16, .dtype = BK_DTYPE_F16};
    bk_ssd_bwd_plan plan;
    if (bkt_expect_status(bk_ssd_bwd_select(&d, gpu, BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS, what)) {
        char name[96];
        bk_sku_name(&plan.info.sku, name, sizeof name);
        bkt_check(strcmp(name, "ssm/ssd_bwd/f16/sm80/bespoke") == 0, what, "sku %s", name);
        bkt_check(plan.info.precision.deterministic && plan.info.precision.accumulator == BK_DTYPE_F32 &&
                      plan.info.precision.math == BK_MATH_F16_BF16_TENSOR,
                  what, "precision not as documented (math %d)", (int)plan.info.precision.math);
        /* the documented formula: K = ceil(130 / 64) = 3 chunks, BH = 6, f32 pieces */
        size_t K = 3, BH = 6, DN = 16 * 24, pieces[] = {BH * K * DN, BH * K * DN, BH * K, BH * K}, want = 0;
        for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) /* the dA parts are f64 */
            want = ((want + 255) & ~(size_t)255) + (i == 3 ? 8 : 4) * pieces[i];
        bkt_check(bk_ssd_bwd_workspace_size(&plan) == want, what, "workspace %zu bytes, formula says %zu",
                  bk_ssd_bwd_workspace_size(&plan), want);
    }
    /* with dt_bias, a skip per channel and one group of 3 heads: + the ddt_bias and dskip
     * parts (f64) and the per-head dB, dC rows (f32, B * L * H * N each) */
    bk_ssd_desc od = d;
    od.ngroups = 1;
    od.skip = BK_SSD_SKIP_PER_CHANNEL;
    od.has_dt_bias = true;
    od.has_z = od.dt_softplus = od.has_initial_states = od.has_final_states = od.has_seq_idx = true;
    if (bkt_expect_status(bk_ssd_bwd_select(&od, gpu, BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS,
                          "ssd_bwd cuda options workspace")) {
        size_t K = 3, BH = 6, DN = 16 * 24, want = 0;
        size_t pieces[] = {BH * K * DN, BH * K * DN, BH * K, BH * K, BH * K, BH * K * 16, BH * 130 * 24, BH * 130 * 24};
        size_t bytes[] = {4, 4, 4, 8, 8, 8, 4, 4};
        for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
            want = ((want + 255) & ~(size_t)255) + bytes[i] * pieces[i];
        bkt_check(bk_ssd_bwd_workspace_size(&plan) == want, "ssd_bwd cuda options workspace",
                  "workspace %zu bytes, formula says %zu", bk_ssd_bwd_workspace_size(&plan), want);
    }
    /* bf16 on tensor cores as f16, f32 on CUDA cores */
    static const bk_dtype pdt[] = {BK_DTYPE_BF16, BK_DTYPE_F32};
    static const bk_math_precision pmath[] = {BK_MATH_F16_BF16_TENSOR, BK_MATH_F32};
    for (int i = 0; i < 2; i++) {
        d.dtype = pdt[i];
        if (bkt_expect_status(bk_ssd_bwd_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what))
            bkt_check(plan.info.precision.math == pmath[i] && plan.info.precision.deterministic, what,
                      "%s: math %d, expected %d", bk_dtype_name(pdt[i]), (int)plan.info.precision.math,
                      (int)pmath[i]);
    }
    d.dtype = BK_DTYPE_F64;
    bkt_expect_status(bk_ssd_bwd_select(&d, gpu, BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_UNSUPPORTED,
                      "ssd_bwd cuda f64");
    test_tf32_cuda(gpu, quick);
}

/* Overflow (issue 13). f16, batch = heads = 2^31 - 1, one step, D = N = 0: every view
 * fits in int64 bytes (dt ~2^63 bytes) and can_implement passes with unknown capacities,
 * but the CPU workspace's per-(batch, head) dA partials need 8 * 2^62 bytes: the size
 * used to wrap in size_t to a small value (a lent buffer of that size would then be
 * overrun); it is SIZE_MAX and run refuses. Then extents past int64 in can_implement. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F16;
    bk_ssd_desc d = {.batch = INT32_MAX, .seq_len = 1, .heads = INT32_MAX, .head_dim = 0, .state_dim = 0, .chunk_size = 1,
                     .dtype = dt};
    int64_t sx[4] = {INT32_MAX, 1, INT32_MAX, 0}, sdt[3] = {INT32_MAX, 1, INT32_MAX}, sa[1] = {INT32_MAX};
    uint16_t in[16], out[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_ssd_bwd_plan plan;
    if (bkt_expect_status(bk_ssd_bwd_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "ssd_bwd huge select")) {
        bk_tensor x = bkt_view_huge(in, dt, 4, sx), dtt = bkt_view_huge(in, dt, 3, sdt), a = bkt_view_huge(in, dt, 1, sa);
        bk_ssd_bwd_args args = {.x = x, .dt = dtt, .a = a, .b = x, .c = x, .dy = x, .dx = x,
                                .ddt = bkt_view_huge(out, dt, 3, sdt), .da = bkt_view_huge(out, dt, 1, sa), .db = x, .dc = x};
        bkt_expect_status(bk_ssd_bwd_can_implement(&plan, &args), BK_STATUS_SUCCESS, "ssd_bwd huge can_implement");
        bkt_check(bk_ssd_bwd_workspace_size(&plan) == SIZE_MAX, "ssd_bwd CPU workspace of 2^62 partials", "%zu",
                  bk_ssd_bwd_workspace_size(&plan));
        bkt_expect_status(bk_ssd_bwd_run(&plan, NULL, (bk_workspace){out, sizeof out}, &args),
                          BK_STATUS_INVALID_PROBLEM, "ssd_bwd run with a SIZE_MAX workspace");
        bkt_check(strstr(bk_last_error(), "ssd_bwd: the workspace") != NULL, "ssd_bwd workspace sentence", "\"%s\"",
                  bk_last_error());
    }
    bk_ssd_desc h = {.batch = INT32_MAX, .seq_len = INT32_MAX, .heads = INT32_MAX, .head_dim = 256, .state_dim = 256,
                     .chunk_size = 64, .dtype = BK_DTYPE_F32};
    int64_t hx[4] = {INT32_MAX, INT32_MAX, INT32_MAX, 256}, hdt[3] = {INT32_MAX, INT32_MAX, INT32_MAX};
    if (bkt_expect_status(bk_ssd_bwd_select(&h, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "ssd_bwd overflow select")) {
        bk_tensor x = bkt_view_huge(in, BK_DTYPE_F32, 4, hx), t3 = bkt_view_huge(in, BK_DTYPE_F32, 3, hdt);
        bk_tensor a = bkt_view_huge(in, BK_DTYPE_F32, 1, sa), o = bkt_view_huge(out, BK_DTYPE_F32, 4, hx);
        bk_ssd_bwd_args args = {.x = x, .dt = t3, .a = a, .b = x, .c = x, .dy = x, .dx = o, .ddt = t3, .da = a, .db = o, .dc = o};
        bkt_expect_overflow(bk_ssd_bwd_can_implement(&plan, &args), "ssd_bwd", "ssd_bwd 2^101 x");
        bkt_expect_overflow(bk_ssd_bwd_run(&plan, NULL, (bk_workspace){0}, &args), "ssd_bwd", "ssd_bwd run 2^101");
        if (bk_has_cuda() && bkt_expect_status(bk_ssd_bwd_select(&h, bk_target_cuda_cc(0, 9, 0), BK_PREFER_FASTEST,
                                                                 &plan),
                                               BK_STATUS_SUCCESS, "ssd_bwd CUDA overflow select"))
            bkt_check(bk_ssd_bwd_workspace_size(&plan) == SIZE_MAX, "ssd_bwd CUDA overflow workspace", "%zu",
                      bk_ssd_bwd_workspace_size(&plan));
    }
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "ssd_bwd overflow", "outputs written on failure");
    bkt_free(out0);
}

int main(void)
{
    bkt_init("test_ssd_bwd");
    for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
        for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
            test_backward(bk_target_cpu(), BK_PREFER_DETERMINISTIC, k_dtypes[t], k_cases[c], false, 0.1);
            test_backward(bk_target_cpu(), BK_PREFER_DETERMINISTIC, k_dtypes[t], k_cases[c], true, 0.1);
            test_backward(bk_target_cpu(), BK_PREFER_DETERMINISTIC, k_dtypes[t], k_cases[c], (c & 1) != 0, 1.0);
        }
    test_options(bk_target_cpu(), BK_PREFER_FASTEST, k_dtypes, sizeof k_dtypes / sizeof k_dtypes[0]);
    test_options_thread_count();
    test_option_bad_inputs();
    test_finite_differences(4, 0.1);
    test_finite_differences(4, 1.0);
    test_finite_differences(1, 1.0);
    test_finite_differences(64, 1.0);
    test_chunk_invariance();
    test_thread_count();
    test_plan_info();
    bkt_ssd_tf32_select("ssd_bwd", bwd_select_info);
    test_bad_inputs();
    test_cuda();
    test_overflow();
    return bkt_finish();
}
