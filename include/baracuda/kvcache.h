/*
 * kvcache.h - writing new keys and values into a KV cache: kv_append (a dense cache
 * with one offset per batch entry) and paged_kv_append (the paged cache of paged.h).
 * Included by baracuda.h after paged.h.
 *
 * Both ops are pure copies: each element's bytes are copied unchanged (no conversion,
 * NaN payloads kept), so the result is bit-exact for every dtype and every backend.
 *
 * Out-of-range rows. A row whose destination lies outside the cache is never written.
 * What happens to the rest of the call depends on the target:
 *   CPU    run() reads the offsets / index data first (they are host memory). If any
 *          row would fall outside the cache it returns BK_STATUS_OUT_OF_RANGE with a
 *          sentence naming the request, the offset and the limit, and writes NOTHING:
 *          no cache byte and not `dropped_rows`. The CPU never drops rows; it refuses.
 *   CUDA   run() cannot read device data without a host synchronisation, which the
 *          library never does. In-range rows are written, out-of-range rows are
 *          skipped, and when `dropped_rows` is given the kernel atomically adds the
 *          number of skipped rows to dropped_rows[0] (a row is one (batch entry, new
 *          row) pair, counted once for all heads and for K and V together). The caller
 *          zeroes dropped_rows before the call and reads it when convenient (e.g. after
 *          the step's next synchronisation). The CUDA kernels (sm_80+, every dtype of
 *          the op) are bit-exact copies, asynchronous on the caller's stream, with no
 *          allocation and no host synchronisation (graph-capturable); workspace 0.
 * `dropped_rows` is optional (NULL to skip); when given it must be an i64 tensor of
 * shape [1], on every target, and on the CPU it is validated but never written.
 *
 * Neither op checks that the caches alias each other or the new rows: K cache, V cache
 * and the inputs must be disjoint memory.
 */
#ifndef BARACUDA_KVCACHE_H
#define BARACUDA_KVCACHE_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- kv_append -- */

/* kv_append: for every b < batch, h < heads, l < new_len,
 *   K_cache[b, h, cache_offsets[b] + l, :] = K_new[b, h, l, :]
 *   V_cache[b, h, cache_offsets[b] + l, :] = V_new[b, h, l, :]
 * Every other cache element keeps its bytes. The row (b, l) is in range when
 * 0 <= cache_offsets[b] + l < max_cache_len; on the CPU every row must be (else
 * OUT_OF_RANGE and nothing written), on CUDA out-of-range rows are dropped and counted
 * (see the top of this header). The op does not advance the offsets: after the call
 * the caller adds new_len to each. */
typedef struct bk_kv_append_desc {
    int32_t batch;         /* B, batch entries, >= 0 */
    int32_t heads;         /* H, kv heads, >= 0 */
    int32_t new_len;       /* L_new, rows appended per (b, h), >= 0 */
    int32_t max_cache_len; /* L_max, rows the cache holds per (b, h), >= 0 */
    int32_t head_dim_k;    /* D_k, width of a K row, >= 0 */
    int32_t head_dim_v;    /* D_v, width of a V row, >= 0 (may differ from D_k) */
    bk_dtype dtype;        /* element type of the four K/V tensors: f32, f64, f16 or bf16 */
} bk_kv_append_desc;

/* The tensors of one kv_append call. The K/V tensors have inner stride 1 and arbitrary
 * non-negative outer strides (padded views, a slice of a larger cache); no broadcast. */
typedef struct bk_kv_append_args {
    bk_tensor k_new;         /* [batch, heads, new_len, head_dim_k], read */
    bk_tensor v_new;         /* [batch, heads, new_len, head_dim_v], read */
    bk_tensor cache_offsets; /* i64 [batch], contiguous, read: the first row to write per b */
    bk_tensor k_cache;       /* [batch, heads, max_cache_len, head_dim_k], written in place;
                                positions must not overlap */
    bk_tensor v_cache;       /* [batch, heads, max_cache_len, head_dim_v], written in place;
                                positions must not overlap */
    const bk_tensor *dropped_rows; /* optional i64 [1]: rows dropped on CUDA (added to it);
                                      never written on the CPU; NULL to skip */
} bk_kv_append_args;

typedef struct bk_kv_append_plan {
    bk_kv_append_desc desc;
    bk_plan_info info;
} bk_kv_append_plan;

/* Validates `desc` and picks a kernel for `target` (CPU, or CUDA with compute
 * capability >= 8.0). Errors: INVALID_PROBLEM (NULL pointer, negative extent, bad target
 * or preference), UNSUPPORTED (dtype not in {f32, f64, f16, bf16}, or a CUDA device
 * below sm_80). */
bk_status bk_kv_append_select(const bk_kv_append_desc *desc, bk_target target, bk_preference preference,
                              bk_kv_append_plan *plan);
/* Checks the tensors against the plan (no data is read): dtypes, shapes, strides
 * (>= 0; inner stride 1 on the K/V tensors; caches non-overlapping, no broadcast;
 * cache_offsets and dropped_rows contiguous), capacities.
 * Errors: INVALID_PROBLEM (NULL plan/args/data, wrong dtype, rank or extent, an element
 * count, byte size or reach beyond int64, negative
 * stride, broadcast or overlapping output), UNSUPPORTED (inner stride not 1, broadcast
 * input, non-contiguous offsets), BUFFER_TOO_SMALL (capacity below the view's reach). */
