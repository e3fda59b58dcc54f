/* CUDA launchers of the paged attention family (src/cuda/paged.cu): paged_decode,
 * paged_prefill and attention_merge, called by the ops after can_implement has passed.
 * Asynchronous on `stream`; no allocation, no host synchronisation, no host copy of
 * index data (graph-capturable). Index data is trusted: a page id, an indptr entry or
 * a last_page_len outside its range never causes an out-of-bounds access (the row or
 * key is skipped), but the output of a request with a broken page table is undefined. */
#ifndef BK_CUDA_PAGED_H
#define BK_CUDA_PAGED_H
#include "baracuda/baracuda.h"
#ifdef __cplusplus
extern "C" {
#endif
/* Split-KV parts per (request, kv head, pair chunk) of a decode by the tensor-core kernel
 * (tensor_cores, 16 pairs a CTA) or the CUDA-core one (4): desc.kv_splits when > 0, else a
 * heuristic from batch * kv_heads * pair chunks and the longest possible kv_len (the
 * pool). A pure function of the descriptor and the kernel, both fixed by the plan (graph
 * replays rely on it). */
int32_t bk_cuda_paged_decode_splits(const bk_paged_decode_desc *d, bool tensor_cores);
/* The decode with `splits` parts on tensor cores (f16/bf16 only) or CUDA cores; with
 * splits > 1, part_o f32 [batch, R, q_heads, splits, head_dim] and part_lse f32 [batch, R,
 * q_heads, splits] (the workspace) take the partials. `sm90`: the plan's target is sm_90 or
 * later, where the merge of the partials is a programmatic dependent launch. */
bk_status bk_cuda_paged_decode(const bk_paged_decode_desc *d, const bk_paged_decode_args *a, bool tensor_cores,
                               int32_t splits, float *part_o, float *part_lse, bool sm90, void *stream);
/* The CUDA-core prefill (f32 math; the reference CUDA path). */
bk_status bk_cuda_paged_prefill(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a, void *stream);
/* The tensor-core prefill (src/cuda/sdpa_fwd.cu: the flash-attention forward's kernels with
 * K/V rows gathered from the pages): `hopper` runs the sm_90a wgmma kernel (when the build
 * has it and the q rows are 16-byte aligned), else the mma.sync kernel. */
bk_status bk_cuda_paged_prefill_tc(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a, bool hopper,
                                   void *stream);
bk_status bk_cuda_attention_merge(const bk_attention_merge_desc *d, const bk_attention_merge_args *a, void *stream);
#ifdef __cplusplus
}
#endif
#endif
