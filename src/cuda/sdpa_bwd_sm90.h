/* sdpa_bwd_sm90.h - internal (C++): the Hopper backward kernel of src/cuda/sdpa_bwd_sm90.cu
 * as src/cuda/sdpa_bwd.cu's dispatch calls it. sdpa_bwd.cu runs the rows pre-pass (D_i,
 * lse) before and the dq conversion (scale, f32 -> T) after bk_sm90_bwd_launch. */
#ifndef BK_CUDA_SDPA_BWD_SM90_H
#define BK_CUDA_SDPA_BWD_SM90_H
#include "baracuda/baracuda.h"

#include <cuda_runtime.h>

/* Whether the Hopper kernel runs this problem on the current device: the binary holds its
 * sm_90a code, bk_cuda_sdpa_bwd_sm90_rejects(d) accepts d, 0 < q_len, kv_len < 2^30,
 * q_len * group < 2^30, dq_acc 16-byte aligned, the shared memory fits. The caller checks
 * the views' 16-byte row alignment (TMA). */
bool bk_sm90_bwd_ready(const bk_sdpa_bwd_desc *d, const void *dq_acc);
/* Clears dq_acc (f32 [B, Hq, Sq, D]) and launches the kernel on `s`: dk and dv written,
 * dq_acc += the unscaled dq. lse_rows / d_rows: the rows pre-pass's f32 [B, Hq, Sq]
 * arrays. Asynchronous; DEVICE_ERROR on a failed encode or launch. */
bk_status bk_sm90_bwd_launch(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, const float *lse_rows,
                             const float *d_rows, float *dq_acc, cudaStream_t s);

#endif
