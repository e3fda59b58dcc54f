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

/* Precise math in the compute type (f32 for f32/f16/bf16, f64 for f64). */
static __device__ __forceinline__ float bk_exp(float x) { return expf(x); }
static __device__ __forceinline__ double bk_exp(double x) { return exp(x); }
static __device__ __forceinline__ float bk_log(float x) { return logf(x); }
static __device__ __forceinline__ double bk_log(double x) { return log(x); }
static __device__ __forceinline__ float bk_tanh(float x) { return tanhf(x); }
static __device__ __forceinline__ double bk_tanh(double x) { return tanh(x); }

/* Tensor cores (sm_80+), one m16 x n8 x k16 step D += A * B (f32 accumulate) on operands of
 * type T. A fragment register `pair` holds two operand values at consecutive k (A: 4 pairs,
 * rows g, g+8 x k 2c.., 2c+8..; B: 2 pairs, k 2c.., 2c+8.. x column g; g = lane / 4,
 * c = lane % 4; D: rows g (0, 1) and g+8 (2, 3), columns 2c, 2c+1).
 *   pack(lo, hi)  a pair from two floats, rounded to the operand format;
 *   lds(p)        a pair from two consecutive T in shared memory, rounded likewise;
 *   st2(p, lo, hi) two consecutive T stored (rounded to T, the storage format; one store);
 *   mma(c, a, b)  the step.
 * f16, bf16: pair = two 16-bit values in one register, mma.sync.m16n8k16.
 * f32 (the TF32 plans): pair = two tf32 registers (cvt.rna.tf32.f32); the step is two
 * mma.sync.m16n8k8.tf32 over the pairs' first and second values: with physical k index p
 * of m16n8k8 (A a0 (g, c), a1 (g+8, c), a2 (g, c+4), a3 (g+8, c+4); B b0 (c, g), b1
 * (c+4, g)) standing for logical k 2p (first) and 2p+1 (second), every lane holds the same
 * (row, k) elements as in the 16-bit layout, so the kernels' fragment code is shared.
 * The mma asm is not volatile: it has no side effect, so the compiler may schedule it. */
template <typename T> struct bk_mma16;
template <> struct bk_mma16<__half> {
    typedef uint32_t pair;
    static __device__ __forceinline__ pair lds(const __half *p) { return *(const uint32_t *)p; }
    static __device__ __forceinline__ void st2(__half *p, float lo, float hi) { *(uint32_t *)p = pack(lo, hi); }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
    {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, const uint32_t *b)
    {
        mma(c, a, b[0], b[1]);
    }
};
template <> struct bk_mma16<__nv_bfloat16> {
    typedef uint32_t pair;
    static __device__ __forceinline__ pair lds(const __nv_bfloat16 *p) { return *(const uint32_t *)p; }
    static __device__ __forceinline__ void st2(__nv_bfloat16 *p, float lo, float hi)
    {
        *(uint32_t *)p = pack(lo, hi);
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
    {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ void mma(float *c, const uint32_t *a, const uint32_t *b)
    {
        mma(c, a, b[0], b[1]);
    }
};

/* f32 rounded to tf32 (round to nearest, ties away: cvt.rna), as its 32-bit register. */
static __device__ __forceinline__ uint32_t bk_tf32(float x)
{
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}
template <> struct bk_mma16<float> {
    typedef uint2 pair;
    static __device__ __forceinline__ pair pack(float lo, float hi) { return make_uint2(bk_tf32(lo), bk_tf32(hi)); }
    static __device__ __forceinline__ pair lds(const float *p)
    {
        const float2 v = *(const float2 *)p;
        return pack(v.x, v.y);
    }
    static __device__ __forceinline__ void st2(float *p, float lo, float hi) { *(float2 *)p = make_float2(lo, hi); }
    static __device__ __forceinline__ void mma(float *c, const pair *a, pair b0, pair b1)
    {
        asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0].x), "r"(a[1].x), "r"(a[2].x), "r"(a[3].x), "r"(b0.x), "r"(b1.x));
        asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0].y), "r"(a[1].y), "r"(a[2].y), "r"(a[3].y), "r"(b0.y), "r"(b1.y));
    }
    static __device__ __forceinline__ void mma(float *c, const pair *a, const pair *b) { mma(c, a, b[0], b[1]); }
};

/* The m16 x k16 A fragment made of two m16n8 accumulator tiles (c0: columns 0-7, c1: 8-15),
 * rounded to T: a product's result becomes the next product's left operand. */
template <typename T>
static __device__ __forceinline__ void bk_pack_a(typename bk_mma16<T>::pair (&a)[4], const float (&c0)[4],
                                                 const float (&c1)[4])
{
    a[0] = bk_mma16<T>::pack(c0[0], c0[1]);
    a[1] = bk_mma16<T>::pack(c0[2], c0[3]);
    a[2] = bk_mma16<T>::pack(c1[0], c1[1]);
    a[3] = bk_mma16<T>::pack(c1[2], c1[3]);
}

