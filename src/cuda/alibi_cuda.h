/* CUDA launchers of the ALiBi ops (src/cuda/alibi.cu), called by src/ops/alibi.c after
 * can_implement has passed. Asynchronous on `stream`; no allocation, no sync. */
#ifndef BK_CUDA_ALIBI_H
#define BK_CUDA_ALIBI_H
#include "baracuda/baracuda.h"
#ifdef __cplusplus
extern "C" {
#endif
bk_status bk_cuda_alibi_fwd(const bk_alibi_fwd_desc *d, const bk_alibi_fwd_args *a, void *stream);
/* Partial sums per head of the backward's first pass (workspace: heads * parts doubles). */
int32_t bk_cuda_alibi_bwd_parts(const bk_alibi_bwd_desc *d);
bk_status bk_cuda_alibi_bwd(const bk_alibi_bwd_desc *d, const bk_alibi_bwd_args *a, void *workspace, void *stream);
#ifdef __cplusplus
}
#endif
#endif
