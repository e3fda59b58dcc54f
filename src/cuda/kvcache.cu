/* kvcache.cu - kv_append and paged_kv_append on CUDA: bit-exact row copies.
 *
 * kv_append:        K_cache[b,h,off[b]+l,:] = K_new[b,h,l,:], the same for V.
 * paged_kv_append:  new row r of request b (append_indptr[b] <= r < append_indptr[b+1])
 *                   goes to token position kv_len[b] - n_b + (r - append_indptr[b]) of b's
 *                   pages (the page table describes the cache after the append).
 * Shapes: see include/baracuda/kvcache.h; rows are contiguous (inner stride 1), outer
 *         strides arbitrary.
 * Work:   a grid-stride loop over copy units. The unit is the widest of 16/8/4/2 bytes
 *         that divides the row size, every pointer and every outer stride in bytes, so
 *         contiguous bf16 rows of 64+ elements move as 16-byte vectors. kv_append covers
 *         the K rows then the V rows in one launch; paged_kv_append finds each row's
 *         request by binary search in append_indptr.
 * Out of range (never written, no host sync): kv_append rows with off[b] + l outside
 *         [0, max_cache_len) (tested without overflow for any i64 offset);
 *         paged_kv_append rows that belong to no request (r >= append_indptr[batch]),
 *         whose position falls outside the request's tokens or pages, whose kv_indices
 *         entry lies past the tensor, or whose page id is outside the pool. Each such
 *         (b, l) row is counted once into dropped_rows[0] (atomicAdd on the i64 counter
 *         as unsigned long long) when the caller passes it; kv_append counts with one
 *         extra item per (b, l) after the copy units, so rows with D_k = 0 count too.
 * Determinism: kv_append writes every slot at most once (offsets are per b, rows
 *         disjoint). paged_kv_append is deterministic only when no two new rows target
 *         the same slot (the CPU's "last wins" order is not reproduced on the GPU).
 * Not yet: nothing known missing; a TMA bulk copy could shave the index math. */
#include "common.cuh"
#include "cuda/kvcache_cuda.h"

#include <stdint.h>

static const int kThreads = 256;

/* Widest power-of-two unit (<= 16 bytes) dividing every value. */
static int copy_unit(const long long *bytes_values, int n)
{
    int unit = 16;
    for (int i = 0; i < n; i++)
        while (unit > 1 && (bytes_values[i] % unit) != 0)
            unit /= 2;
    return unit;
}

template <int U> struct unit_type;
template <> struct unit_type<16> { typedef uint4 t; };
template <> struct unit_type<8> { typedef uint2 t; };
template <> struct unit_type<4> { typedef uint32_t t; };
template <> struct unit_type<2> { typedef uint16_t t; };
template <> struct unit_type<1> { typedef uint8_t t; };

/* Strides of one [B, H, L, D] tensor in copy units. */
struct rows4 {
    const char *src;
    char *dst;
    long long s0, s1, s2;    /* source outer strides, in units */
    long long d0, d1, d2;    /* destination outer strides, in units */
    long long units_per_row; /* D * elem / unit */
};

template <int U>
__global__ void kv_append_kernel(rows4 k, rows4 v, const long long *offsets, int B, int H, int L, int max_len,
                                 unsigned long long *dropped)
{
    typedef typename unit_type<U>::t unit;
    const long long rows = (long long)B * H * L;
    const long long k_total = rows * k.units_per_row;
    const long long copy_total = rows * (k.units_per_row + v.units_per_row);
    /* after the copy units: one counting item per (b, l) row when dropped_rows is given */
    const long long total = copy_total + (dropped ? (long long)B * L : 0);
    for (long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x; n < total; n += (long long)gridDim.x * blockDim.x) {
        if (n >= copy_total) {
            const long long c = n - copy_total, b = c / L, l = c % L, o = offsets[b];
            if (o < 0 || o >= (long long)max_len - l)
                atomicAdd(dropped, 1ULL);
            continue;
        }
        const bool is_k = n < k_total;
        const rows4 &t = is_k ? k : v;
        long long m = is_k ? n : n - k_total;
        long long u = m % t.units_per_row, r = m / t.units_per_row;
        long long l = r % L, bh = r / L, h = bh % H, b = bh / H;
        const long long o = offsets[b];
        /* in range: 0 <= o and o + l < max_len, written so that o near INT64_MAX cannot overflow */
        if (o < 0 || o >= (long long)max_len - l)
            continue;
        const long long pos = o + l;
        const unit *src = (const unit *)t.src + b * t.s0 + h * t.s1 + l * t.s2 + u;
        unit *dst = (unit *)t.dst + b * t.d0 + h * t.d1 + pos * t.d2 + u;
        *dst = *src;
    }
}

