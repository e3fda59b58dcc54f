/* ssd_fwd.c - Mamba-2 SSD chunk-scan forward plan: select, can_implement, workspace and
 * dispatch. The descriptor and input checks are shared with ssd_bwd (core/ssd_check.c);
 * the math lives in the backends (src/cpu/ssd.c). */
#include "core/core.h"
#include "core/ssd_check.h"
#include "cpu/ssd.h"

enum { SSD_FWD_KERNEL_CPU = 0 };

static const bk_kernel_entry ssd_fwd_kernels[] = {
    {SSD_FWD_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, bk_ssd_rejects_dims},
};

bk_status bk_ssd_fwd_select(const bk_ssd_desc *desc, bk_target target, bk_preference preference,
                            bk_ssd_fwd_plan *plan)
{
    bk_clear_error();
    BK_TRY(bk_ssd_check_desc("ssd_fwd", desc));
    BK_TRY(bk_check_ptr("ssd_fwd", "plan", plan));
    bk_ssd_fwd_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel("ssd_fwd", BK_CATEGORY_SSM, BK_OP_SSD_FWD, ssd_fwd_kernels,
                            (int32_t)(sizeof ssd_fwd_kernels / sizeof ssd_fwd_kernels[0]), desc, desc->dtype,
                            target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_ssd_fwd_can_implement(const bk_ssd_fwd_plan *plan, const bk_ssd_fwd_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr("ssd_fwd", "plan", plan));
    BK_TRY(bk_check_plan("ssd_fwd", &plan->info, BK_OP_SSD_FWD));
    BK_TRY(bk_check_ptr("ssd_fwd", "args", args));
    const bk_ssd_desc *d = &plan->desc;
    BK_TRY(bk_ssd_check_inputs("ssd_fwd", d, &args->x, &args->dt, &args->a, &args->b, &args->c));
    bk_tensor_spec s_y = bk_ssd_spec(d, BK_SSD_ROLE_X, "y", true);
    return bk_check_tensor("ssd_fwd", &args->y, &s_y);
}

size_t bk_ssd_fwd_workspace_size(const bk_ssd_fwd_plan *plan)
{
    if (plan == NULL || plan->info.sku.op != BK_OP_SSD_FWD)
        return 0;
    switch (plan->info.kernel) {
    case SSD_FWD_KERNEL_CPU: return bk_cpu_ssd_fwd_workspace(&plan->desc);
    }
    return 0;
}

bk_status bk_ssd_fwd_run(const bk_ssd_fwd_plan *plan, void *stream, bk_workspace workspace,
                         const bk_ssd_fwd_args *args)
{
    (void)stream;
    BK_TRY(bk_ssd_fwd_can_implement(plan, args));
    BK_TRY(bk_check_workspace("ssd_fwd", &workspace, bk_ssd_fwd_workspace_size(plan)));
    switch (plan->info.kernel) {
    case SSD_FWD_KERNEL_CPU: return bk_cpu_ssd_fwd(&plan->desc, args, workspace.data);
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "ssd_fwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}
