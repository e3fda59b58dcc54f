/* bk_ssd_test.c - the SSD options fixture (see bk_ssd_test.h). */
#include "bk_ssd_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A fresh buffer of the given shape, filled with values in [lo, hi) rounded to the dtype,
 * viewed padded by `pad` elements per axis (contiguous for 0); val holds the view's values. */
void bkt_buf_make(bkt_buf *t, bk_dtype dtype, int32_t rank, const int64_t *shape, int64_t pad, double lo, double hi)
{
    bk_tensor probe = bkt_view_padded(NULL, dtype, rank, shape, pad);
    t->span = bkt_view_span(&probe) + 1;
    t->data = bkt_alloc(dtype, t->span);
    bkt_fill(t->data, dtype, t->span, lo, hi);
    t->view = bkt_view_padded(t->data, dtype, rank, shape, pad);
    t->numel = 1;
    for (int32_t i = 0; i < rank; i++)
        t->numel *= shape[i];
    t->val = malloc((size_t)(t->numel + 1) * sizeof(double));
    bkt_gather(&t->view, t->val);
}

void bkt_buf_free(bkt_buf *t)
{
    bkt_free(t->data);
    free(t->val);
    memset(t, 0, sizeof *t);
}

/* A random problem with the options of `o`. dt is raw: in [-3, 1) with the softplus, else
 * [0.01, 0.5); dt_bias in [-1, 1) with the softplus, else [0, 0.5); A in [-1.5, -0.1);
 * z in [-2, 2); everything else in [-1, 1). seq_idx: per row, a change
 * at each position with probability 1 / seq_every; seq_every 0: changes at the fixed
 * positions of bkt_ssd_cut (at, next to and inside the CUDA kernels' 64-step chunks); with
 * nv sequences, cu_seqlens cuts L at random (an empty sequence among them when nv > 2) and
 * seq_idx numbers them. */
/* The fixed seq_idx changes (seq_every 0) of row b, against 64-step chunks: 1 and 63
 * (chunk 0), 64 (chunk 1's first position), 100 (inside chunk 1), none in chunk 2 (the
 * state carried through it), 193 (inside chunk 3); row b > 0 has those past position b
 * only. */
bool bkt_ssd_cut(int64_t b, int64_t t)
{
    static const int64_t cuts[] = {1, 63, 64, 100, 193};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        if (t == cuts[i] && t > b)
            return true;
    return false;
}

/* With the dt limit: every raw dt whose dt' (bias and softplus as the reference) lies
 * within 1e-3 of a bound moves up by 0.05 until it does not, so that the tests' central
 * differences (step 1e-5) never straddle the clamp's kink. */
static void keep_off_limits(bkt_ssd_problem *p)
{
    const bkt_ssd_opts *o = &p->o;
    const bk_tensor *v = &p->dt.view;
    for (int64_t b = 0; b < o->b; b++)
        for (int64_t t = 0; t < o->l; t++)
            for (int64_t h = 0; h < o->h; h++) {
                const int64_t i = (b * o->l + t) * o->h + h, off = b * v->strides[0] + t * v->strides[1] + h * v->strides[2];
                for (int tries = 0; tries < 100; tries++) {
                    double u = p->dt.val[i] + (o->bias ? p->bias.val[h] : 0.0);
                    if (o->softplus && u <= 20.0)
                        u = log1p(exp(u));
                    if (fabs(u - o->lo) >= 1e-3 && fabs(u - o->hi) >= 1e-3)
                        break;
                    bkt_set(p->dt.data, p->dtype, off, p->dt.val[i] + 0.05);
                    p->dt.val[i] = bkt_get(p->dt.data, p->dtype, off);
                }
            }
}

