/* hopper.cuh - Hopper (sm_90) building blocks of the warp-specialised kernels: mbarriers,
 * the bulk tensor copy (TMA) into shared memory, cp.async completion on an mbarrier, and
 * the warpgroup register hand-over (setmaxnreg, sm_90a). Host side: encoding a tensor map
 * through the driver entry point the runtime hands out (no -lcuda).
 *
 * mbarrier protocol used by the kernels: a "full" barrier per buffer completes when the
 * data has landed (TMA: one arrive with the expected byte count, the copy engine counts
 * the bytes; cp.async: one arrive per producer thread when its copies are done); an
 * "empty" barrier per buffer completes when every consumer thread is done reading. Waits
 * are by phase parity; a producer waits on an empty barrier with the parity flipped, so
 * the first pass over a fresh ring does not block. */
#ifndef BK_CUDA_HOPPER_CUH
#define BK_CUDA_HOPPER_CUH
#include "common.cuh"
#include "wgmma.cuh"

#include <cuda.h>
#include <stdint.h>

static __device__ __forceinline__ void bk_mbar_init(uint32_t bar, uint32_t count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
/* Makes the barrier initialisations visible to the other threads and the copy engine. */
static __device__ __forceinline__ void bk_mbar_init_fence()
{
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
static __device__ __forceinline__ void bk_mbar_arrive(uint32_t bar)
{
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
}
/* One arrive that also announces `bytes` of copies completing on this barrier. */
static __device__ __forceinline__ void bk_mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes)
{
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1;\n}\n" ::"r"(bar),
                 "r"(bytes)
                 : "memory");
}
/* Blocks until the phase of parity `parity` has completed. */
static __device__ __forceinline__ void bk_mbar_wait(uint32_t bar, uint32_t parity)
{
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
    } while (!done);
}
/* Arrives on `bar` when all of this thread's earlier cp.async copies have landed; the
 * barrier's count must include this thread (no increment). */
static __device__ __forceinline__ void bk_cp_async_mbar_arrive(uint32_t bar)
{
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
/* The box at coordinates (c0 innermost .. c3) of the tensor map into shared memory at dst,
 * completing `bar`'s transaction count. */
static __device__ __forceinline__ void bk_tma_load_4d(uint32_t dst, const CUtensorMap *map, uint32_t bar, int c0,
                                                      int c1, int c2, int c3)
{
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, "
                 "%4, %5, %6}], [%2];\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
                 : "memory");
}
/* Adds the shared-memory box at src into the tensor map's box at (c0 innermost .. c3) in
 * global memory (TMA reduce, the map's element type; out-of-bounds elements are skipped),
 * tracked by the issuing thread's bulk groups: bk_bulk_commit after the copies, then
 * bk_bulk_wait_read<N> before src is rewritten and bk_bulk_wait<N> for the global writes. */
static __device__ __forceinline__ void bk_tma_reduce_add_4d(const CUtensorMap *map, uint32_t src, int c0, int c1,
                                                            int c2, int c3)
{
    asm volatile("cp.reduce.async.bulk.tensor.4d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3, %4, %5}], "
                 "[%1];\n" ::"l"((uint64_t)map),
                 "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
                 : "memory");
}
static __device__ __forceinline__ void bk_bulk_commit()
{
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
/* Waits until at most N of the thread's bulk groups still read their shared memory. */
template <int N> static __device__ __forceinline__ void bk_bulk_wait_read()
{
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}
/* Waits until at most N of the thread's bulk groups are incomplete (writes done). */
template <int N> static __device__ __forceinline__ void bk_bulk_wait()
{
    asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
}
/* Orders this thread's generic-proxy accesses of global memory with its async-proxy ones
 * (TMA), both ways: between an acquire and the bulk copies it guards, or between completed
 * bulk writes (bk_bulk_wait) and a release. */
static __device__ __forceinline__ void bk_fence_proxy_async_global()
{
    asm volatile("fence.proxy.async.global;\n" ::: "memory");
}
/* Warpgroup register hand-over: the producer gives registers up, the consumers take them. */
template <int R> static __device__ __forceinline__ void bk_regs_dec()
{
#if BK_HAS_WGMMA
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R));
#endif
}
template <int R> static __device__ __forceinline__ void bk_regs_inc()
{
#if BK_HAS_WGMMA
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R));
#endif
}
/* Named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads: sync waits for
 * all of them, arrive counts this thread and goes on. */
static __device__ __forceinline__ void bk_named_sync(int id, int threads)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
static __device__ __forceinline__ void bk_named_arrive(int id, int threads)
{
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
/* Keeps registers that an in-flight wgmma reads alive (and unmodified) up to this point. */
template <int R> static __device__ __forceinline__ void bk_keep_regs(uint32_t (&r)[R])
{
#pragma unroll
    for (int i = 0; i < R; i++)
        asm volatile("" : "+r"(r[i])::"memory");
}

/* The element types of bk_tma_encode's tensor maps. */
enum bk_tma_elem { BK_TMA_F16, BK_TMA_BF16, BK_TMA_F32 };
static inline bk_tma_elem bk_tma_16bit(bool bf16) { return bf16 ? BK_TMA_BF16 : BK_TMA_F16; }

/* Host: a 4-D tiled tensor map over a [d3][d2][d1][d0] view of `elem` (dims innermost
 * first, strides of d1..d3 in elements, d0 contiguous) with boxes of box[0..3] elements
 * (box[0] x the element size = 128 bytes: one swizzled row) and the 128-byte swizzle, zero
 * fill out of bounds. A dimension of stride 0 (a broadcast) becomes extent 1: the kernel
 * addresses it at coordinate 0. Errors: DEVICE_ERROR. */
bk_status bk_tma_encode(CUtensorMap *map, const void *base, bk_tma_elem elem, const long long dims[4],
                        const long long strides[3], const int box[4], const char *op);

#endif
