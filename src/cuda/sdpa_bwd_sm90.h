/* sdpa_bwd_sm90.h - internal (C++): the Hopper backward kernel of src/cuda/sdpa_bwd_sm90.cu
 * as src/cuda/sdpa_bwd.cu's dispatch calls it. sdpa_bwd.cu runs the rows pre-pass (D_i,
 * lse) before and the dq conversion (scale, f32 -> T) after bk_sm90_bwd_launch. */
#ifndef BK_CUDA_SDPA_BWD_SM90_H
#define BK_CUDA_SDPA_BWD_SM90_H
#include "baracuda/baracuda.h"

#include <cuda_runtime.h>

/* Whether the Hopper kernel runs this problem on the current device, in its atomic mode
 * (dq_sync NULL) or its deterministic mode (dq_sync the sync words, 4-byte aligned): the
 * binary holds that mode's sm_90a code, bk_cuda_sdpa_bwd_sm90_rejects(d) accepts d,
 * 0 < q_len, kv_len < 2^30, q_len * group < 2^30, dq_acc 16-byte aligned, the shared
 * memory fits. The caller checks the views' 16-byte row alignment (TMA). */
bool bk_sm90_bwd_ready(const bk_sdpa_bwd_desc *d, const void *dq_acc, const void *dq_sync);
/* The deterministic mode's semaphore count, batch * q_heads * ceil(q_len / BM) (BM: the
 * kernel's row tile, 128 at D 64, 64 at D 128 and 256); its sync words are a ticket per (b, kv
 * head), [B, Hkv] ints, then these semaphores [B, Hq, ceil(q_len / BM)] ints. d as
 * bk_cuda_sdpa_bwd_sm90_rejects accepts; no overflow check (the caller bounds the counts). */
long long bk_sm90_bwd_det_sems(const bk_sdpa_bwd_desc *d);
/* Clears dq_acc (f32 [B, Hq, Sq, D]) (and dq_sync when given) and launches the kernel on
 * `s`: dk and dv written, dq_acc += the unscaled dq; with dq_sync (non-NULL) in the
 * deterministic mode (dq added in a fixed order). lse_rows / d_rows: the rows pre-pass's
 * f32 [B, Hq, Sq] arrays. Asynchronous; DEVICE_ERROR on a failed encode or launch. */
bk_status bk_sm90_bwd_launch(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, const float *lse_rows,
                             const float *d_rows, float *dq_acc, int *dq_sync, cudaStream_t s);

#endif