void bkt_ssd_make(bkt_ssd_problem *p, const bkt_ssd_opts *o, bk_dtype dtype, int64_t pad)
{
    memset(p, 0, sizeof *p);
    p->o = *o;
    p->dtype = dtype;
    p->g = o->ngroups > 0 ? o->ngroups : o->h;
    const int64_t B = o->b, L = o->l, H = o->h, D = o->d, N = o->n;
    int64_t sx[4] = {B, L, H, D}, sdt[3] = {B, L, H}, sh[2] = {H, D}, sbc[4] = {B, L, p->g, N}, sst[4] = {B, H, D, N};
    bkt_buf_make(&p->x, dtype, 4, sx, pad, -1, 1);
    bkt_buf_make(&p->dt, dtype, 3, sdt, pad, o->softplus ? -3.0 : 0.01, o->softplus ? 1.0 : 0.5);
    bkt_buf_make(&p->a, dtype, 1, sh, 0, -1.5, -0.1);
    bkt_buf_make(&p->b, dtype, 4, sbc, pad, -1, 1);
    bkt_buf_make(&p->c, dtype, 4, sbc, pad, -1, 1);
    if (o->skip != BK_SSD_SKIP_NONE)
        bkt_buf_make(&p->skip, dtype, o->skip == BK_SSD_SKIP_PER_CHANNEL ? 2 : 1, sh, 0, -1, 1);
    if (o->z)
        bkt_buf_make(&p->z, dtype, 4, sx, pad, -2, 2);
    if (o->bias) /* without the softplus, a bias that keeps dt > 0 (the state must not grow) */
        bkt_buf_make(&p->bias, dtype, 1, sh, 0, o->softplus ? -1.0 : 0.0, o->softplus ? 1.0 : 0.5);
    if (o->limit) /* keep finite differences off the clamp's kinks */
        keep_off_limits(p);
    if (o->init)
        bkt_buf_make(&p->init, dtype, 4, sst, pad, -1, 1);
    if (o->seq || o->nv > 0) {
        p->seq = bkt_alloc(BK_DTYPE_I32, B * L + 1);
        int64_t shape[2] = {B, L};
        p->seq_view = bkt_view(p->seq, BK_DTYPE_I32, 2, shape);
    }
    if (o->nv > 0) {
        p->cu = bkt_alloc(BK_DTYPE_I32, o->nv + 1);
        int64_t shape[1] = {o->nv + 1};
        p->cu_view = bkt_view(p->cu, BK_DTYPE_I32, 1, shape);
        p->cu[0] = 0;
        for (int32_t i = 1; i < o->nv; i++) /* random cuts, sorted by insertion */
            p->cu[i] = (int32_t)bkt_randint(0, L);
        for (int32_t i = 1; i < o->nv; i++)
            for (int32_t j = i; j > 1 && p->cu[j] < p->cu[j - 1]; j--) {
                int32_t t = p->cu[j];
                p->cu[j] = p->cu[j - 1];
                p->cu[j - 1] = t;
            }
        if (o->nv > 2) /* an empty sequence */
            p->cu[2] = p->cu[1];
        p->cu[o->nv] = (int32_t)L;
        for (int32_t i = 0; i < o->nv; i++)
            for (int32_t t = p->cu[i]; t < p->cu[i + 1]; t++)
                p->seq[t] = i;
    } else if (o->seq) {
        for (int64_t b = 0; b < B; b++) {
            int32_t id = (int32_t)bkt_randint(0, 2);
            for (int64_t t = 0; t < L; t++) {
                if (t > 0 && (o->seq_every > 0 ? bkt_randint(1, o->seq_every) == 1 : bkt_ssd_cut(b, t)))
                    id += (int32_t)bkt_randint(1, 3);
                p->seq[b * L + t] = id;
            }
        }
    }
}

void bkt_ssd_free(bkt_ssd_problem *p)
{
    bkt_buf *bufs[] = {&p->x, &p->dt, &p->a, &p->b, &p->c, &p->skip, &p->z, &p->bias, &p->init};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]->data)
            bkt_buf_free(bufs[i]);
    bkt_free(p->seq);
    bkt_free(p->cu);
}

bk_ssd_desc bkt_ssd_desc(const bkt_ssd_problem *p)
{
    const bkt_ssd_opts *o = &p->o;
    bk_ssd_desc d = {.batch = (int32_t)o->b,
                     .seq_len = (int32_t)o->l,
                     .heads = (int32_t)o->h,
                     .head_dim = (int32_t)o->d,
                     .state_dim = (int32_t)o->n,
                     .chunk_size = o->chunk,
                     .dtype = p->dtype,
                     .ngroups = o->ngroups,
                     .skip = o->skip,
                     .has_z = o->z,
                     .has_dt_bias = o->bias,
                     .dt_softplus = o->softplus,
                     .has_dt_limit = o->limit,
                     .dt_min = o->lo,
                     .dt_max = o->hi,
                     .has_initial_states = o->init,
                     .has_final_states = o->final,
                     .has_seq_idx = o->seq || o->nv > 0,
                     .n_varlen_seqs = o->nv};
    return d;
}