static rows4 rows_of(const bk_tensor *src, const bk_tensor *dst, int unit)
{
    size_t es = bk_dtype_size(src->dtype);
    rows4 r;
    r.src = (const char *)src->data;
    r.dst = (char *)dst->data;
    r.s0 = src->strides[0] * (long long)es / unit;
    r.s1 = src->strides[1] * (long long)es / unit;
    r.s2 = src->strides[2] * (long long)es / unit;
    r.d0 = dst->strides[0] * (long long)es / unit;
    r.d1 = dst->strides[1] * (long long)es / unit;
    r.d2 = dst->strides[2] * (long long)es / unit;
    r.units_per_row = src->shape[3] * (long long)es / unit;
    return r;
}

extern "C" bk_status bk_cuda_kv_append(const bk_kv_append_desc *d, const bk_kv_append_args *a, void *stream)
{
    long long rows = (long long)d->batch * d->heads * d->new_len;
    if (rows == 0) /* no (b, h, l) row: nothing to write, nothing dropped */
        return BK_STATUS_SUCCESS;
    const bk_tensor *ts[4] = {&a->k_new, &a->k_cache, &a->v_new, &a->v_cache};
    long long vals[4 * 4 + 2];
    int nv = 0;
    long long es = (long long)bk_dtype_size(d->dtype);
    for (int i = 0; i < 4; i++) {
        vals[nv++] = (long long)(uintptr_t)ts[i]->data;
        for (int j = 0; j < 3; j++)
            vals[nv++] = ts[i]->strides[j] * es;
    }
    vals[nv++] = d->head_dim_k * es;
    vals[nv++] = d->head_dim_v * es;
    int unit = copy_unit(vals, nv);
    rows4 k = rows_of(&a->k_new, &a->k_cache, unit), v = rows_of(&a->v_new, &a->v_cache, unit);
    unsigned long long *dropped = a->dropped_rows ? (unsigned long long *)a->dropped_rows->data : NULL;
    long long total = rows * (k.units_per_row + v.units_per_row) + (dropped ? (long long)d->batch * d->new_len : 0);
    const long long *off = (const long long *)a->cache_offsets.data;
    cudaStream_t s = (cudaStream_t)stream;
    unsigned grid = bk_grid_for(total, kThreads);
    switch (unit) {
    case 16: kv_append_kernel<16><<<grid, kThreads, 0, s>>>(k, v, off, d->batch, d->heads, d->new_len, d->max_cache_len, dropped); break;
    case 8: kv_append_kernel<8><<<grid, kThreads, 0, s>>>(k, v, off, d->batch, d->heads, d->new_len, d->max_cache_len, dropped); break;
    case 4: kv_append_kernel<4><<<grid, kThreads, 0, s>>>(k, v, off, d->batch, d->heads, d->new_len, d->max_cache_len, dropped); break;
    case 2: kv_append_kernel<2><<<grid, kThreads, 0, s>>>(k, v, off, d->batch, d->heads, d->new_len, d->max_cache_len, dropped); break;
    default: kv_append_kernel<1><<<grid, kThreads, 0, s>>>(k, v, off, d->batch, d->heads, d->new_len, d->max_cache_len, dropped); break;
    }
    return bk_cuda_check_launch("kv_append");
}

/* ------------------------------------------------------------- paged -- */

struct paged_rows {
    const char *k_src, *v_src;
    char *k_pool, *v_pool;
    long long ks0, ks1, vs0, vs1; /* new-row strides [nnz, heads, D] in units */
    long long units_per_row;      /* head_dim * elem / unit */
    const int *append_indptr, *kv_indptr, *kv_indices, *last_page_len;
    int batch, heads, page_size, num_pages, n_indices;
};

