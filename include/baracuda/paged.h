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
 * Every request owns at least one page (paged_decode also takes requests of none:
 * kv_len 0), and all its pages but the last are full, so
 *   kv_len[b] = (kv_indptr[b+1] - kv_indptr[b] - 1) * page_size + last_page_len[b].
 * Token t of request b lives in page kv_indices[kv_indptr[b] + t / page_size], slot
 * t % page_size.
 *
 * Index data is validated on the CPU target before anything is written:
 *   kv_indptr[0] != 0, kv_indptr not strictly increasing
 *   (paged_decode: decreasing)                               INVALID_PROBLEM
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

/* ================================================================ paged_decode -- */
/*
 * R query rows per request (R = 1: the per-token decode step; R > 1: speculative
 * decoding / multi-token prediction, the R newest tokens verified at once) over that
 * request's paged K/V (FlashInfer's BatchDecodeWithPagedKVCache):
 *
 *   for request b, row r in [0, R), query head h, kv head g = h / (q_heads / kv_heads):
 *     n        = kv_len[b] - R + 1 + r        keys row r sees: [0, n), causal among the
 *                                            R rows, bottom-right aligned (the R new
 *                                            tokens are the cache's last R keys)
 *     s_j      = scale * <q[b,r,h,:], K_b[g,j,:]>     j in [0, n)
 *     o[b,r,h,:] = sum_j softmax(s)_j V_b[g,j,:]
 *     lse[b,r,h] = log sum_j exp(s_j)                 (f32, natural log)
 * where K_b / V_b are request b's tokens in the paged cache (see the top of this file).
 * A row that sees no key (n <= 0: kv_len[b] < R - r, e.g. a request with no page) gets
 * o = 0 and lse = -inf. With R = 1 the row is the last position and sees every key.
 *
 * Requests with no page: unlike the other paged ops, paged_decode accepts
 * kv_indptr[b+1] == kv_indptr[b] (kv_len 0, last_page_len[b] not read): every row of
 * such a request gets o = 0, lse = -inf, on every target. It is how a captured CUDA
 * graph leaves request slots unused (below).
 *
 * Dtypes: f16, bf16, f32 (q, o, k_pages, v_pages share it; lse is f32). head_dim is
 * 64, 128 or 256; R = desc.q_rows_per_request in 0..BK_PAGED_DECODE_MAX_ROWS (0 and 1
 * both mean one row). The CPU computes in f64 and rounds once on store.
 *
 * Targets: on the CPU, can_implement (and so run) reads the index data from host
 * memory and rejects bad values before any write (the table at the top of this file,
 * with requests of no page allowed). On CUDA (sm_80+, src/cuda/paged.cu) run is
 * asynchronous on the caller's stream, allocates nothing, never synchronises and is
 * graph-capturable; it never reads index data on the host: it trusts it, and the
 * output of a request whose page table breaks the rules is undefined (keys whose page
 * id or kv_indices position is out of range are skipped, never read; last_page_len is
 * clamped to [1, page_size]). A CPU plan's can_implement over host copies of the index
 * tensors is the way to validate them. The CUDA pools must be 16-byte aligned (else run
 * returns UNSUPPORTED, nothing written).
 *
 * CUDA graphs: a run captured once may be replayed with new CONTENTS of q, k_pages,
 * v_pages, kv_indices, kv_indptr and last_page_len (so new kv lengths, 1 to the pool's
 * size, new page ids, and fewer live requests: give the unused ones no page, their
 * rows then get o = 0, lse = -inf), as long as the new table fits the captured extents
 * (at most kv_indices.shape[0] entries, page ids below num_pages); o, lse and the
 * workspace may hold anything before a replay. What may NOT change: the plan (the
 * descriptor: batch, R, heads, pool extents, kv_splits; another R or batch needs another
 * plan and capture), every data pointer, shape and stride of the args (lse present or
 * not), the workspace pointer and size. The kernel reads the kv lengths on the device
 * and the split count is a pure function of the descriptor, so nothing captured depends
 * on the table's values.
 *
 * CUDA kernels (sm_80+, SKU arch sm80, backend bespoke), in selection order; each CTA
 * takes one (split, kv head, request) and a chunk of the kv head's R x group (query row,
 * query head) pairs, reading the K/V rows once per chunk:
 *   1. f16/bf16 when R x group > 4 (group = q_heads / kv_heads): tensor cores
 *      (mma.sync), chunks of 16 pairs; S = q K^T accumulated in f32, the online softmax in
 *      f32, P rounded to the input dtype before P V (f32 accumulate), as flash attention
 *      does: precision.math = BK_MATH_F16_BF16_TENSOR.
 *   2. everything else (f32; f16/bf16 with 4 pairs or fewer, where both kernels read K/V once; any dtype under
 *      BK_PREFER_REFERENCE): f32 online softmax on CUDA cores, chunks of up to 4 pairs:
 *      precision.math = BK_MATH_F32.
 * Split-KV: S = desc.kv_splits when > 0, else a heuristic from batch * kv_heads * pair
 * chunks, the kernel and the pool size (num_pages * page_size; select cannot see kv
 * lengths). With S > 1 each split writes a partial (o, lse) to the workspace and
 * attention_merge's kernel merges them. Both kernels are deterministic (fixed reduction
 * order for a given S, and S is fixed by the plan).
 */

