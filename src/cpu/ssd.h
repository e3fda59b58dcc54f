/* CPU reference kernels of the Mamba-2 SSD ops (src/cpu/ssd.c). Called by
 * src/ops/ssd_fwd.c, src/ops/ssd_bwd.c and src/ops/ssd_step.c after can_implement, the
 * workspace check and the host checks of the index data (cu_seqlens, state_indices)
 * have passed. */
#ifndef BK_CPU_SSD_H
#define BK_CPU_SSD_H
#include "baracuda/baracuda.h"

/* Work slots: (batch, head) slices are dealt to min(batch * heads, BK_CPU_SSD_SLOTS)
 * slots, each with its own piece of the workspace. Slice i goes to slot i % slots, so
 * the workspace and the result never depend on the thread count. */
#define BK_CPU_SSD_SLOTS 64

/* Problems whose state-element steps (batch * heads * seq_len * (head_dim + 1) *
 * (state_dim + 1) for the scans, requests * heads * head_dim * state_dim for the step)
 * are fewer than this run on the calling thread: no parallel region. */
#define BK_CPU_SSD_PARALLEL_WORK 8192

/* Workspace bytes of the CPU kernels (the formulas are in include/baracuda/ssd.h). */
size_t bk_cpu_ssd_fwd_workspace(const bk_ssd_desc *d);
size_t bk_cpu_ssd_bwd_workspace(const bk_ssd_desc *d);

/* `workspace` holds at least the bytes above (NULL when they are 0). */
bk_status bk_cpu_ssd_fwd(const bk_ssd_desc *d, const bk_ssd_fwd_args *a, void *workspace);
bk_status bk_cpu_ssd_bwd(const bk_ssd_desc *d, const bk_ssd_bwd_args *a, void *workspace);
/* ssd_step: no workspace; every state index is already known to be in the pool. */
bk_status bk_cpu_ssd_step(const bk_ssd_step_desc *d, const bk_ssd_step_args *a);

#endif