template <int U>
__global__ void paged_kv_append_kernel(paged_rows p, long long nnz, unsigned long long *dropped)
{
    typedef typename unit_type<U>::t unit;
    const long long per_row = (long long)p.heads * p.units_per_row; /* units of one token, all heads */
    const long long total = 2 * nnz * per_row;
    for (long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x; n < total; n += (long long)gridDim.x * blockDim.x) {
        const bool is_k = n < nnz * per_row;
        long long m = is_k ? n : n - nnz * per_row;
        long long r = m / per_row, rest = m % per_row, h = rest / p.units_per_row, u = rest % p.units_per_row;
        /* the request of row r: the last b with append_indptr[b] <= r */
        int lo = 0, hi = p.batch - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (p.append_indptr[mid] <= r)
                lo = mid;
            else
                hi = mid - 1;
        }
        const int b = lo;
        const long long a0 = p.append_indptr[b], n_b = (long long)p.append_indptr[b + 1] - a0;
        const long long first = p.kv_indptr[b], pages = (long long)p.kv_indptr[b + 1] - first;
        const long long kv_len = (pages - 1) * p.page_size + p.last_page_len[b];
        const long long pos = kv_len - n_b + (r - a0);
        long long page = -1;
        /* the row belongs to request b, its position lies inside b's tokens and pages, and
           its kv_indices entry exists */
        if (r >= a0 && r - a0 < n_b && pages >= 1 && pos >= 0 && pos < kv_len && pos < pages * p.page_size &&
            first + pos / p.page_size < p.n_indices && first >= 0)
            page = p.kv_indices[first + pos / p.page_size];
        if (page < 0 || page >= p.num_pages) {
            if (dropped && is_k && h == 0 && u == 0)
                atomicAdd(dropped, 1ULL);
            continue;
        }
        const long long slot = ((page * p.heads + h) * p.page_size + pos % p.page_size) * p.units_per_row + u;
        if (is_k)
            ((unit *)p.k_pool)[slot] = ((const unit *)p.k_src)[r * p.ks0 + h * p.ks1 + u];
        else
            ((unit *)p.v_pool)[slot] = ((const unit *)p.v_src)[r * p.vs0 + h * p.vs1 + u];
    }
}

extern "C" bk_status bk_cuda_paged_kv_append(const bk_paged_kv_append_desc *d, const bk_paged_kv_append_args *a,
                                             void *stream)
{
    if (d->nnz == 0)
        return BK_STATUS_SUCCESS;
    long long es = (long long)bk_dtype_size(d->paged_kv.dtype);
    long long vals[] = {(long long)(uintptr_t)a->k_new.data, (long long)(uintptr_t)a->v_new.data,
                        (long long)(uintptr_t)a->kv.k_pages.data, (long long)(uintptr_t)a->kv.v_pages.data,
                        a->k_new.strides[0] * es, a->k_new.strides[1] * es, a->v_new.strides[0] * es,
                        a->v_new.strides[1] * es, d->paged_kv.head_dim * es};
    int unit = copy_unit(vals, (int)(sizeof vals / sizeof vals[0]));
    paged_rows p;
    p.k_src = (const char *)a->k_new.data;
    p.v_src = (const char *)a->v_new.data;
    p.k_pool = (char *)a->kv.k_pages.data;
    p.v_pool = (char *)a->kv.v_pages.data;
    p.ks0 = a->k_new.strides[0] * es / unit;
    p.ks1 = a->k_new.strides[1] * es / unit;
    p.vs0 = a->v_new.strides[0] * es / unit;
    p.vs1 = a->v_new.strides[1] * es / unit;
    p.units_per_row = d->paged_kv.head_dim * es / unit;
    p.append_indptr = (const int *)a->append_indptr.data;
    p.kv_indptr = (const int *)a->kv.kv_indptr.data;
    p.kv_indices = (const int *)a->kv.kv_indices.data;
    p.last_page_len = (const int *)a->kv.last_page_len.data;
    p.batch = d->batch;
    p.heads = d->paged_kv.kv_heads;
    p.page_size = d->paged_kv.page_size;
    p.num_pages = d->paged_kv.num_pages;
    p.n_indices = (int)a->kv.kv_indices.shape[0];
    long long total = 2LL * d->nnz * p.heads * p.units_per_row;
    unsigned long long *dropped = a->dropped_rows ? (unsigned long long *)a->dropped_rows->data : NULL;
    cudaStream_t s = (cudaStream_t)stream;
    unsigned grid = bk_grid_for(total, kThreads);
    switch (unit) {
    case 16: paged_kv_append_kernel<16><<<grid, kThreads, 0, s>>>(p, d->nnz, dropped); break;
    case 8: paged_kv_append_kernel<8><<<grid, kThreads, 0, s>>>(p, d->nnz, dropped); break;
    case 4: paged_kv_append_kernel<4><<<grid, kThreads, 0, s>>>(p, d->nnz, dropped); break;
    case 2: paged_kv_append_kernel<2><<<grid, kThreads, 0, s>>>(p, d->nnz, dropped); break;
    default: paged_kv_append_kernel<1><<<grid, kThreads, 0, s>>>(p, d->nnz, dropped); break;
    }
    return bk_cuda_check_launch("paged_kv_append");
}