/* The forward's inputs (y, final_states and varlen_states left empty / NULL). */
bk_ssd_fwd_args bkt_ssd_fwd_inputs(const bkt_ssd_problem *p)
{
    bk_ssd_fwd_args a = {.x = p->x.view, .dt = p->dt.view, .a = p->a.view, .b = p->b.view, .c = p->c.view};
    a.skip = p->skip.data ? &p->skip.view : NULL;
    a.z = p->z.data ? &p->z.view : NULL;
    a.dt_bias = p->bias.data ? &p->bias.view : NULL;
    a.initial_states = p->init.data ? &p->init.view : NULL;
    a.seq_idx = p->seq ? &p->seq_view : NULL;
    a.cu_seqlens = p->cu ? &p->cu_view : NULL;
    return a;
}

static double ref_dt(const bkt_ssd_opts *o, double v)
{
    if (o->softplus)
        v = v > 20.0 ? v : log1p(exp(v));
    if (o->limit)
        v = v < o->lo ? o->lo : v > o->hi ? o->hi : v;
    return v;
}

/* dt' of step row (= (b, t) * H + h) of p: clamp(softplus(dt + bias)). */
static double ref_step_dt(const bkt_ssd_problem *p, int64_t row, int64_t h)
{
    return ref_dt(&p->o, p->dt.val[row] + (p->o.bias ? p->bias.val[h] : 0.0));
}

/* Whether the state resets before step t of batch b (seq_idx changes there). */
static bool ref_reset(const bkt_ssd_problem *p, int64_t b, int64_t t)
{
    const int64_t L = p->o.l;
    return p->seq && t > 0 && p->seq[b * L + t] != p->seq[b * L + t - 1];
}

/* The sequential recurrence in f64 from the values (val) of p, step by step:
 *   reset where seq_idx changes; dt' = clamp(softplus(dt + bias)); h = exp(dt' A) h + dt' x B^T;
 *   y = (h C + skip x) silu(z). y [B, L, H, D]; final [B, H, D, N] and varlen [nv, H, D, N]
 * when non-NULL (varlen: the state after each sequence's last step, 0 when empty). */
void bkt_ssd_ref(const bkt_ssd_problem *p, double *y, double *final, double *varlen)
{
    const bkt_ssd_opts *o = &p->o;
    const int64_t B = o->b, L = o->l, H = o->h, D = o->d, N = o->n, P = p->g > 0 ? H / p->g : 1;
    double *st = calloc((size_t)(D * N + 1), sizeof(double));
    if (varlen)
        memset(varlen, 0, (size_t)(o->nv * H * D * N) * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / P;
            for (int64_t i = 0; i < D * N; i++)
                st[i] = o->init ? p->init.val[((b * H + h) * D) * N + i] : 0.0;
            for (int64_t t = 0; t < L; t++) {
                if (ref_reset(p, b, t))
                    memset(st, 0, (size_t)(D * N) * sizeof(double));
                const int64_t row = (b * L + t) * H + h, grow = (b * L + t) * p->g + g;
                const double dt = ref_step_dt(p, row, h);
                const double decay = exp(dt * p->a.val[h]);
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0.0;
                    const double xv = p->x.val[row * D + d];
                    for (int64_t n = 0; n < N; n++) {
                        double *s = &st[d * N + n];
                        *s = decay * *s + dt * xv * p->b.val[grow * N + n];
                        acc += p->c.val[grow * N + n] * *s;
                    }
                    if (o->skip == BK_SSD_SKIP_PER_HEAD)
                        acc += p->skip.val[h] * xv;
                    else if (o->skip == BK_SSD_SKIP_PER_CHANNEL)
                        acc += p->skip.val[h * D + d] * xv;
                    if (o->z) {
                        const double zv = p->z.val[row * D + d];
                        acc *= zv / (1.0 + exp(-zv));
                    }
                    y[row * D + d] = acc;
                }
                for (int32_t i = 0; varlen && i < o->nv; i++)
                    if (p->cu[i + 1] > p->cu[i] && p->cu[i + 1] - 1 == t)
                        memcpy(varlen + (i * H + h) * D * N, st, (size_t)(D * N) * sizeof(double));
            }
            if (final)
                memcpy(final + (b * H + h) * D * N, st, (size_t)(D * N) * sizeof(double));
        }
    free(st);
}

