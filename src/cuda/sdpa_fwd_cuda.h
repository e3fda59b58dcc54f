/* CUDA launchers of the flash-attention forward (src/cuda/sdpa_fwd.cu), called by
 * src/ops/sdpa_fwd.c after can_implement has passed. Asynchronous on `stream`; no
 * allocation, no synchronisation, no workspace. (The backward has its own header,
 * src/cuda/sdpa_bwd_cuda.h.) */
#ifndef BK_CUDA_SDPA_FWD_H
#define BK_CUDA_SDPA_FWD_H
#include "baracuda/baracuda.h"
#ifdef __cplusplus
extern "C" {
#endif
/* The generic CUDA-core kernel: every dtype, every option, any head dims <= 256. */
bk_status bk_cuda_sdpa_fwd_generic(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, void *stream);
/* The tensor-core kernel (mma.sync m16n8k16, f32 accumulate): f16/bf16 only, with
 * head_dim_qk == head_dim_v in {64, 128, 256}; every mask/score option. */
bk_status bk_cuda_sdpa_fwd_mma(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, void *stream);
/* The Hopper kernel (sm_90a wgmma, f32 accumulate): the same cases as the mma.sync kernel;
 * views whose rows are not 16-byte aligned, and builds without sm_90a code, run the
 * mma.sync kernel instead. */
bk_status bk_cuda_sdpa_fwd_wgmma(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, void *stream);
#ifdef __cplusplus
}
#endif
#endif
