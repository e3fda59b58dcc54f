/* sdpa_bwd.c - the flash-attention backward plan: descriptor checks (shared with the
 * forward, src/core/sdpa_check.c), the kernel table, can_implement, the workspace size
 * and dispatch.
 *
 * Math:   dq, dk, dv of y = softmax(S) v from q, k, v, y, lse, dy; dk/dv summed over
 *         the query heads of each GQA group; see attention.h.
 * Shapes: as the forward; dq like q, dk like k, dv like v (outputs, no broadcast);
 *         lse f32 [B,Hq,Sq] (required).
 * Work:   in the backends (src/cpu/sdpa.c). The CPU kernel needs an f64 dk/dv
 *         accumulator in the workspace (size from bk_cpu_sdpa_bwd_workspace_size).
 * Not yet: no CUDA kernel; select on a CUDA target answers UNSUPPORTED. No dslopes
 *         (ALiBi slopes are treated as constants). */
#include "core/core.h"
#include "core/sdpa_check.h"
#include "cpu/sdpa.h"

enum { SDPA_BWD_KERNEL_CPU = 0 };

static const bk_kernel_entry sdpa_bwd_kernels[] = {
    {SDPA_BWD_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

bk_status bk_sdpa_bwd_select(const bk_sdpa_bwd_desc *desc, bk_target target, bk_preference preference,
                             bk_sdpa_bwd_plan *plan)
{
    bk_clear_error();
    BK_TRY(bk_sdpa_check_desc("sdpa_bwd", desc));
    BK_TRY(bk_check_ptr("sdpa_bwd", "plan", plan));
    bk_sdpa_bwd_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel("sdpa_bwd", BK_CATEGORY_ATTENTION, BK_OP_SDPA_BWD, sdpa_bwd_kernels,
                            (int32_t)(sizeof sdpa_bwd_kernels / sizeof sdpa_bwd_kernels[0]), desc, desc->dtype,
                            target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_sdpa_bwd_can_implement(const bk_sdpa_bwd_plan *plan, const bk_sdpa_bwd_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr("sdpa_bwd", "plan", plan));
    BK_TRY(bk_check_plan("sdpa_bwd", &plan->info, BK_OP_SDPA_BWD));
    BK_TRY(bk_check_ptr("sdpa_bwd", "args", args));
    const bk_sdpa_bwd_desc *d = &plan->desc;
    const uint32_t out = BK_LAYOUT_OUTPUT | BK_LAYOUT_INNER_UNIT;
    BK_TRY(bk_sdpa_check_inputs("sdpa_bwd", d, &args->q, &args->k, &args->v, args->alibi_slopes));
    bk_tensor_spec s_y = bk_sdpa_y_spec(d, "y", BK_LAYOUT_INNER_UNIT);
    bk_tensor_spec s_dy = bk_sdpa_y_spec(d, "dy", BK_LAYOUT_INNER_UNIT);
    bk_tensor_spec s_lse = bk_sdpa_lse_spec(d, "lse", BK_LAYOUT_ANY);
    bk_tensor_spec s_dq = bk_sdpa_q_spec(d, "dq", out);
    bk_tensor_spec s_dk = bk_sdpa_k_spec(d, "dk", out);
    bk_tensor_spec s_dv = bk_sdpa_v_spec(d, "dv", out);
    BK_TRY(bk_check_tensor("sdpa_bwd", &args->y, &s_y));
    BK_TRY(bk_check_tensor("sdpa_bwd", &args->dy, &s_dy));
    BK_TRY(bk_check_tensor("sdpa_bwd", &args->lse, &s_lse));
    BK_TRY(bk_check_tensor("sdpa_bwd", &args->dq, &s_dq));
    BK_TRY(bk_check_tensor("sdpa_bwd", &args->dk, &s_dk));
    return bk_check_tensor("sdpa_bwd", &args->dv, &s_dv);
}

size_t bk_sdpa_bwd_workspace_size(const bk_sdpa_bwd_plan *plan)
{
    if (plan == NULL)
        return 0;
    switch (plan->info.kernel) {
    case SDPA_BWD_KERNEL_CPU: return bk_cpu_sdpa_bwd_workspace_size(&plan->desc);
    }
    return 0;
}

bk_status bk_sdpa_bwd_run(const bk_sdpa_bwd_plan *plan, void *stream, bk_workspace workspace,
                          const bk_sdpa_bwd_args *args)
{
    (void)stream;
    BK_TRY(bk_sdpa_bwd_can_implement(plan, args));
    BK_TRY(bk_check_workspace("sdpa_bwd", &workspace, bk_sdpa_bwd_workspace_size(plan)));
    switch (plan->info.kernel) {
    case SDPA_BWD_KERNEL_CPU: return bk_cpu_sdpa_bwd(&plan->desc, workspace, args);
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "sdpa_bwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}
