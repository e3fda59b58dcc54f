/* CPU reference kernels of the paged attention family (src/cpu/paged_attention.c):
 * paged_decode, paged_prefill and attention_merge. Called by src/ops/paged_*.c and
 * src/ops/attention_merge.c after can_implement (index values included) has passed. */
#ifndef BK_CPU_PAGED_ATTENTION_H
#define BK_CPU_PAGED_ATTENTION_H
#include "baracuda/baracuda.h"

/* The one routine decode and prefill share: query row q[head_dim] (f64) of request b
 * attends over keys [0, key_hi] of b's pages, kv head `kv_head`; writes out[head_dim]
 * and *lse (-inf and zeros when key_hi < 0). Index data must have been validated. */
void bk_cpu_paged_attend_row(const bk_paged_kv_desc *d, const bk_paged_kv *kv, int32_t b, int64_t kv_head,
                             const double *q, int64_t key_hi, double scale, double *out, double *lse);

bk_status bk_cpu_paged_decode(const bk_paged_decode_desc *d, const bk_paged_decode_args *a);
bk_status bk_cpu_paged_prefill(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a);
bk_status bk_cpu_attention_merge(const bk_attention_merge_desc *d, const bk_attention_merge_args *a);

#endif
