/* paged.h (core) - checks and addressing of the paged KV cache, used by every paged
 * op (paged_kv_append, paged_decode, paged_prefill), and paged_decode's tensor specs and
 * strides (one place for its R axis). See include/baracuda/paged.h. */
#ifndef BK_CORE_PAGED_H
#define BK_CORE_PAGED_H
#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Extents >= 1 and the dtype in `dtypes`. */
bk_status bk_check_paged_desc(const char *op, const bk_paged_kv_desc *d, uint32_t dtypes);
/* What paged_decode and paged_prefill share: q_heads >= 1, a finite scale, the pool
 * (bk_check_paged_desc), GQA divisibility (INVALID_PROBLEM) and head_dim in
 * {64, 128, 256} (UNSUPPORTED). */
bk_status bk_check_paged_attention(const char *op, int32_t q_heads, double scale, const bk_paged_kv_desc *d,
                                   uint32_t dtypes);
/* Shapes, dtypes and layouts of the five tensors (no index values read).
 * `pages_written`: the pool is an output (paged_kv_append). */
bk_status bk_check_paged_tensors(const char *op, const bk_paged_kv_desc *d, int32_t batch,
                                 const bk_paged_kv *kv, bool pages_written);
/* The index values, read from host memory (CPU target only): see paged.h's table.
 * `allow_empty`: a request may own no page (kv_indptr[b+1] == kv_indptr[b]: kv_len 0, its
 * last_page_len not read), as paged_decode allows; else every request owns >= 1 page. */
bk_status bk_check_paged_values(const char *op, const bk_paged_kv_desc *d, int32_t batch, const bk_paged_kv *kv,
                                bool allow_empty);
/* Tokens of request b (host index data); 0 when it owns no page. */
int64_t bk_paged_kv_len(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b);
/* Element offset in k_pages / v_pages of token t, kv head h, of request b (host index data). */
int64_t bk_paged_kv_offset(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b, int64_t h, int64_t t);
/* A ragged row prefix sum (q_indptr, append_indptr), host data: [0] == 0,
 * non-decreasing (INVALID_PROBLEM), [batch] == total (OUT_OF_RANGE). */
bk_status bk_check_indptr_values(const char *op, const char *name, const int32_t *indptr, int32_t batch,
                                 int64_t total);

/* paged_decode's query rows per request, R = max(1, desc.q_rows_per_request). */
int32_t bk_paged_decode_rows(const bk_paged_decode_desc *d);
/* The spec of paged_decode's q / o (lse = false: element type desc.paged_kv.dtype) or
 * lse (lse = true: f32) with the given layout flags:
 *   [batch, R, q_heads, head_dim] / [batch, R, q_heads]      when R > 1, or when t has that rank
 *   [batch, q_heads, head_dim] / [batch, q_heads]            otherwise (R <= 1, the R axis left out)
 * t (NULL allowed) is the caller's view: only its rank is read, to pick the form for R <= 1. */
bk_tensor_spec bk_paged_decode_spec(const bk_paged_decode_desc *d, const bk_tensor *t, bool lse, const char *name,
                                    uint32_t layout);
/* The (request, row, head) strides of a q / o / lse view that passed bk_paged_decode_spec,
 * in either form (the row stride is 0 when the R axis is left out). */
void bk_paged_decode_strides(const bk_paged_decode_desc *d, const bk_tensor *t, bool lse, int64_t strides[3]);
#ifdef __cplusplus
}
#endif
#endif
