/* CUDA launchers of sdpa_bwd (src/cuda/sdpa_bwd.cu), called by src/ops/sdpa_bwd.c after
 * can_implement and the workspace check have passed. Asynchronous on `stream`; no
 * allocation, no synchronisation. */
#ifndef BK_CUDA_SDPA_BWD_H
#define BK_CUDA_SDPA_BWD_H
#include "baracuda/baracuda.h"
#ifdef __cplusplus
extern "C" {
#endif
/* Bytes per element of the per-row scratch arrays (D_i and lse): 8 for f64, else 4.
 * The workspace holds two such arrays of batch * q_heads * q_len elements. */
size_t bk_cuda_sdpa_bwd_row_bytes(const bk_sdpa_bwd_desc *d);
/* The tensor-core kernel runs this descriptor (f16/bf16, head_dim_qk == head_dim_v in
 * {64, 128}); NULL if so, else the reason. */
const char *bk_cuda_sdpa_bwd_tc_rejects(const bk_sdpa_bwd_desc *d);
/* Runs the backward. `tensor_cores` picks the mma.sync kernels (f16/bf16, D 64/128;
 * views whose rows are not 16-byte aligned fall back to the CUDA-core kernels).
 * d_rows and lse_rows are the workspace's two row arrays (see row_bytes). */
bk_status bk_cuda_sdpa_bwd(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, bool tensor_cores, void *d_rows,
                           void *lse_rows, void *stream);
#ifdef __cplusplus
}
#endif
#endif