/* d dt' / d(dt + bias) at the raw value v: softplus' (the sigmoid; 1 above 20, as ref_dt),
 * 0 where the limit clamps. */
static double ref_dt_slope(const bkt_ssd_opts *o, double v)
{
    const double slope = o->softplus ? (v > 20.0 ? 1.0 : 1.0 / (1.0 + exp(-v))) : 1.0, w = ref_dt(o, v);
    return o->limit && (w <= o->lo || w >= o->hi) ? 0.0 : slope;
}

/* dA and ddt_bias of p by reverse-mode differentiation of bkt_ssd_ref's recurrence in f64,
 * with the output gradient dy [B, L, H, D] and dfinal [B, H, D, N] (NULL: none; the varlen
 * states take no gradient): with decay_t = exp(dt'_t A) and dh_t the gradient of the state
 * after step t (dh_t = C_t^T dy'_t + decay_{t+1} dh_{t+1}, dy' = dy silu(z), nothing
 * crossing a seq_idx reset),
 *   dA[h] = sum_{b,t} dt'_t decay_t <dh_t, h_{t-1}>,
 *   ddt'_t = A decay_t <dh_t, h_{t-1}> + x_t^T dh_t B_t,
 *   ddt_bias[h] = sum_{b,t} ddt'_t dt'_t / d(dt_t + bias) (ref_dt_slope).
 * Both are sums over (b, t) whose terms cancel; the _mag arrays receive the size of what
 * the reduction adds up, the sum of its terms' absolute values, against which a result that
 * cancels is judged (check_by_terms). Each array holds H values. */
void bkt_ssd_ref_sums(const bkt_ssd_problem *p, const double *dy, const double *dfinal, double *da, double *da_mag,
                      double *dbias, double *dbias_mag)
{
    const bkt_ssd_opts *o = &p->o;
    const int64_t B = o->b, L = o->l, H = o->h, D = o->d, N = o->n, DN = D * N, P = p->g > 0 ? H / p->g : 1;
    double *hs = calloc((size_t)((L + 1) * DN + 1), sizeof(double)); /* hs[t]: the state before step t */
    double *dh = calloc((size_t)(DN + 1), sizeof(double));
    for (int64_t h = 0; h < H; h++)
        da[h] = da_mag[h] = dbias[h] = dbias_mag[h] = 0.0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / P;
            for (int64_t i = 0; i < DN; i++)
                hs[i] = o->init ? p->init.val[((b * H + h) * D) * N + i] : 0.0;
            for (int64_t t = 0; t < L; t++) { /* forward: hs[t + 1] from hs[t] (reset first) */
                if (ref_reset(p, b, t))
                    memset(hs + t * DN, 0, (size_t)DN * sizeof(double));
                const int64_t row = (b * L + t) * H + h, grow = (b * L + t) * p->g + g;
                const double dt = ref_step_dt(p, row, h);
                const double decay = exp(dt * p->a.val[h]);
                for (int64_t d = 0; d < D; d++)
                    for (int64_t n = 0; n < N; n++)
                        hs[(t + 1) * DN + d * N + n] =
                            decay * hs[t * DN + d * N + n] + dt * p->x.val[row * D + d] * p->b.val[grow * N + n];
            }
            for (int64_t i = 0; i < DN; i++)
                dh[i] = dfinal ? dfinal[((b * H + h) * D) * N + i] : 0.0;
            for (int64_t t = L - 1; t >= 0; t--) { /* reverse */
                const int64_t row = (b * L + t) * H + h, grow = (b * L + t) * p->g + g;
                const double raw = p->dt.val[row] + (o->bias ? p->bias.val[h] : 0.0);
                const double dt = ref_dt(o, raw), decay = exp(dt * p->a.val[h]);
                double gsum = 0.0, xdhb = 0.0;
                for (int64_t d = 0; d < D; d++) {
                    double dyv = dy[row * D + d], dhb = 0.0;
                    if (o->z) {
                        const double zv = p->z.val[row * D + d];
                        dyv *= zv / (1.0 + exp(-zv));
                    }
                    for (int64_t n = 0; n < N; n++) {
                        const int64_t i = d * N + n;
                        const double cv = p->c.val[grow * N + n], bv = p->b.val[grow * N + n];
                        dh[i] += dyv * cv;
                        gsum += dh[i] * hs[t * DN + i];
                        dhb += dh[i] * bv;
                    }
                    xdhb += p->x.val[row * D + d] * dhb;
                }
                const double term = dt * decay * gsum;
                const double bias_term = (p->a.val[h] * decay * gsum + xdhb) * ref_dt_slope(o, raw);
                da[h] += term;
                da_mag[h] += fabs(term);
                dbias[h] += bias_term;
                dbias_mag[h] += fabs(bias_term);
                const bool reset = ref_reset(p, b, t);
                for (int64_t i = 0; i < DN; i++)
                    dh[i] = reset ? 0.0 : decay * dh[i];
            }
        }
    free(hs);
    free(dh);
}

