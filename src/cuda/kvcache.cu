/* kvcache.cu - kv_append and paged_kv_append on CUDA: bit-exact row copies.
 *
 * kv_append:        K_cache[b,h,off[b]+l,:] = K_new[b,h,l,:], the same for V.
 * paged_kv_append:  new row r of request b (append_indptr[b] <= r < append_indptr[b+1])
 *                   goes to token position kv_len[b] - n_b + (r - append_indptr[b]) of b's
 *                   pages (the page table describes the cache after the append).
 * Shapes: see include/baracuda/kvcache.h; rows are contiguous (inner stride 1), outer
 *         strides arbitrary.
 * Work:   row kernels over copy units. The unit is the widest of 16/8/4/2 bytes that
 *         divides the row size, every pointer and every outer stride in bytes, so
 *         contiguous bf16 rows of 64+ elements move as 16-byte vectors. A block is TX x TY
 *         threads (TX = the row's units rounded up to a power of two, at most 32; TY =
 *         256 / TX) and owns 4 * TY rows; each thread loads its unit of 4 rows before it
 *         stores any (4 independent 16-byte loads in flight). The per-row index math runs
 *         once per row, not per unit, and in 32 bits where it fits (64-bit integer
 *         division is ~20x slower on the GPU and makes a per-unit loop compute bound).
 *         kv_append: grid (ceil(H*L / (4*TY)), 2 = K/V, min(B, 65535)), z strides over b;
 *         a block's rows are consecutive (h, l) of one b (h, l split with one 32-bit
 *         division when H*L < 2^31, else 64-bit).
 *         paged_kv_append: grid (ceil(nnz / (4*TY)), min(2*kv_heads, 65535)); a block
 *         first finds the destination of each of its rows (binary search in
 *         append_indptr, page lookup) into shared memory, then y strides over (K/V, head).
 * Out of range (never written, no host sync): kv_append rows (b, l) with off[b] + l
 *         outside [0, max_cache_len), row by row: a negative offset still writes the rows
 *         that land at or after 0 (tested without overflow for any i64 offset);
 *         paged_kv_append rows that belong to no request (r >= append_indptr[batch]),
 *         whose position falls outside the request's tokens or pages, whose kv_indices
 *         entry lies past the tensor, or whose page id is outside the pool. Each such
 *         (b, l) row is counted once into dropped_rows[0] (atomicAdd on the i64 counter
 *         as unsigned long long) when the caller passes it; kv_append counts in the K
 *         block's h = 0 rows before the copy, so rows with D_k = 0 count too.
 * Determinism: kv_append writes every slot at most once (offsets are per b, rows
 *         disjoint). paged_kv_append is deterministic only when no two new rows target
 *         the same slot (the CPU's "last wins" order is not reproduced on the GPU).
 * Not yet: TMA bulk copies (the copy is now memory bound, see bench/). */
#include "common.cuh"
#include "cuda/kvcache_cuda.h"

#include <stdint.h>

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

/* Block shape of the row kernels: TX lanes along a row (the smallest power of two >=
 * the row's units, at most 32), TY = 256 / TX rows side by side, kRowsPerThread rows per
 * thread (their loads are all issued before the first store). */
static const int kRowsPerThread = 4;

static int lanes_for(long long units_per_row)
{
    int tx = 1;
    while (tx < 32 && tx < units_per_row)
        tx *= 2;
    return tx;
}

/* r = h * L + l -> (h, l): 32-bit division when H * L fits (every realistic shape), else 64-bit. */
static __device__ __forceinline__ void split_row(long long r, long long HL, int L, long long &h, long long &l)
{
    if (HL <= 0x7fffffffLL) {
        const unsigned q = (unsigned)r / (unsigned)L;
        h = q;
        l = (long long)((unsigned)r - q * (unsigned)L);
    } else {
        h = r / L;
        l = r - h * L;
    }
}