/* The most query rows per request paged_decode takes (desc.q_rows_per_request). */
#define BK_PAGED_DECODE_MAX_ROWS 8

/* The problem. */
typedef struct bk_paged_decode_desc {
    int32_t batch;             /* requests, >= 1 */
    int32_t q_heads;           /* query heads, >= 1, a multiple of paged_kv.kv_heads */
    double scale;              /* score scale, finite (usually 1 / sqrt(head_dim)) */
    int32_t kv_splits;         /* hint for GPU split-KV (parts per request, merged with
                                  attention_merge's math): 0 = let select decide; the
                                  CPU ignores it; must be >= 0 */
    bk_paged_kv_desc paged_kv; /* the pool: head_dim in {64, 128, 256} (UNSUPPORTED
                                  otherwise); dtype f16, bf16 or f32 */
    int32_t q_rows_per_request; /* R, query rows per request, causal among themselves
                                   (see above): 0 or 1 = one row; at most
                                   BK_PAGED_DECODE_MAX_ROWS (UNSUPPORTED above, INVALID_PROBLEM
                                   below 0). Last, so initialisers without it mean R = 1. */
} bk_paged_decode_desc;

/* The tensors. q, o and the pool share desc.paged_kv.dtype. With R = 1 (q_rows_per_request
 * 0 or 1) q, o and lse may each leave out the R axis: q [batch, q_heads, head_dim]. */
typedef struct bk_paged_decode_args {
    bk_tensor q;          /* [batch, R, q_heads, head_dim], read; inner stride 1, outer any */
    bk_paged_kv kv;       /* the paged cache and its page table, read (batch requests) */
    bk_tensor o;          /* [batch, R, q_heads, head_dim], written; inner stride 1, outer
                             any non-overlapping */
    const bk_tensor *lse; /* f32 [batch, R, q_heads], written, any non-overlapping strides;
                             NULL to skip */
} bk_paged_decode_args;

typedef struct bk_paged_decode_plan {
    bk_paged_decode_desc desc;
    bk_plan_info info;
} bk_paged_decode_plan;

/* Validates `desc` and picks a kernel for `target` (CPU, or CUDA sm_80+: the tensor-core
 * kernel for f16/bf16 with R x q_heads / kv_heads > 4, else the CUDA-core one; see above).
 * Errors: INVALID_PROBLEM (NULL pointer, an extent below its minimum, non-finite scale,
 * kv_splits < 0, q_rows_per_request < 0, q_heads not a multiple of kv_heads),
 * UNSUPPORTED (dtype not f16/bf16/f32, head_dim not 64/128/256, q_rows_per_request
 * above BK_PAGED_DECODE_MAX_ROWS, or a CUDA device below sm_80). */
bk_status bk_paged_decode_select(const bk_paged_decode_desc *desc, bk_target target, bk_preference preference,
                                 bk_paged_decode_plan *plan);
/* Checks the tensors against the plan: dtypes, shapes, strides, capacities (statuses
 * as bk_check_tensor: INVALID_PROBLEM, also for an element count, byte size or reach
 * beyond int64; UNSUPPORTED, BUFFER_TOO_SMALL); on a CPU plan
 * also the index values (INVALID_PROBLEM or OUT_OF_RANGE, the table at the top). */
bk_status bk_paged_decode_can_implement(const bk_paged_decode_plan *plan, const bk_paged_decode_args *args);
/* Bytes of workspace run needs: 0 on the CPU and for a CUDA plan with S = 1 split;
 * with S > 1: batch * R * q_heads * S * head_dim floats (partial o) then batch * R *
 * q_heads * S floats (partial lse), each piece aligned to 256 bytes. Device memory on
 * CUDA. SIZE_MAX when that does not fit in size_t (e.g. kv_splits near 2^31 with a
 * large batch). */
size_t bk_paged_decode_workspace_size(const bk_paged_decode_plan *plan);
/* Computes o (and lse). Runs can_implement first, then checks the workspace; on any
 * failure nothing is written. CPU: synchronous, `stream` ignored, bit-identical on rerun
 * whatever the thread count. */
