/* paged_table.cuh - the paged KV cache's page table on the device (include/baracuda/paged.h
 * explains the layout), shared by paged_decode / paged_prefill (paged.cu) and the
 * tensor-core paged prefill (sdpa_fwd.cu).
 *
 *   paged_table   the trusted CSR table and the pool's extents, passed by value to kernels
 *   table_of      builds it from a bk_paged_kv (host)
 *   paged_len     a request's token count (0 when it owns no page) and its first index
 *   paged_split   a token's page (within its request) and slot
 *   paged_row     the pool row (element offset / head_dim) of token j of a request and
 *                 kv head g; -1 when the index data points outside its buffers, so a bad
 *                 table never causes an out-of-bounds access (such keys are skipped). */
#ifndef BK_CUDA_PAGED_TABLE_CUH
#define BK_CUDA_PAGED_TABLE_CUH
#include "baracuda/baracuda.h"

struct paged_table {
    const int *indptr, *indices, *last;
    int n_indices, num_pages, page_size, kv_heads;
};

static inline paged_table table_of(const bk_paged_kv_desc *pd, const bk_paged_kv *kv)
{
    paged_table t;
    t.indptr = (const int *)kv->kv_indptr.data;
    t.indices = (const int *)kv->kv_indices.data;
    t.last = (const int *)kv->last_page_len.data;
    t.n_indices = (int)kv->kv_indices.shape[0];
    t.num_pages = pd->num_pages;
    t.page_size = pd->page_size;
    t.kv_heads = pd->kv_heads;
    return t;
}

/* Tokens of request b from the (trusted) table: 0 when it owns no page. */
static __device__ __forceinline__ long long paged_len(const paged_table &t, int b, long long &first)
{
    first = t.indptr[b];
    long long pages = (long long)t.indptr[b + 1] - first;
    if (pages < 1)
        return 0;
    int last = min(max(t.last[b], 1), t.page_size);
    return (pages - 1) * t.page_size + last;
}

/* Page number (within the request) and slot of token j >= 0, in 32-bit arithmetic when
 * j < 2^32 (always in practice). */
static __device__ __forceinline__ void paged_split(const paged_table &t, long long j, long long &pg, int &in)
{
    if (j <= 0xffffffffLL) {
        const unsigned q = (unsigned)j / (unsigned)t.page_size;
        pg = q;
        in = (int)((unsigned)j - q * (unsigned)t.page_size);
    } else {
        pg = j / t.page_size;
        in = (int)(j % t.page_size);
    }
}

/* Row of token j >= 0 (kv head g) of a request whose pages start at kv_indices position
 * `first`, in units of head_dim elements; -1 when the index data points outside its
 * buffers. */
static __device__ __forceinline__ long long paged_row(const paged_table &t, long long first, long long j, int g)
{
    long long pg;
    int in;
    paged_split(t, j, pg, in);
    const long long pi = first + pg;
    if (pi < 0 || pi >= t.n_indices)
        return -1;
    const long long page = t.indices[pi];
    if (page < 0 || page >= t.num_pages)
        return -1;
    return (page * t.kv_heads + g) * t.page_size + in;
}
#endif
