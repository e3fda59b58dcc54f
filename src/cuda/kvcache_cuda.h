/* CUDA launchers of kv_append and paged_kv_append (src/cuda/kvcache.cu), called by the
 * ops after can_implement has passed. Asynchronous on `stream`; no allocation, no sync;
 * out-of-range rows are skipped and counted into args->dropped_rows when given. */
#ifndef BK_CUDA_KVCACHE_H
#define BK_CUDA_KVCACHE_H
#include "baracuda/baracuda.h"
#ifdef __cplusplus
extern "C" {
#endif
bk_status bk_cuda_kv_append(const bk_kv_append_desc *d, const bk_kv_append_args *a, void *stream);
bk_status bk_cuda_paged_kv_append(const bk_paged_kv_append_desc *d, const bk_paged_kv_append_args *a, void *stream);
#ifdef __cplusplus
}
#endif
#endif