bk_status bk_paged_decode_run(const bk_paged_decode_plan *plan, void *stream, bk_workspace workspace,
                              const bk_paged_decode_args *args);

/* =============================================================== paged_prefill -- */
/*
 * Many query rows per request (prompt ingestion), ragged across the batch, over that
 * request's paged K/V (FlashInfer's BatchPrefillWithPagedKVCache):
 *
 *   request b owns query rows r in [q_indptr[b], q_indptr[b+1]); qo_len = their count,
 *   i = r - q_indptr[b] its row within the request, kv_len = its token count;
 *   for query head h, kv head g = h / (q_heads / kv_heads):
 *     visible keys  j in [0, kv_len)                         causal = false
 *                   j in [0, min(kv_len, i + kv_len - qo_len + 1))   causal = true
 *                   (bottom-right aligned: the last row sees every key)
 *     o[r,h,:] = sum_j softmax(scale * <q[r,h,:], K_b[g,j,:]>)_j V_b[g,j,:]
 *     lse[r,h] = log sum_j exp(scale * <q[r,h,:], K_b[g,j,:]>)   (f32, natural log)
 *   A row that sees no key (causal with qo_len > kv_len, i < qo_len - kv_len) gets
 *   o = 0 and lse = -inf. A request may own 0 query rows.
 *
 * Dtypes: f16, bf16 (the GPU kernels are tensor-core based, as the seed's; f32 is
 * UNSUPPORTED, use paged_decode one row at a time or sdpa_fwd). head_dim 64, 128, 256.
 *
 * Targets: as paged_decode. The CPU validates q_indptr (q_indptr[0] == 0, non-
 * decreasing: INVALID_PROBLEM; q_indptr[batch] != total_rows: OUT_OF_RANGE) and the
 * page table before any write. On CUDA (sm_80+) run is asynchronous and
 * graph-capturable (the seed's v1 synchronised the stream; this API does not), trusting
 * the index data as paged_decode does; workspace 0. CUDA kernels, in selection order:
 * the flash-attention forward's tensor-core kernels (sdpa_fwd) with K/V rows gathered
 * from the pages, wgmma on compute capability 9.0 (SKU arch sm90) and mma.sync on 8.0+
 * (sm80): f32 accumulation and softmax, P rounded to the input dtype before P V
 * (precision.math = F16_BF16_TENSOR), work units of (128-row query tile of a request, q
 * head) - on sm90 a persistent grid whose producer warps load K/V by a TMA box per page
 * for pages of 64 rows (and 128 at head_dim <= 128), by cp.async for pages of 4 to 32 rows (a power of two) and
 * by a slower per-row gather for other page sizes (1, 2, odd ones: about a quarter of
 * the speed); on sm90, when requests hold fewer query rows than a tile on average
 * (total_rows < 128 batch: chunked prefill, several rows per request of speculative
 * decoding) and the GQA group q_heads / kv_heads is 2, 4, 8 or 16, the group's q heads
 * share a tile (128 / group rows of each), so each K/V tile is read once per group
 * (2.3x at 64 requests of 8 rows over 4096 keys, Hq 32 / Hkv 8); then a CUDA-core kernel (f32 math, precision.math = F32,
 * BK_PREFER_REFERENCE).
 * All are deterministic. Tiles are found on the device from q_indptr (no host schedule).
 * enable_kv_split is ignored on every target today.
 */

typedef struct bk_paged_prefill_desc {
    int32_t batch;             /* requests, >= 1 */
    int32_t total_rows;        /* query rows over all requests (= q_indptr[batch]), >= 0 */
    int32_t q_heads;           /* query heads, >= 1, a multiple of paged_kv.kv_heads */
    double scale;              /* score scale, finite */
    bool causal;               /* bottom-right causal mask (see above) */
    bool enable_kv_split;      /* GPU hint: let the kernel split long key ranges across
                                  blocks and merge them; the CPU ignores it */
    bk_paged_kv_desc paged_kv; /* head_dim in {64, 128, 256}; dtype f16 or bf16 */
} bk_paged_prefill_desc;

typedef struct bk_paged_prefill_args {
    bk_tensor q;          /* [total_rows, q_heads, head_dim], read, rows ragged by q_indptr;
                             inner stride 1 */
    bk_tensor q_indptr;   /* i32 [batch + 1], contiguous: request b's rows are
                             q_indptr[b] .. q_indptr[b+1] */
    bk_paged_kv kv;       /* the paged cache and its page table, read (batch requests) */
    bk_tensor o;          /* [total_rows, q_heads, head_dim], written; inner stride 1 */
    const bk_tensor *lse; /* f32 [total_rows, q_heads], written; NULL to skip */
} bk_paged_prefill_args;

