/* fuzz_attention.c - sdpa_fwd and sdpa_bwd from fuzz bytes (see fuzz.h). */
#include "fuzz.h"

static bk_sdpa_fwd_desc read_desc(fz *f)
{
    bk_sdpa_fwd_desc d;
    d.batch = fz_extent(f);
    d.q_heads = fz_extent(f);
    d.kv_heads = fz_extent(f);
    d.q_len = fz_extent(f);
    d.kv_len = fz_extent(f);
    d.head_dim_qk = fz_extent(f);
    d.head_dim_v = fz_bool(f) ? d.head_dim_qk : fz_extent(f);
    d.scale = fz_scalar(f);
    d.causal = fz_bool(f);
    d.window_left = fz_bool(f) ? -1 : fz_extent(f);
    d.softcap = fz_bool(f) ? 0.0 : fz_scalar(f);
    d.alibi = fz_bool(f);
    d.dtype = fz_dtype(f);
    return d;
}

/* The tensors both directions read: q, k, v, the optional slopes, and the descriptor's
 * shapes of the q-, k-, v-, y-like and lse tensors (views may carry mutated ones). */
typedef struct inputs {
    bk_tensor q, k, v, slopes_slot;
    const bk_tensor *slopes;
    int64_t sq[4], sk[4], sv[4], y[4], lse[3];
} inputs;

static void read_inputs(fz *f, const bk_sdpa_fwd_desc *d, inputs *in)
{
    int64_t q[4] = {d->batch, d->q_heads, d->q_len, d->head_dim_qk};
    int64_t k[4] = {d->batch, d->kv_heads, d->kv_len, d->head_dim_qk};
    int64_t v[4] = {d->batch, d->kv_heads, d->kv_len, d->head_dim_v};
    int64_t y[4] = {d->batch, d->q_heads, d->q_len, d->head_dim_v}, lse[3] = {d->batch, d->q_heads, d->q_len};
    int64_t sl[1] = {d->q_heads};
    in->q = fz_tensor(f, d->dtype, 4, q, FZ_IN);
    in->k = fz_tensor(f, d->dtype, 4, k, FZ_IN);
    in->v = fz_tensor(f, d->dtype, 4, v, FZ_IN);
    in->slopes = fz_optional(f, &in->slopes_slot, BK_DTYPE_F32, 1, sl, FZ_IN);
    for (int i = 0; i < 4; i++) {
        in->sq[i] = q[i];
        in->sk[i] = k[i];
        in->sv[i] = v[i];
        in->y[i] = y[i];
    }
    for (int i = 0; i < 3; i++)
        in->lse[i] = lse[i];
}

static double work_of(const bk_sdpa_fwd_desc *d)
{
    return (double)d->batch * d->q_heads * d->q_len * ((double)d->kv_len + 1) * (d->head_dim_qk + d->head_dim_v);
}

static void fwd(fz *f)
{
    bk_sdpa_fwd_desc d = read_desc(f);
    bk_sdpa_fwd_plan plan;
    if (!FZ_SELECT(f, sdpa_fwd, &d, &plan))
        return;
    inputs in;
    read_inputs(f, &d, &in);
    bk_sdpa_fwd_args a = {in.q, in.k, in.v, fz_tensor(f, d.dtype, 4, in.y, FZ_OUT), NULL, in.slopes};
    bk_tensor lse;
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 3, in.lse, FZ_OUT);
    FZ_FINISH(f, sdpa_fwd, &plan, &a, work_of(&d));
}

static void bwd(fz *f)
{
    bk_sdpa_bwd_desc d = read_desc(f);
    bk_sdpa_bwd_plan plan;
    if (!FZ_SELECT(f, sdpa_bwd, &d, &plan))
        return;
    inputs in;
    read_inputs(f, &d, &in);
    bk_sdpa_bwd_args a;
    a.q = in.q;
    a.k = in.k;
    a.v = in.v;
    a.alibi_slopes = in.slopes;
    a.y = fz_tensor(f, d.dtype, 4, in.y, FZ_IN);
    a.dy = fz_tensor(f, d.dtype, 4, in.y, FZ_IN);
    a.lse = fz_tensor(f, BK_DTYPE_F32, 3, in.lse, FZ_IN);
    a.dq = fz_tensor(f, d.dtype, 4, in.sq, FZ_OUT);
    a.dk = fz_tensor(f, d.dtype, 4, in.sk, FZ_OUT);
    a.dv = fz_tensor(f, d.dtype, 4, in.sv, FZ_OUT);
    FZ_FINISH(f, sdpa_bwd, &plan, &a, 3.0 * work_of(&d));
}

void fz_body(fz *f)
{
    if (fz_bool(f))
        bwd(f);
    else
        fwd(f);
}