/* " G2 skip/h z bias softplus limit init final seq varlen3" for the case names. */
void bkt_ssd_opts_text(const bkt_ssd_opts *o, char *buf, size_t size)
{
    snprintf(buf, size, " B%lld L%lld H%lld D%lld N%lld chunk %d G%d%s%s%s%s%s%s%s%s", (long long)o->b,
             (long long)o->l, (long long)o->h, (long long)o->d, (long long)o->n, (int)o->chunk, (int)o->ngroups,
             o->skip == BK_SSD_SKIP_PER_HEAD ? " skip/h" : o->skip == BK_SSD_SKIP_PER_CHANNEL ? " skip/hd" : "",
             o->z ? " z" : "", o->bias ? " bias" : "", o->softplus ? " softplus" : "", o->limit ? " limit" : "",
             o->init ? " init" : "", o->final ? " final" : "", o->seq ? " seq" : "");
    if (o->nv > 0) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, " varlen%d", (int)o->nv);
    }
}

/* t's view with its data on dev's target: copied up (and, when out, back at bkt_dev_end). */
bk_tensor bkt_buf_on(bkt_dev *dev, const bkt_buf *t, bool out)
{
    bk_tensor v = t->view;
    const size_t bytes = (size_t)t->span * bk_dtype_size(v.dtype);
    v.data = out ? bkt_dev_out(dev, t->data, bytes) : bkt_dev_in(dev, t->data, bytes);
    return v;
}

/* `view`, which points inside the host buffer buf (bytes long), moved to dev's copy of buf:
 * the same offset from its start (buf copied up; and back at bkt_dev_end when out). */
bk_tensor bkt_moved(bkt_dev *dev, bk_tensor view, void *buf, size_t bytes, bool out)
{
    char *base = (char *)(out ? bkt_dev_out(dev, buf, bytes) : bkt_dev_in(dev, buf, bytes));
    view.data = base + ((char *)view.data - (char *)buf);
    return view;
}

/* An optional tensor on dev's target: NULL when t is absent, else slot (filled). */
const bk_tensor *bkt_opt_on(bkt_dev *dev, const bkt_buf *t, bool out, bk_tensor *slot)
{
    if (t->data == NULL)
        return NULL;
    *slot = bkt_buf_on(dev, t, out);
    return slot;
}

/* bkt_ssd_fwd_inputs with every input on dev's target; `slots` hold the optional views. */
bk_ssd_fwd_args bkt_ssd_fwd_inputs_on(bkt_dev *dev, const bkt_ssd_problem *p, bk_tensor slots[6])
{
    bk_ssd_fwd_args a = bkt_ssd_fwd_inputs(p);
    a.x = bkt_buf_on(dev, &p->x, false);
    a.dt = bkt_buf_on(dev, &p->dt, false);
    a.a = bkt_buf_on(dev, &p->a, false);
    a.b = bkt_buf_on(dev, &p->b, false);
    a.c = bkt_buf_on(dev, &p->c, false);
    a.skip = bkt_opt_on(dev, &p->skip, false, &slots[0]);
    a.z = bkt_opt_on(dev, &p->z, false, &slots[1]);
    a.dt_bias = bkt_opt_on(dev, &p->bias, false, &slots[2]);
    a.initial_states = bkt_opt_on(dev, &p->init, false, &slots[3]);
    if (a.seq_idx) {
        slots[4] = p->seq_view;
        slots[4].data = bkt_dev_in(dev, p->seq, (size_t)(p->o.b * p->o.l + 1) * 4);
        a.seq_idx = &slots[4];
    }
    if (a.cu_seqlens) {
        slots[5] = p->cu_view;
        slots[5].data = bkt_dev_in(dev, p->cu, (size_t)(p->o.nv + 1) * 4);
        a.cu_seqlens = &slots[5];
    }
    return a;
}