typedef struct bk_paged_prefill_plan {
    bk_paged_prefill_desc desc;
    bk_plan_info info;
} bk_paged_prefill_plan;

/* As bk_paged_decode_select; total_rows may be 0. Errors: INVALID_PROBLEM (NULL, extents,
 * scale, GQA ratio), UNSUPPORTED (dtype not f16/bf16, head_dim, target). */
bk_status bk_paged_prefill_select(const bk_paged_prefill_desc *desc, bk_target target, bk_preference preference,
                                  bk_paged_prefill_plan *plan);
/* As bk_paged_decode_can_implement, plus q_indptr's tensor and, on a CPU plan, its values. */
bk_status bk_paged_prefill_can_implement(const bk_paged_prefill_plan *plan, const bk_paged_prefill_args *args);
/* Bytes of workspace run needs: 0 on every target (the CUDA kernel needs none). */
size_t bk_paged_prefill_workspace_size(const bk_paged_prefill_plan *plan);
/* Computes o (and lse). As bk_paged_decode_run. */
bk_status bk_paged_prefill_run(const bk_paged_prefill_plan *plan, void *stream, bk_workspace workspace,
                               const bk_paged_prefill_args *args);

/* ============================================================= attention_merge -- */
/*
 * Merges partial attention results over disjoint key ranges (split-KV, cascade
 * attention; FlashInfer's merge_states). For each row r and head h over its parts p:
 *
 *   lse[r,h]   = log sum_p exp(lse_p)               lse_p = lse_parts[r,p,h]
 *   o[r,h,:]   = sum_p exp(lse_p - lse[r,h]) * o_parts[r,p,h,:]
 *
 * computed as m = max_p lse_p, lse = m + log sum_p exp(lse_p - m). A part with
 * lse_p = -inf (it saw no key) is skipped and its o_parts row is not read; a row whose
 * parts are all -inf gets o = 0 and lse = -inf. lse_parts values are expected finite
 * or -inf (+inf or NaN give NaN). o must not overlap the inputs.
 *
 * Dtypes: o_parts and o f32, f64, f16 or bf16; lse_parts and lse always f32. Any
 * head_dim. The CPU computes in f64, one (row, head) per thread in part order.
 */

typedef struct bk_attention_merge_desc {
    int32_t rows;     /* >= 0 (query rows, or batch * rows) */
    int32_t parts;    /* partial results per row, >= 1 */
    int32_t heads;    /* >= 1 */
    int32_t head_dim; /* >= 1 */
    bk_dtype dtype;   /* of o_parts and o: f32, f64, f16 or bf16; lse is always f32 */
} bk_attention_merge_desc;

typedef struct bk_attention_merge_args {
    bk_tensor o_parts;    /* [rows, parts, heads, head_dim], read (FlashInfer merge_states
                             layout); inner stride 1 */
    bk_tensor lse_parts;  /* f32 [rows, parts, heads], read; any strides */
    bk_tensor o;          /* [rows, heads, head_dim], written; inner stride 1 */
    const bk_tensor *lse; /* f32 [rows, heads], written; NULL to skip */
} bk_attention_merge_args;

typedef struct bk_attention_merge_plan {
    bk_attention_merge_desc desc;
    bk_plan_info info;
} bk_attention_merge_plan;

/* Validates `desc` and picks a kernel (CPU, or CUDA sm_80+: f32 math, f64 for f64; 8
 * threads per output element, each folding every 8th part with a running maximum, their
 * sums combined in a fixed order; deterministic). Errors: INVALID_PROBLEM
 * (NULL, an extent below its minimum), UNSUPPORTED (dtype, or a CUDA device below
 * sm_80). */
bk_status bk_attention_merge_select(const bk_attention_merge_desc *desc, bk_target target,
                                    bk_preference preference, bk_attention_merge_plan *plan);
/* Checks the tensors against the plan: INVALID_PROBLEM, UNSUPPORTED, BUFFER_TOO_SMALL
 * as bk_check_tensor. */
bk_status bk_attention_merge_can_implement(const bk_attention_merge_plan *plan,
                                           const bk_attention_merge_args *args);
/* Bytes of workspace run needs: 0 on every target. */
size_t bk_attention_merge_workspace_size(const bk_attention_merge_plan *plan);
/* Computes o (and lse). Runs can_implement first; on failure nothing is written. On
 * CUDA asynchronous on `stream` (no allocation, no synchronisation). */
bk_status bk_attention_merge_run(const bk_attention_merge_plan *plan, void *stream, bk_workspace workspace,
                                 const bk_attention_merge_args *args);

#ifdef __cplusplus
}
#endif

#endif /* BARACUDA_PAGED_H */