/* Shared-memory plumbing of the tensor-core kernels (sm_80+). */
static __device__ __forceinline__ uint32_t bk_smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}
/* Four 8x8 b16 matrices from shared memory (each lane gives one row address). */
static __device__ __forceinline__ void bk_ldsm_x4(uint32_t *r, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
static __device__ __forceinline__ void bk_ldsm_x4_trans(uint32_t *r, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
/* 16-byte global -> shared copy; `src_bytes` < 16 zero-fills the rest (0: all zeros). */
static __device__ __forceinline__ void bk_cp_async16(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
static __device__ __forceinline__ void bk_cp_async_commit()
{
    asm volatile("cp.async.commit_group;\n" ::);
}
/* Waits until at most N committed cp.async groups of this thread are still pending. */
template <int N> static __device__ __forceinline__ void bk_cp_async_wait_group()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
/* Waits for every cp.async of this thread, committed or not. */
static __device__ __forceinline__ void bk_cp_async_wait_all()
{
    asm volatile("cp.async.wait_all;\n" ::: "memory");
}
/* 2^x, approximate (ex2.approx.ftz): the softmax's exponential. */
static __device__ __forceinline__ float bk_ex2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* A gpu-scope semaphore handshake (the deterministic backward's ordered dq adds):
 * bk_sem_wait_acquire spins until *a reads v (acquire loads: what the releasing CTA wrote
 * before its release is visible after it; a barrier passes that on to the waiter's CTA);
 * bk_sem_release_add1, called after a barrier that orders the CTA's writes before it,
 * adds 1 with release semantics (those writes visible to the acquirer). */
static __device__ __forceinline__ void bk_sem_wait_acquire(const int *a, int v)
{
    asm volatile("{\n"
                 ".reg .pred ne;\n"
                 ".reg .s32 x;\n"
                 "BK_SEM_WAIT:\n"
                 "ld.acquire.gpu.global.s32 x, [%0];\n"
                 "setp.ne.s32 ne, x, %1;\n"
                 "@ne bra BK_SEM_WAIT;\n"
                 "}\n" ::"l"(a),
                 "r"(v)
                 : "memory");
}
static __device__ __forceinline__ void bk_sem_release_add1(int *a)
{
    asm volatile("red.release.gpu.global.add.s32 [%0], 1;\n" ::"l"(a) : "memory");
}

/* 2^x on the FMA and integer pipes instead of the MUFU one (which does 16 per clock per SM):
 * 2^x = 2^n 2^f, n = round(x) by the 1.5 * 2^23 shift, f in [-0.5, 0.5], 2^f by a degree-3
 * polynomial (relative error under 7.5e-5, below the 16-bit P it feeds), n added into the
 * exponent bits. 0 for x < -125 (and -inf), like ex2.approx.ftz; x must be below 128. */
static __device__ __forceinline__ float bk_ex2_fma(float x)
{
    const float shift = 12582912.f; /* 1.5 * 2^23: t's low mantissa bits hold round(x) */
    const float t = x + shift, f = x - (t - shift);
    const int n = __float_as_int(t) - __float_as_int(shift);
    const float p = fmaf(fmaf(fmaf(0.05517167f, f, 0.24261115f), f, 0.69326097f), f, 0.99992806f);
    return x < -125.f ? 0.f : __int_as_float(__float_as_int(p) + (n << 23));
}

/* Programmatic dependent launch (sm_90 and later; no-ops below): a kernel launched by
 * bk_launch_dependent may start while the kernel before it on the stream still runs, and
 * waits in bk_grid_dep_wait until that kernel has finished and its writes are visible (a
 * kernel launched the usual way returns from it at once). bk_grid_dep_launch in the kernel
 * before lets the dependent one be scheduled once every block has called it (or exited). */
static __device__ __forceinline__ void bk_grid_dep_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
static __device__ __forceinline__ void bk_grid_dep_launch()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

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

/* The current device's attribute `attr` in *value (a device-attribute query, no
 * synchronisation); false, with the error cleared, when it cannot be read. */
static inline bool bk_cuda_device_attr(cudaDeviceAttr attr, int *value)
{
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(value, attr, dev) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return true;
}

/* Whether the current device lets one block opt in to `bytes` of shared memory (false when
 * the query fails). */
static inline bool bk_cuda_smem_fits(size_t bytes)
{
    int optin = 0;
    return bk_cuda_device_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin, &optin) && bytes <= (size_t)optin;
}

/* The current device's multiprocessor count in *sms; false when it cannot be read. */
static inline bool bk_cuda_sm_count(int *sms)
{
    return bk_cuda_device_attr(cudaDevAttrMultiProcessorCount, sms);
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

/* Launches kernel<<<grid, block, smem, s>>>(args...) as a programmatic dependent of the
 * kernel before it on s (see bk_grid_dep_wait; the kernel must call it before it reads
 * what that kernel wrote). For devices of compute capability 9.0 and later (the caller
 * knows its target). Host only, no synchronisation; the launch error is left for
 * bk_cuda_check_launch. */
template <typename... P, typename... A>
static inline void bk_launch_dependent(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                                       A... args)
{
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    cudaLaunchKernelEx(&cfg, kernel, args...);
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