/* The TF32 plan of `op` (ssd_fwd or ssd_bwd) is opt-in, planned for sm_80 and sm_90 without
 * a device: for f32 on CUDA, FASTEST, DETERMINISTIC and REFERENCE keep the exact plan
 * (BK_MATH_F32); BK_PREFER_ALLOW_TF32 selects the TF32 one (BK_MATH_TF32, f32 accumulate,
 * deterministic, bit-stable, SKU ssm/<op>/f32/sm80/bespoke, another kernel, the exact
 * plan's workspace) and records the preference; f16/bf16 and the CPU select under it what
 * FASTEST selects. */
void bkt_ssd_tf32_select(const char *op, bkt_ssd_select_fn select)
{
    char what[96], want[96], name[96];
    bk_ssd_desc d = {.batch = 2, .seq_len = 130, .heads = 4, .head_dim = 64, .state_dim = 128, .chunk_size = 64,
                     .dtype = BK_DTYPE_F32, .ngroups = 2, .has_z = true};
    bk_plan_info p, q;
    size_t wp = 0, wq = 0;
    snprintf(what, sizeof what, "%s tf32 select", op);
    if (!bk_has_cuda()) {
        bkt_skip(what, "built without CUDA");
        return;
    }
    snprintf(want, sizeof want, "ssm/%s/f32/sm80/bespoke", op);
    for (int cc = 8; cc <= 9; cc++) {
        const bk_target t = bk_target_cuda_cc(0, cc, 0);
        static const bk_preference exact[] = {BK_PREFER_FASTEST, BK_PREFER_DETERMINISTIC, BK_PREFER_REFERENCE};
        for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
            if (bkt_expect_status(select(&d, t, exact[i], &p, &wp), BK_STATUS_SUCCESS, what))
                bkt_check(p.precision.math == BK_MATH_F32, what, "f32, preference %d: math %d", (int)exact[i],
                          (int)p.precision.math);
        if (bkt_expect_status(select(&d, t, BK_PREFER_ALLOW_TF32, &q, &wq), BK_STATUS_SUCCESS, what)) {
            bk_sku_name(&q.sku, name, sizeof name);
            bkt_check(strcmp(name, want) == 0, what, "sku %s", name);
            bkt_check(q.precision.math == BK_MATH_TF32 && q.precision.accumulator == BK_DTYPE_F32 &&
                          q.precision.deterministic && q.precision.bit_stable,
                      what, "precision {%d, %d, %d, %d}", (int)q.precision.math, (int)q.precision.accumulator,
                      (int)q.precision.deterministic, (int)q.precision.bit_stable);
            bkt_check(q.preference == BK_PREFER_ALLOW_TF32 && q.kernel != p.kernel, what,
                      "preference %d, kernel %d (exact: %d)", (int)q.preference, (int)q.kernel, (int)p.kernel);
            bkt_check(wq == wp, what, "workspace %zu, exact %zu", wq, wp);
        }
        static const bk_dtype halves[] = {BK_DTYPE_F16, BK_DTYPE_BF16};
        for (int h = 0; h < 2; h++) {
            bk_ssd_desc e = d;
            e.dtype = halves[h];
            if (bkt_expect_status(select(&e, t, BK_PREFER_ALLOW_TF32, &q, &wq), BK_STATUS_SUCCESS, what))
                bkt_check(q.precision.math == BK_MATH_F16_BF16_TENSOR, what, "%s: math %d", bk_dtype_name(e.dtype),
                          (int)q.precision.math);
        }
    }
    if (bkt_expect_status(select(&d, bk_target_cpu(), BK_PREFER_ALLOW_TF32, &q, &wq), BK_STATUS_SUCCESS, what))
        bkt_check(q.precision.math == BK_MATH_F64, what, "cpu: math %d", (int)q.precision.math);
}
