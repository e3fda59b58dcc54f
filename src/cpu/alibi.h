/* CPU reference kernels of the ALiBi ops (src/cpu/alibi.c). Called by src/ops/alibi.c
 * after can_implement has passed. */
#ifndef BK_CPU_ALIBI_H
#define BK_CPU_ALIBI_H
#include "baracuda/baracuda.h"

bk_status bk_cpu_alibi_fwd(const bk_alibi_fwd_desc *d, const bk_alibi_fwd_args *a);
bk_status bk_cpu_alibi_bwd(const bk_alibi_bwd_desc *d, const bk_alibi_bwd_args *a);

#endif
