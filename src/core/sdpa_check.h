/* sdpa_check.h (core) - the checks sdpa_fwd and sdpa_bwd share: the descriptor, the
 * tensor specs of q, k, v, y-like and lse tensors, and the ALiBi slopes against
 * desc.alibi. See include/baracuda/attention.h for the rules. */
#ifndef BK_CORE_SDPA_CHECK_H
#define BK_CORE_SDPA_CHECK_H
#include "core/core.h"

/* Extents, GQA divisibility, head-dim limit, window, scale, softcap, dtype. */
bk_status bk_sdpa_check_desc(const char *op, const bk_sdpa_fwd_desc *d);

/* Specs of the attention tensors, for `name` with the given layout flags:
 *   q-like  [batch, q_heads, q_len, head_dim_qk]
 *   k-like  [batch, kv_heads, kv_len, head_dim_qk]
 *   v-like  [batch, kv_heads, kv_len, head_dim_v]
 *   y-like  [batch, q_heads, q_len, head_dim_v]
 *   lse     f32 [batch, q_heads, q_len] */
bk_tensor_spec bk_sdpa_q_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout);
bk_tensor_spec bk_sdpa_k_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout);
bk_tensor_spec bk_sdpa_v_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout);
bk_tensor_spec bk_sdpa_y_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout);
bk_tensor_spec bk_sdpa_lse_spec(const bk_sdpa_fwd_desc *d, const char *name, uint32_t layout);

/* The inputs both ops read: q (inner stride 1), k and v (inner stride 1, stride 0
 * allowed on the kv-head axis), and alibi_slopes (f32 [q_heads], present iff
 * desc.alibi). */
bk_status bk_sdpa_check_inputs(const char *op, const bk_sdpa_fwd_desc *d, const bk_tensor *q, const bk_tensor *k,
                               const bk_tensor *v, const bk_tensor *alibi_slopes);
#endif
