/* common.cuh - what every CUDA kernel file of baracuda shares.
 *
 *   elem<T>          load an element as its compute type (double for f64, float for the
 *                    rest) and store back with round-to-nearest-even
 *   BK_DISPATCH_FLOAT  one switch that instantiates a templated launcher per element dtype
 *   bk_cuda_check_launch  maps a launch error to BK_STATUS_DEVICE_ERROR with a sentence
 *   bk_view4         strides of a rank <= 4 tensor passed by value to kernels
 *
 * Kernels never allocate, never synchronise, and run on the caller's stream. */
#ifndef BK_CUDA_COMMON_CUH
#define BK_CUDA_COMMON_CUH

#include "core/core.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

template <typename T> struct elem;
template <> struct elem<float> {
    typedef float acc;
    static __device__ __forceinline__ float load(float x) { return x; }
    static __device__ __forceinline__ float store(float x) { return x; }
};
template <> struct elem<double> {
    typedef double acc;
    static __device__ __forceinline__ double load(double x) { return x; }
    static __device__ __forceinline__ double store(double x) { return x; }
};
template <> struct elem<__half> {
    typedef float acc;
    static __device__ __forceinline__ float load(__half x) { return __half2float(x); }
    static __device__ __forceinline__ __half store(float x) { return __float2half_rn(x); }
};
template <> struct elem<__nv_bfloat16> {
    typedef float acc;
    static __device__ __forceinline__ float load(__nv_bfloat16 x) { return __bfloat162float(x); }
    static __device__ __forceinline__ __nv_bfloat16 store(float x) { return __float2bfloat16_rn(x); }
};

/* Runs the statements after T with T bound to the storage type of `dtype` (f32, f64, f16, bf16). */
#define BK_DISPATCH_FLOAT(dtype, T, ...)                                  \
    switch (dtype) {                                                       \
    case BK_DTYPE_F32: { typedef float T; __VA_ARGS__; } break;                   \
    case BK_DTYPE_F64: { typedef double T; __VA_ARGS__; } break;                  \
    case BK_DTYPE_F16: { typedef __half T; __VA_ARGS__; } break;                  \
    case BK_DTYPE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break;          \
    default: break;                                                        \
    }

/* Strides (in elements) of a view of rank <= 4, by value for a kernel. */
struct bk_view4 {
    long long s0, s1, s2, s3;
};
static inline bk_view4 bk_view4_of(const bk_tensor *t)
{
    bk_view4 v = {0, 0, 0, 0};
    long long *s[4] = {&v.s0, &v.s1, &v.s2, &v.s3};
    for (int i = 0; i < t->rank && i < 4; i++)
        *s[i] = t->strides[i];
    return v;
}

/* BK_STATUS_DEVICE_ERROR with "op: kernel launch failed: ..." when the last launch
 * failed; success otherwise. Reads only the launch error (no synchronisation). */
static inline bk_status bk_cuda_check_launch(const char *op)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "%s: kernel launch failed: %s", op, cudaGetErrorString(e));
    return BK_STATUS_SUCCESS;
}

/* Blocks for n independent items at `threads` per block, capped for grid-stride loops. */
static inline unsigned bk_grid_for(long long n, int threads)
{
    long long blocks = (n + threads - 1) / threads;
    if (blocks < 1)
        blocks = 1;
    if (blocks > 65535LL * 16)
        blocks = 65535LL * 16;
    return (unsigned)blocks;
}

#endif
