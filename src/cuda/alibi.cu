/* alibi.cu - ALiBi forward and backward on CUDA.
 *
 * Math:   Y[b,h,i,j] = A[b,h,i,j] + slope[h] * (j - i)
 *         dA = dY;  dslope[h] = sum_{b,i,j} dY[b,h,i,j] * (j - i)
 * Shapes: A, Y, dY, dA [B, H, Q, K], any non-negative strides; slopes, dslopes [H].
 * Work:   forward: a grid-stride loop, one element per thread step, compute in f32 (f64
 *         for f64). Backward: pass 1 has H x P blocks; block (h, p) walks its fixed
 *         slice of head h's B*Q*K elements, copies dY to dA when asked, and reduces
 *         dY * (j - i) in f64 through a fixed shared-memory tree into partial[h][p] (the
 *         workspace). Pass 2 sums each head's P partials in order. No atomics: the result
 *         is bit-identical on every run.
 * Not yet: vectorised 16-byte accesses for contiguous views. */
#include "common.cuh"
#include "cuda/alibi_cuda.h"

static const int kThreads = 256;

static __device__ __forceinline__ void split4(long long n, int H, int Q, int K, long long &b, long long &h,
                                              long long &i, long long &j)
{
    j = n % K;
    n /= K;
    i = n % Q;
    n /= Q;
    h = n % H;
    b = n / H;
}

template <typename T>
__global__ void alibi_fwd_kernel(const T *a, bk_view4 sa, const T *slopes, long long sslope, T *y, bk_view4 sy, int H,
                                 int Q, int K, long long total)
{
    typedef typename elem<T>::acc acc;
    for (long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x; n < total; n += (long long)gridDim.x * blockDim.x) {
        long long b, h, i, j;
        split4(n, H, Q, K, b, h, i, j);
        acc v = elem<T>::load(a[b * sa.s0 + h * sa.s1 + i * sa.s2 + j * sa.s3]);
        acc s = elem<T>::load(slopes[h * sslope]);
        y[b * sy.s0 + h * sy.s1 + i * sy.s2 + j * sy.s3] = elem<T>::store(v + s * (acc)(j - i));
    }
}

/* Pass 1: block (p, h) reduces elements [p*chunk, (p+1)*chunk) of head h's B*Q*K. */
template <typename T>
__global__ void alibi_bwd_partial_kernel(const T *dy, bk_view4 sdy, T *da, bk_view4 sda, double *partial, int B, int H,
                                         int Q, int K, long long chunk)
{
    __shared__ double red[kThreads];
    const int h = blockIdx.y, p = blockIdx.x;
    const long long per_head = (long long)B * Q * K;
    const long long lo = p * chunk, hi = min(per_head, lo + chunk);
    double sum = 0.0;
    for (long long n = lo + threadIdx.x; n < hi; n += blockDim.x) {
        long long j = n % K, i = (n / K) % Q, b = n / ((long long)K * Q);
        T g = dy[b * sdy.s0 + h * sdy.s1 + i * sdy.s2 + j * sdy.s3];
        if (da)
            da[b * sda.s0 + h * sda.s1 + i * sda.s2 + j * sda.s3] = g;
        sum += (double)elem<T>::load(g) * (double)(j - i);
    }
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w /= 2) {
        if (threadIdx.x < w)
            red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0 && partial)
        partial[(long long)h * gridDim.x + p] = red[0];
}

/* Pass 2: one thread per head sums its partials in order. */
template <typename T>
__global__ void alibi_bwd_finish_kernel(const double *partial, int parts, T *dslopes, long long sds, int H)
{
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H)
        return;
    double s = 0.0;
    for (int p = 0; p < parts; p++)
        s += partial[(long long)h * parts + p];
    dslopes[h * sds] = elem<T>::store((typename elem<T>::acc)s);
}

extern "C" bk_status bk_cuda_alibi_fwd(const bk_alibi_fwd_desc *d, const bk_alibi_fwd_args *a, void *stream)
{
    long long total = (long long)d->batch * d->heads * d->query_len * d->key_len;
    if (total == 0)
        return BK_STATUS_SUCCESS;
    cudaStream_t s = (cudaStream_t)stream;
    BK_DISPATCH_FLOAT(d->dtype, T,
                      alibi_fwd_kernel<T><<<bk_grid_for(total, kThreads), kThreads, 0, s>>>(
                          (const T *)a->scores.data, bk_view4_of(&a->scores), (const T *)a->slopes.data,
                          a->slopes.strides[0], (T *)a->y.data, bk_view4_of(&a->y), d->heads, d->query_len,
                          d->key_len, total));
    return bk_cuda_check_launch("alibi_fwd");
}

extern "C" int32_t bk_cuda_alibi_bwd_parts(const bk_alibi_bwd_desc *d)
{
    long long per_head = bk_mul_sat(bk_mul_sat(d->batch, d->query_len), d->key_len);
    long long parts = per_head / 16384 + (per_head % 16384 != 0);
    return (int32_t)(parts < 1 ? 1 : parts > 512 ? 512 : parts);
}

extern "C" bk_status bk_cuda_alibi_bwd(const bk_alibi_bwd_desc *d, const bk_alibi_bwd_args *a, void *workspace,
                                       void *stream)
{
    long long per_head = bk_mul_sat(bk_mul_sat(d->batch, d->query_len), d->key_len);
    if (d->heads == 0 || (per_head == 0 && !a->dslopes))
        return BK_STATUS_SUCCESS;
    cudaStream_t s = (cudaStream_t)stream;
    int parts = bk_cuda_alibi_bwd_parts(d);
    long long chunk = (per_head + parts - 1) / parts;
    double *partial = a->dslopes ? (double *)workspace : NULL;
    bk_view4 vda = a->dscores ? bk_view4_of(a->dscores) : bk_view4{0, 0, 0, 0};
    dim3 grid((unsigned)parts, (unsigned)d->heads);
    BK_DISPATCH_FLOAT(d->dtype, T, {
        alibi_bwd_partial_kernel<T><<<grid, kThreads, 0, s>>>(
            (const T *)a->dy.data, bk_view4_of(&a->dy), a->dscores ? (T *)a->dscores->data : (T *)NULL, vda, partial,
            d->batch, d->heads, d->query_len, d->key_len, chunk < 1 ? 1 : chunk);
        if (a->dslopes)
            alibi_bwd_finish_kernel<T><<<bk_grid_for(d->heads, 128), 128, 0, s>>>(
                partial, parts, (T *)a->dslopes->data, a->dslopes->strides[0], d->heads);
    });
    return bk_cuda_check_launch("alibi_bwd");
}