/* grid (ceil(H*L / (TY*R)), 2, min(B, 65535)): blockIdx.y picks K (0) or V (1), z strides
 * over b; a block owns TY*R consecutive (h, l) rows of one b. The (h, l) split and the
 * offset test happen once per row; each lane then copies its units of the row. */
template <int U>
__global__ void __launch_bounds__(256) kv_append_kernel(rows4 k, rows4 v, const long long *offsets, int B, int H,
                                                        int L, int max_len, unsigned long long *dropped)
{
    typedef typename unit_type<U>::t unit;
    const int R = kRowsPerThread;
    const int TX = blockDim.x, TY = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
    const bool is_k = blockIdx.y == 0;
    const unit *src = (const unit *)(is_k ? k.src : v.src);
    unit *dst = (unit *)(is_k ? k.dst : v.dst);
    const long long s0 = is_k ? k.s0 : v.s0, s1 = is_k ? k.s1 : v.s1, s2 = is_k ? k.s2 : v.s2;
    const long long d0 = is_k ? k.d0 : v.d0, d1 = is_k ? k.d1 : v.d1, d2 = is_k ? k.d2 : v.d2;
    const long long upr = is_k ? k.units_per_row : v.units_per_row;
    const long long HL = (long long)H * L;
    const long long r0 = (long long)blockIdx.x * TY * R + ty;
    for (long long b = blockIdx.z; b < B; b += gridDim.z) {
        const long long o = offsets[b];
        long long so[R], dof[R];
        bool ok[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            const long long r = r0 + (long long)i * TY;
            ok[i] = false;
            so[i] = dof[i] = 0;
            if (r < HL) {
                long long h, l;
                split_row(r, HL, L, h, l);
                /* row (b, l) is in range when 0 <= o + l < max_len; written as -l <= o < max_len - l
                   so that no offset (INT64_MIN .. INT64_MAX) overflows. The test is per row: a
                   negative offset still writes its rows l >= -o. */
                ok[i] = o >= -l && o < (long long)max_len - l;
                if (ok[i]) {
                    so[i] = b * s0 + h * s1 + l * s2;
                    dof[i] = b * d0 + h * d1 + (o + l) * d2;
                } else if (dropped && is_k && h == 0 && tx == 0) /* once per (b, l) */
                    atomicAdd(dropped, 1ULL);
            }
        }
        for (long long u = tx; u < upr; u += TX) {
            unit buf[R];
#pragma unroll
            for (int i = 0; i < R; i++)
                if (ok[i])
                    buf[i] = src[so[i] + u];
#pragma unroll
            for (int i = 0; i < R; i++)
                if (ok[i])
                    dst[dof[i] + u] = buf[i];
        }
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
    const long long *off = (const long long *)a->cache_offsets.data;
    cudaStream_t s = (cudaStream_t)stream;
    const int tx = lanes_for(k.units_per_row > v.units_per_row ? k.units_per_row : v.units_per_row);
    const dim3 block(tx, 256 / tx);
    const long long hl = (long long)d->heads * d->new_len, per_block = (long long)block.y * kRowsPerThread;
    const dim3 grid((unsigned)((hl + per_block - 1) / per_block), 2, (unsigned)(d->batch < 65535 ? d->batch : 65535));
    const int B = d->batch, H = d->heads, L = d->new_len, M = d->max_cache_len;
    switch (unit) {
    case 16: kv_append_kernel<16><<<grid, block, 0, s>>>(k, v, off, B, H, L, M, dropped); break;
    case 8: kv_append_kernel<8><<<grid, block, 0, s>>>(k, v, off, B, H, L, M, dropped); break;
    case 4: kv_append_kernel<4><<<grid, block, 0, s>>>(k, v, off, B, H, L, M, dropped); break;
    case 2: kv_append_kernel<2><<<grid, block, 0, s>>>(k, v, off, B, H, L, M, dropped); break;
    default: kv_append_kernel<1><<<grid, block, 0, s>>>(k, v, off, B, H, L, M, dropped); break;
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

/* Destination row of new row r in the pool, in rows of head_dim (head 0; head h adds
 * h * page_size), or -1 when the row is dropped (see the header). */
static __device__ __forceinline__ long long paged_dst_row(const paged_rows &p, long long r)
{
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
    if (page < 0 || page >= p.num_pages)
        return -1;
    return page * p.heads * p.page_size + pos % p.page_size;
}

/* grid (ceil(nnz / (TY*R)), min(2*heads, 65535)): a block owns TY*R consecutive new rows;
 * it finds their slots once (binary search, page lookup) into shared memory, then
 * blockIdx.y strides over (K or V, head) and each lane copies its units of the rows. */
template <int U>
__global__ void __launch_bounds__(256) paged_kv_append_kernel(paged_rows p, int nnz, unsigned long long *dropped)
{
    typedef typename unit_type<U>::t unit;
    const int R = kRowsPerThread;
    __shared__ long long dst_row[256 * kRowsPerThread];
    const int TX = blockDim.x, TY = blockDim.y, tx = threadIdx.x, ty = threadIdx.y, tid = ty * TX + tx;
    const int rows_blk = TY * R;
    const long long r_begin = (long long)blockIdx.x * rows_blk;
    for (int i = tid; i < rows_blk; i += TX * TY) {
        const long long r = r_begin + i;
        long long row = -1;
        if (r < nnz) {
            row = paged_dst_row(p, r);
            if (row < 0 && dropped && blockIdx.y == 0)
                atomicAdd(dropped, 1ULL);
        }
        dst_row[i] = row;
    }
    __syncthreads();
    const long long upr = p.units_per_row;
    for (int kh = blockIdx.y; kh < 2 * p.heads; kh += gridDim.y) {
        const bool is_k = kh < p.heads;
        const long long h = is_k ? kh : kh - p.heads;
        const unit *src = (const unit *)(is_k ? p.k_src : p.v_src);
        unit *dst = (unit *)(is_k ? p.k_pool : p.v_pool);
        const long long s0 = is_k ? p.ks0 : p.vs0, s1 = is_k ? p.ks1 : p.vs1;
        long long so[R], dof[R];
        bool ok[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            const int li = ty + i * TY;
            const long long r = r_begin + li, row = dst_row[li];
            ok[i] = row >= 0;
            so[i] = r * s0 + h * s1;
            dof[i] = (row + h * p.page_size) * upr;
        }
        for (long long u = tx; u < upr; u += TX) {
            unit buf[R];
#pragma unroll
            for (int i = 0; i < R; i++)
                if (ok[i])
                    buf[i] = src[so[i] + u];
#pragma unroll
            for (int i = 0; i < R; i++)
                if (ok[i])
                    dst[dof[i] + u] = buf[i];
        }
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
    unsigned long long *dropped = a->dropped_rows ? (unsigned long long *)a->dropped_rows->data : NULL;
    cudaStream_t s = (cudaStream_t)stream;
    const int tx = lanes_for(p.units_per_row);
    const dim3 block(tx, 256 / tx);
    const long long per_block = (long long)block.y * kRowsPerThread, kh = 2LL * p.heads;
    const dim3 grid((unsigned)((d->nnz + per_block - 1) / per_block), (unsigned)(kh < 65535 ? kh : 65535));
    switch (unit) {
    case 16: paged_kv_append_kernel<16><<<grid, block, 0, s>>>(p, d->nnz, dropped); break;
    case 8: paged_kv_append_kernel<8><<<grid, block, 0, s>>>(p, d->nnz, dropped); break;
    case 4: paged_kv_append_kernel<4><<<grid, block, 0, s>>>(p, d->nnz, dropped); break;
    case 2: paged_kv_append_kernel<2><<<grid, block, 0, s>>>(p, d->nnz, dropped); break;
    default: paged_kv_append_kernel<1><<<grid, block, 0, s>>>(p, d->nnz, dropped); break;
    }
    return bk_cuda_check_launch("paged_kv_append");
}
