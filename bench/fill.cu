/* fill.cu - random device data for bk_bench (a counter-based hash: no cuRAND needed). */
#include "baracuda/baracuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

static __device__ float hash_uniform(unsigned long long i, unsigned long long seed)
{
    unsigned long long z = i * 0x9e3779b97f4a7c15ull + seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

template <typename T> static __device__ T from_float(float x);
template <> __device__ float from_float<float>(float x) { return x; }
template <> __device__ double from_float<double>(float x) { return x; }
template <> __device__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename T>
__global__ void fill_kernel(T *p, size_t n, float lo, float hi, unsigned long long seed)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = from_float<T>(lo + (hi - lo) * hash_uniform(i, seed));
}

extern "C" void bench_fill_random(void *p, bk_dtype dtype, size_t n, float lo, float hi, unsigned long long seed)
{
    unsigned blocks = (unsigned)((n + 255) / 256 < 65536 ? (n + 255) / 256 : 65536);
    if (blocks == 0)
        return;
    switch (dtype) {
    case BK_DTYPE_F32: fill_kernel<<<blocks, 256>>>((float *)p, n, lo, hi, seed); break;
    case BK_DTYPE_F64: fill_kernel<<<blocks, 256>>>((double *)p, n, lo, hi, seed); break;
    case BK_DTYPE_F16: fill_kernel<<<blocks, 256>>>((__half *)p, n, lo, hi, seed); break;
    case BK_DTYPE_BF16: fill_kernel<<<blocks, 256>>>((__nv_bfloat16 *)p, n, lo, hi, seed); break;
    default: break;
    }
}

extern "C" void bench_fill_i32(int32_t *p, const int32_t *host, size_t n)
{
    cudaMemcpy(p, host, n * sizeof(int32_t), cudaMemcpyHostToDevice);
}

/* The read-only ceiling: every 16-byte word of p (n16 of them) read once, 4 loads in flight
 * per thread, folded by XOR into one word per thread, written only when it equals a value
 * the data never produces (so the loads stay and nothing is written in practice). */
__global__ void read_kernel(const uint4 *__restrict__ p, size_t n16, unsigned *out)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    unsigned acc = 0;
    for (; i + 3 * stride < n16; i += 4 * stride) {
        const uint4 a = __ldcs(p + i), b = __ldcs(p + i + stride), c = __ldcs(p + i + 2 * stride),
                    d = __ldcs(p + i + 3 * stride);
        acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
    }
    for (; i < n16; i += stride) {
        const uint4 a = __ldcs(p + i);
        acc ^= a.x ^ a.y ^ a.z ^ a.w;
    }
    if (acc == 0x9e3779b9u)
        *out = acc;
}

extern "C" int bench_read(const void *p, size_t bytes, unsigned *out, cudaStream_t s)
{
    int dev = 0, sms = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    read_kernel<<<(unsigned)(sms * 4), 512, 0, s>>>((const uint4 *)p, bytes / 16, out);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}