bk_status bk_kv_append_can_implement(const bk_kv_append_plan *plan, const bk_kv_append_args *args);
/* Always 0. */
size_t bk_kv_append_workspace_size(const bk_kv_append_plan *plan);
/* Copies the new rows into the caches. Runs can_implement first, then, on the CPU,
 * reads every offset: any cache_offsets[b] < 0 or cache_offsets[b] + new_len >
 * max_cache_len gives OUT_OF_RANGE (naming b, the offset and the limit). On any
 * failure nothing is written. `stream` is ignored on the CPU. On CUDA (all tensors in
 * device memory) the copy is queued on `stream`; rows with cache_offsets[b] + l outside
 * [0, max_cache_len) (any i64 offset, no overflow) are skipped and counted into
 * dropped_rows[0] (one per (b, l), for all heads and K and V together). */
bk_status bk_kv_append_run(const bk_kv_append_plan *plan, void *stream, bk_workspace workspace,
                           const bk_kv_append_args *args);

/* ---------------------------------------------------- paged_kv_append -- */

/* paged_kv_append: appends ragged new rows to the tail of each request of a paged
 * cache (paged.h). Request b appends n_b = append_indptr[b+1] - append_indptr[b] rows.
 * The page table passed in describes the cache AFTER the append (FlashInfer's
 * convention): the caller has already grown kv_indptr / kv_indices / last_page_len,
 * so with kv_len[b] from paged.h, for r < n_b and every kv head h:
 *   K_pages[page(b, t), h, t % page_size, :] = K_new[append_indptr[b] + r, h, :]
 *   V_pages[page(b, t), h, t % page_size, :] = V_new[append_indptr[b] + r, h, :]
 * where t = kv_len[b] - n_b + r and page(b, t) = kv_indices[kv_indptr[b] + t / page_size].
 * Every other pool byte is unchanged. If two written rows land in one slot (pages
 * shared between requests), the CPU writes them in (b, r) order, so the last wins. */
typedef struct bk_paged_kv_append_desc {
    int32_t batch;             /* requests, >= 1 */
    int32_t nnz;               /* new rows over all requests (append_indptr[batch]), >= 0 */
    bk_paged_kv_desc paged_kv; /* the pool; dtype f16, bf16 or f32 */
} bk_paged_kv_append_desc;

typedef struct bk_paged_kv_append_args {
    bk_tensor k_new;         /* [nnz, kv_heads, head_dim], inner stride 1, read */
    bk_tensor v_new;         /* [nnz, kv_heads, head_dim], inner stride 1, read */
    bk_tensor append_indptr; /* i32 [batch + 1], contiguous: request b's new rows are
                                k_new[append_indptr[b] .. append_indptr[b+1]) */
    bk_paged_kv kv;          /* the cache AFTER the append: k_pages / v_pages are written
                                in place (contiguous), the page table is read */
    const bk_tensor *dropped_rows; /* optional i64 [1], as for kv_append: on CUDA the rows
                                      (b, r) with t < 0 or a page id outside the pool are
                                      skipped and counted; never written on the CPU */
} bk_paged_kv_append_args;

typedef struct bk_paged_kv_append_plan {
    bk_paged_kv_append_desc desc;
    bk_plan_info info;
} bk_paged_kv_append_plan;

/* Validates `desc` and picks a kernel for `target` (CPU, or CUDA sm_80+).
 * Errors: INVALID_PROBLEM (NULL pointer, batch < 1, nnz < 0, a pool extent < 1, bad
 * target or preference), UNSUPPORTED (dtype not in {f16, bf16, f32}, or a CUDA device
 * below sm_80). The CUDA plan reports deterministic: true, which holds only when no two
 * new rows target the same slot (pages shared between requests); otherwise which row
 * wins depends on scheduling. */
bk_status bk_paged_kv_append_select(const bk_paged_kv_append_desc *desc, bk_target target,
                                    bk_preference preference, bk_paged_kv_append_plan *plan);
/* Checks the tensors against the plan (no index value is read): k_new / v_new
 * (dtype, shape, inner stride 1), append_indptr (i32 [batch + 1], contiguous), the
 * paged cache's five tensors (paged.h; the pool is an output), dropped_rows.
 * Errors: INVALID_PROBLEM, UNSUPPORTED, BUFFER_TOO_SMALL as for kv_append. */
bk_status bk_paged_kv_append_can_implement(const bk_paged_kv_append_plan *plan,
                                           const bk_paged_kv_append_args *args);
/* Always 0. */
size_t bk_paged_kv_append_workspace_size(const bk_paged_kv_append_plan *plan);
/* Copies the new rows into the pool. On CUDA: queued on `stream`, index data never
 * read on the host; new row r is skipped and counted into dropped_rows[0] when it
 * belongs to no request (r >= append_indptr[batch]), when its token t falls outside
 * [0, kv_len[b]) or outside b's pages, when its kv_indices position lies past the
 * kv_indices tensor, or when its page id is outside [0, num_pages). Runs can_implement
 * first, then, on the CPU, reads the index data, in this order:
 *   the page table (paged.h's table: INVALID_PROBLEM / OUT_OF_RANGE);
 *   append_indptr: [0] != 0 or decreasing -> INVALID_PROBLEM, [batch] != nnz ->
 *   OUT_OF_RANGE;
 *   n_b > kv_len[b] (more new rows than the request holds) -> OUT_OF_RANGE.
 * On any failure nothing is written. `stream` is ignored on the CPU. */
bk_status bk_paged_kv_append_run(const bk_paged_kv_append_plan *plan, void *stream, bk_workspace workspace,
                                 const bk_paged_kv_append_args *args);

#ifdef __cplusplus
}
#endif

#endif /* BARACUDA_KVCACHE_H */
