/*
 * paged.h - the paged KV cache (FlashInfer's layout) and the ops that read it:
 * paged_decode, paged_prefill and attention_merge. Included by baracuda.h.
 *
 * The paged cache (HND layout):
 *   k_pages, v_pages  [num_pages, kv_heads, page_size, head_dim], the page pool;
 *   kv_indptr         i32 [batch + 1]: request b owns the page ids
 *                     kv_indices[kv_indptr[b] .. kv_indptr[b+1]), in order;
 *   kv_indices        i32 [n >= kv_indptr[batch]]: page ids in [0, num_pages);
 *   last_page_len     i32 [batch]: tokens in request b's last page, in [1, page_size].
 * Every request owns at least one page, and all its pages but the last are full, so
 *   kv_len[b] = (kv_indptr[b+1] - kv_indptr[b] - 1) * page_size + last_page_len[b].
 * Token t of request b lives in page kv_indices[kv_indptr[b] + t / page_size], slot
 * t % page_size.
 *
 * Index data is validated on the CPU target before anything is written:
 *   kv_indptr[0] != 0, kv_indptr not strictly increasing     INVALID_PROBLEM
 *   last_page_len[b] outside [1, page_size]                  INVALID_PROBLEM
 *   kv_indptr[batch] beyond kv_indices, a page id outside
 *   [0, num_pages)                                           OUT_OF_RANGE
 * On a CUDA target run() cannot read index data without a host synchronisation; it
 * trusts it (see each op for what it does with values out of range).
 */
#ifndef BARACUDA_PAGED_H
#define BARACUDA_PAGED_H

#ifdef __cplusplus
extern "C" {
#endif

/* The extents of a paged cache pool, shared by every op that reads or writes it. */
typedef struct bk_paged_kv_desc {
    int32_t num_pages; /* pages in the pool, >= 1 */
    int32_t kv_heads;  /* >= 1 */
    int32_t page_size; /* tokens per page, >= 1 */
    int32_t head_dim;  /* >= 1 */
    bk_dtype dtype;    /* element type of k_pages and v_pages */
} bk_paged_kv_desc;

/* The tensors of a paged cache: the pool and the CSR page table. The pool tensors are
 * contiguous; the index tensors are contiguous i32. */
typedef struct bk_paged_kv {
    bk_tensor k_pages;       /* [num_pages, kv_heads, page_size, head_dim] */
    bk_tensor v_pages;       /* [num_pages, kv_heads, page_size, head_dim] */
    bk_tensor kv_indices;    /* i32 [n], n >= kv_indptr[batch] */
    bk_tensor kv_indptr;     /* i32 [batch + 1] */
    bk_tensor last_page_len; /* i32 [batch] */
} bk_paged_kv;

#ifdef __cplusplus
}
#endif

#endif /* BARACUDA_PAGED_H */
