/* sdpa_check.c - descriptor and input checks shared by sdpa_fwd and sdpa_bwd (see
 * sdpa_check.h). Everything goes through the core helpers; only the rules no helper
 * states (GQA divisibility, the head-dim ceiling, softcap's sign, the slopes pointer
 * against desc.alibi) are written here, once, in the helpers' message style. */
#include "core/sdpa_check.h"

bk_status bk_sdpa_check_desc(const char *op, const bk_sdpa_fwd_desc *d)
{
    BK_TRY(bk_check_ptr(op, "desc", d));
    BK_TRY(bk_check_extent(op, "desc.batch", d->batch, 0));
    BK_TRY(bk_check_extent(op, "desc.q_heads", d->q_heads, 1));
    BK_TRY(bk_check_extent(op, "desc.kv_heads", d->kv_heads, 1));
    BK_TRY(bk_check_extent(op, "desc.q_len", d->q_len, 0));
    BK_TRY(bk_check_extent(op, "desc.kv_len", d->kv_len, 0));
    BK_TRY(bk_check_extent(op, "desc.head_dim_qk", d->head_dim_qk, 1));
    BK_TRY(bk_check_extent(op, "desc.head_dim_v", d->head_dim_v, 1));
    BK_TRY(bk_check_gqa(op, d->q_heads, d->kv_heads, "desc.kv_heads"));
    if (d->head_dim_qk > BK_SDPA_MAX_HEAD_DIM)
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: desc.head_dim_qk is %d, expected <= %d", op, (int)d->head_dim_qk,
                       BK_SDPA_MAX_HEAD_DIM);
    if (d->head_dim_v > BK_SDPA_MAX_HEAD_DIM)
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: desc.head_dim_v is %d, expected <= %d", op, (int)d->head_dim_v,
                       BK_SDPA_MAX_HEAD_DIM);
    BK_TRY(bk_check_extent(op, "desc.window_left", d->window_left, -1));
    BK_TRY(bk_check_finite(op, "desc.scale", d->scale));
    BK_TRY(bk_check_finite(op, "desc.softcap", d->softcap));
    if (d->softcap < 0.0)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: desc.softcap is %g, expected >= 0 (0 = off)", op, d->softcap);
    return bk_check_dtype_in(op, "desc.dtype", d->dtype, BK_DT_FLOATS);
}

static bk_tensor_spec spec4(const char *name, bk_dtype dtype, int64_t b, int64_t h, int64_t l, int64_t dim,
                            const char *dims, uint32_t layout)
{
    bk_tensor_spec s = {name, dtype, 4, {b, h, l, dim}, dims, layout};
    return s;
}

bk_tensor_spec bk_sdpa_q_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout)
{
    return spec4(name, d->dtype, d->batch, d->q_heads, d->q_len, d->head_dim_qk, "batch,q_heads,q_len,head_dim_qk",
                 layout);
}

bk_tensor_spec bk_sdpa_k_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout)
{
    return spec4(name, d->dtype, d->batch, d->kv_heads, d->kv_len, d->head_dim_qk,
                 "batch,kv_heads,kv_len,head_dim_qk", layout);
}

bk_tensor_spec bk_sdpa_v_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout)
{
    return spec4(name, d->dtype, d->batch, d->kv_heads, d->kv_len, d->head_dim_v, "batch,kv_heads,kv_len,head_dim_v",
                 layout);
}

bk_tensor_spec bk_sdpa_y_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout)
{
    return spec4(name, d->dtype, d->batch, d->q_heads, d->q_len, d->head_dim_v, "batch,q_heads,q_len,head_dim_v",
                 layout);
}

bk_tensor_spec bk_sdpa_lse_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout)
{
    bk_tensor_spec s = {name, BK_DTYPE_F32, 3, {d->batch, d->q_heads, d->q_len}, "batch,q_heads,q_len", layout};
    return s;
}

bk_status bk_sdpa_check_inputs(const char *op, const bk_sdpa_fwd_desc *d, const bk_tensor *q, const bk_tensor *k,
                               const bk_tensor *v, const bk_tensor *alibi_slopes)
{
    const uint32_t kv_layout = BK_LAYOUT_INNER_UNIT | BK_LAYOUT_BROADCAST_AXIS(1);
    bk_tensor_spec s_q = bk_sdpa_q_spec(d, "q", BK_LAYOUT_INNER_UNIT);
    bk_tensor_spec s_k = bk_sdpa_k_spec(d, "k", kv_layout);
    bk_tensor_spec s_v = bk_sdpa_v_spec(d, "v", kv_layout);
    BK_TRY(bk_check_tensor(op, q, &s_q));
    BK_TRY(bk_check_tensor(op, k, &s_k));
    BK_TRY(bk_check_tensor(op, v, &s_v));
    if (!d->alibi) {
        if (alibi_slopes != NULL)
            return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: alibi_slopes is given, expected NULL since desc.alibi is false",
                           op);
        return BK_STATUS_SUCCESS;
    }
    if (alibi_slopes == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: alibi_slopes is NULL, expected f32 [q_heads] since desc.alibi is true",
                       op);
    bk_tensor_spec s_sl = {"alibi_slopes", BK_DTYPE_F32, 1, {d->q_heads}, "q_heads", BK_LAYOUT_ANY};
    return bk_check_tensor(op, alibi_slopes, &s_sl);
}
