/* CPU reference kernels of sdpa_fwd and sdpa_bwd (src/cpu/sdpa.c). Called by
 * src/ops/sdpa_fwd.c and src/ops/sdpa_bwd.c after can_implement (and the workspace
 * check) have passed. */
#ifndef BK_CPU_SDPA_H
#define BK_CPU_SDPA_H
#include "baracuda/baracuda.h"

bk_status bk_cpu_sdpa_fwd(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a);

/* Bytes of workspace bk_cpu_sdpa_bwd carves: the f64 dk and dv accumulators of every
 * (batch, kv head), B*Hkv*Sk*(Dqk + Dv) doubles plus alignment; SIZE_MAX when that
 * does not fit in size_t. */
size_t bk_cpu_sdpa_bwd_workspace_size(const bk_sdpa_bwd_desc *d);
bk_status bk_cpu_sdpa_bwd(const bk_sdpa_bwd_desc *d, bk_workspace workspace, const bk_sdpa_bwd_args *a);

#endif
