/* CPU reference kernels of the KV-cache ops (src/cpu/kvcache.c). Called by
 * src/ops/kv_append.c and src/ops/paged_kv_append.c after can_implement and the checks
 * of the offsets / index values have passed. */
#ifndef BK_CPU_KVCACHE_H
#define BK_CPU_KVCACHE_H
#include "baracuda/baracuda.h"

bk_status bk_cpu_kv_append(const bk_kv_append_desc *d, const bk_kv_append_args *a);
bk_status bk_cpu_paged_kv_append(const bk_paged_kv_append_desc *d, const bk_paged_kv_append_args *a);

#endif
