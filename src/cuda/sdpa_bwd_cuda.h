/* CUDA launchers of sdpa_bwd (src/cuda/sdpa_bwd.cu), called by src/ops/sdpa_bwd.c after
 * can_implement and the workspace check have passed. Asynchronous on `stream`; no
 * allocation, no synchronisation. */
#ifndef BK_CUDA_SDPA_BWD_H
#define BK_CUDA_SDPA_BWD_H
#include "baracuda/baracuda.h"
#ifdef __cplusplus
extern "C" {
#endif
/* The CUDA kernel families of the backward. */
typedef enum bk_cuda_sdpa_bwd_kernel {
    BK_CUDA_SDPA_BWD_GENERIC = 0, /* CUDA cores, every dtype and option, deterministic */
    BK_CUDA_SDPA_BWD_TC = 1,      /* tensor cores, dk/dv pass + dq pass, deterministic */
    BK_CUDA_SDPA_BWD_FUSED = 2,   /* tensor cores, one pass, dq by f32 atomics */
    BK_CUDA_SDPA_BWD_FUSED_DET = 3, /* the same pass, dq tiles added in a fixed order, deterministic */
    BK_CUDA_SDPA_BWD_SM90 = 4,      /* Hopper (wgmma, TMA), one pass, dq by f32 atomics
                                       (src/cuda/sdpa_bwd_sm90.cu) */
    BK_CUDA_SDPA_BWD_SM90_DET = 5   /* the Hopper pass, dq tiles added in a fixed order
                                       (FUSED_DET's ticket and semaphores), deterministic */
} bk_cuda_sdpa_bwd_kernel;
/* Bytes per element of the per-row scratch arrays (D_i and lse): 8 for f64, else 4.
 * The workspace holds two such arrays of batch * q_heads * q_len elements. */
size_t bk_cuda_sdpa_bwd_row_bytes(const bk_sdpa_bwd_desc *d);
/* The two-pass tensor-core kernel runs this descriptor (f16/bf16, head_dim_qk ==
 * head_dim_v in {64, 128}); NULL if so, else the reason. */
const char *bk_cuda_sdpa_bwd_tc_rejects(const bk_sdpa_bwd_desc *d);
/* The fused tensor-core kernel runs this descriptor (f16/bf16, head_dim_qk == head_dim_v
 * in {64, 128, 256}); NULL if so, else the reason. */
const char *bk_cuda_sdpa_bwd_fused_rejects(const bk_sdpa_bwd_desc *d);
/* The Hopper kernel runs this descriptor (f16/bf16, head_dim_qk == head_dim_v in {64, 128},
 * no softcap, ALiBi or window); NULL if so, else the reason. */
const char *bk_cuda_sdpa_bwd_sm90_rejects(const bk_sdpa_bwd_desc *d);
/* Bytes of the deterministic modes' sync words for this descriptor (f16/bf16, head_dim_qk
 * in {64, 128, 256}): an int ticket counter per (b, kv head), then an int semaphore per
 * (b, q head, row tile: 128 rows at D 64, else 64, for the fused and the Hopper kernel
 * alike; the larger count of the two if they ever differ). SIZE_MAX when the problem's row
 * count overflows. */
size_t bk_cuda_sdpa_bwd_det_sync_bytes(const bk_sdpa_bwd_desc *d);
/* Runs the backward with `kernel`. The tensor-core kernels need views whose rows are
 * 16-byte aligned; otherwise the CUDA-core kernel runs. The fused kernel also needs
 * q_len, kv_len < 2^30, a 16-byte aligned dq_acc and a device with enough shared memory
 * per block (sm_80, sm_90); otherwise the two-pass tensor-core kernel runs (D 64/128) or
 * the CUDA-core kernel (D 256).
 * FUSED_DET falls back the same way (to deterministic kernels).
 * d_rows and lse_rows are the workspace's two row arrays (see row_bytes); dq_acc (fused
 * kernels only, else unused) is an f32 [batch, q_heads, q_len, head_dim_qk] accumulator,
 * 16-byte aligned, that run clears (cudaMemsetAsync) itself; dq_sync (FUSED_DET and
 * SM90_DET only, else unused) the det_sync_bytes sync words, 4-byte aligned, also cleared
 * by run. The Hopper kernel (SM90, SM90_DET) takes the fused kernel's workspace (same
 * mode) and runs where bk_sm90_bwd_ready allows (sm_90a code in the binary, 0 < q_len,
 * kv_len < 2^30, rows 16-byte aligned), else the fused kernel's rules apply (SM90_DET:
 * FUSED_DET's, so still deterministic). */
bk_status bk_cuda_sdpa_bwd(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, bk_cuda_sdpa_bwd_kernel kernel,
                           void *d_rows, void *lse_rows, void *dq_acc, void *dq_sync, void *stream);
#ifdef __cplusplus
}
#endif
#endif
