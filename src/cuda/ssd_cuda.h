/* CUDA launchers of the SSD chunk-scan ops (src/cuda/ssd.cu), called by src/ops/ssd_fwd.c,
 * src/ops/ssd_bwd.c and src/ops/ssd_step.c after can_implement has passed and the workspace was checked.
 * Asynchronous on `stream`; no allocation, no sync. f32, f16 and bf16 only. */
#ifndef BK_CUDA_SSD_H
#define BK_CUDA_SSD_H
#include "baracuda/baracuda.h"
#ifdef __cplusplus
extern "C" {
#endif
/* Workspace bytes of the CUDA kernels (0 for an empty problem). The launchers carve the
 * workspace with the same layout function. */
size_t bk_cuda_ssd_fwd_workspace(const bk_ssd_desc *d);
size_t bk_cuda_ssd_bwd_workspace(const bk_ssd_desc *d);
/* The forward and backward. tf32 (f32 only; the TF32 plans): the chunk products on tensor
 * cores with TF32 operands instead of f32 on CUDA cores; 16-bit dtypes always run them on
 * tensor cores (tf32 ignored). */
bk_status bk_cuda_ssd_fwd(const bk_ssd_desc *d, const bk_ssd_fwd_args *a, void *workspace, void *stream, bool tf32);
bk_status bk_cuda_ssd_bwd(const bk_ssd_desc *d, const bk_ssd_bwd_args *a, void *workspace, void *stream, bool tf32);
/* ssd_step: one block per (request, head); out-of-pool requests skipped and counted into
 * dropped_requests[0] when given. No workspace. */
bk_status bk_cuda_ssd_step(const bk_ssd_step_desc *d, const bk_ssd_step_args *a, void *stream);
#ifdef __cplusplus
}
#endif
#endif
