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
