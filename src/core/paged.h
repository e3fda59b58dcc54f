/* paged.h (core) - checks and addressing of the paged KV cache, used by every paged
 * op (paged_kv_append, paged_decode, paged_prefill). See include/baracuda/paged.h. */
#ifndef BK_CORE_PAGED_H
#define BK_CORE_PAGED_H
#include "core/core.h"

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
/* The index values, read from host memory (CPU target only): see paged.h's table. */
bk_status bk_check_paged_values(const char *op, const bk_paged_kv_desc *d, int32_t batch, const bk_paged_kv *kv);
/* Tokens of request b (host index data). */
int64_t bk_paged_kv_len(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b);
/* Element offset in k_pages / v_pages of token t, kv head h, of request b (host index data). */
int64_t bk_paged_kv_offset(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b, int64_t h, int64_t t);
/* A ragged row prefix sum (q_indptr, append_indptr), host data: [0] == 0,
 * non-decreasing (INVALID_PROBLEM), [batch] == total (OUT_OF_RANGE). */
bk_status bk_check_indptr_values(const char *op, const char *name, const int32_t *indptr, int32_t batch,
                                 int64_t total);
#endif
