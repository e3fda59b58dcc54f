/* alibi.c - ALiBi forward/backward plans: descriptor checks, the kernel tables,
 * can_implement and dispatch. The math lives in the backends (src/cpu/alibi.c). */
#include "core/core.h"
#include "cpu/alibi.h"
#include "cuda/alibi_cuda.h"

#include <math.h>

enum { ALIBI_KERNEL_CPU = 0, ALIBI_KERNEL_CUDA = 1 };

static const bk_kernel_entry alibi_kernels[] = {
#ifdef BK_WITH_CUDA
    /* f32 math for f32/f16/bf16 (f64 for f64); dslope reduced in f64 in a fixed order */
    {ALIBI_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_FLOATS, BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F64, true, true}, NULL},
#endif
    {ALIBI_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

bk_status bk_alibi_slopes(int32_t num_heads, double max_bias, double *slopes)
{
    bk_clear_error();
    BK_TRY(bk_check_extent("alibi_slopes", "num_heads", num_heads, 1));
    BK_TRY(bk_check_ptr("alibi_slopes", "slopes", slopes));
    if (!(max_bias > 0.0) || !isfinite(max_bias))
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "alibi_slopes: max_bias is %g, expected a finite value > 0",
                       max_bias);
    int32_t pow2 = 1;
    while (pow2 * 2 <= num_heads)
        pow2 *= 2;
    for (int32_t h = 0; h < pow2; h++)
        slopes[h] = exp2(-max_bias * (double)(h + 1) / (double)pow2);
    /* the rest: every other slope of 2 * pow2 heads, starting with the first */
    for (int32_t h = pow2; h < num_heads; h++)
        slopes[h] = exp2(-max_bias * (double)(2 * (h - pow2) + 1) / (double)(2 * pow2));
    return BK_STATUS_SUCCESS;
}

static bk_status alibi_check_desc(const char *op, const bk_alibi_fwd_desc *d)
{
    BK_TRY(bk_check_ptr(op, "desc", d));
    BK_TRY(bk_check_extent(op, "desc.batch", d->batch, 0));
    BK_TRY(bk_check_extent(op, "desc.heads", d->heads, 0));
    BK_TRY(bk_check_extent(op, "desc.query_len", d->query_len, 0));
    BK_TRY(bk_check_extent(op, "desc.key_len", d->key_len, 0));
    return bk_check_dtype_in(op, "desc.dtype", d->dtype, BK_DT_FLOATS);
}

static bk_tensor_spec scores_spec(const bk_alibi_fwd_desc *d, const char *name, uint32_t layout)
{
    bk_tensor_spec s = {name, d->dtype, 4, {d->batch, d->heads, d->query_len, d->key_len},
                        "batch,heads,query_len,key_len", layout};
    return s;
}

static bk_tensor_spec slopes_spec(const bk_alibi_fwd_desc *d, const char *name, uint32_t layout)
{
    bk_tensor_spec s = {name, d->dtype, 1, {d->heads}, "heads", layout};
    return s;
}

/* ------------------------------------------------------------ forward -- */

/* select for both directions: the same checks and table; only the op differs. */
static bk_status alibi_select(const char *op, bk_op op_id, const bk_alibi_fwd_desc *desc, bk_target target,
                              bk_preference preference, bk_alibi_fwd_desc *plan_desc, bk_plan_info *plan_info)
{
    bk_clear_error();
    BK_TRY(alibi_check_desc(op, desc));
    BK_TRY(bk_check_ptr(op, "plan", plan_desc));
    bk_plan_info info;
    BK_TRY(bk_select_kernel(op, BK_CATEGORY_ATTENTION, op_id, alibi_kernels,
                            (int32_t)(sizeof alibi_kernels / sizeof alibi_kernels[0]), desc, desc->dtype, target,
                            preference, &info));
    *plan_desc = *desc;
    *plan_info = info;
    return BK_STATUS_SUCCESS;
}

bk_status bk_alibi_fwd_select(const bk_alibi_fwd_desc *desc, bk_target target, bk_preference preference,
                              bk_alibi_fwd_plan *plan)
{
    return alibi_select("alibi_fwd", BK_OP_ALIBI_FWD, desc, target, preference, plan ? &plan->desc : NULL,
                        plan ? &plan->info : NULL);
}

bk_status bk_alibi_fwd_can_implement(const bk_alibi_fwd_plan *plan, const bk_alibi_fwd_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr("alibi_fwd", "plan", plan));
    BK_TRY(bk_check_plan("alibi_fwd", &plan->info, BK_OP_ALIBI_FWD));
    BK_TRY(bk_check_ptr("alibi_fwd", "args", args));
    const bk_alibi_fwd_desc *d = &plan->desc;
    bk_tensor_spec s_scores = scores_spec(d, "scores", BK_LAYOUT_ANY);
    bk_tensor_spec s_slopes = slopes_spec(d, "slopes", BK_LAYOUT_ANY);
    bk_tensor_spec s_y = scores_spec(d, "y", BK_LAYOUT_OUTPUT);
    BK_TRY(bk_check_tensor("alibi_fwd", &args->scores, &s_scores));
    BK_TRY(bk_check_tensor("alibi_fwd", &args->slopes, &s_slopes));
    return bk_check_tensor("alibi_fwd", &args->y, &s_y);
}

size_t bk_alibi_fwd_workspace_size(const bk_alibi_fwd_plan *plan)
{
    (void)plan;
    return 0;
}

bk_status bk_alibi_fwd_run(const bk_alibi_fwd_plan *plan, void *stream, bk_workspace workspace,
                           const bk_alibi_fwd_args *args)
{
    (void)stream; /* the CPU ignores it */
    (void)workspace;
    BK_TRY(bk_alibi_fwd_can_implement(plan, args));
    switch (plan->info.kernel) {
    case ALIBI_KERNEL_CPU: return bk_cpu_alibi_fwd(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case ALIBI_KERNEL_CUDA: return bk_cuda_alibi_fwd(&plan->desc, args, stream);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "alibi_fwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}

/* ----------------------------------------------------------- backward -- */

bk_status bk_alibi_bwd_select(const bk_alibi_bwd_desc *desc, bk_target target, bk_preference preference,
                              bk_alibi_bwd_plan *plan)
{
    return alibi_select("alibi_bwd", BK_OP_ALIBI_BWD, desc, target, preference, plan ? &plan->desc : NULL,
                        plan ? &plan->info : NULL);
}

bk_status bk_alibi_bwd_can_implement(const bk_alibi_bwd_plan *plan, const bk_alibi_bwd_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr("alibi_bwd", "plan", plan));
    BK_TRY(bk_check_plan("alibi_bwd", &plan->info, BK_OP_ALIBI_BWD));
    BK_TRY(bk_check_ptr("alibi_bwd", "args", args));
    const bk_alibi_bwd_desc *d = &plan->desc;
    if (!args->dscores && !args->dslopes)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "alibi_bwd: dscores and dslopes are both NULL, expected at least one output");
    bk_tensor_spec s_dy = scores_spec(d, "dy", BK_LAYOUT_ANY);
    BK_TRY(bk_check_tensor("alibi_bwd", &args->dy, &s_dy));
    if (args->dscores) {
        bk_tensor_spec s = scores_spec(d, "dscores", BK_LAYOUT_OUTPUT);
        BK_TRY(bk_check_tensor("alibi_bwd", args->dscores, &s));
    }
    if (args->dslopes) {
        bk_tensor_spec s = slopes_spec(d, "dslopes", BK_LAYOUT_OUTPUT);
        BK_TRY(bk_check_tensor("alibi_bwd", args->dslopes, &s));
    }
    return BK_STATUS_SUCCESS;
}

/* The CUDA backward keeps heads x parts f64 partial sums of dslope; the CPU needs none. */
static void *alibi_bwd_workspace(const bk_alibi_bwd_plan *plan, bk_carver *c)
{
#ifdef BK_WITH_CUDA
    if (plan->info.kernel == ALIBI_KERNEL_CUDA)
        return bk_carve(c, bk_bytes(bk_mul_sat(plan->desc.heads, bk_cuda_alibi_bwd_parts(&plan->desc)), sizeof(double)));
#else
    (void)plan;
    (void)c;
#endif
    return NULL;
}

size_t bk_alibi_bwd_workspace_size(const bk_alibi_bwd_plan *plan)
{
    if (plan == NULL)
        return 0;
    bk_carver c = bk_carver_start(NULL);
    alibi_bwd_workspace(plan, &c);
    return c.offset;
}

bk_status bk_alibi_bwd_run(const bk_alibi_bwd_plan *plan, void *stream, bk_workspace workspace,
                           const bk_alibi_bwd_args *args)
{
    (void)stream;
    BK_TRY(bk_alibi_bwd_can_implement(plan, args));
    BK_TRY(bk_check_workspace("alibi_bwd", &workspace, bk_alibi_bwd_workspace_size(plan)));
    switch (plan->info.kernel) {
    case ALIBI_KERNEL_CPU: return bk_cpu_alibi_bwd(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case ALIBI_KERNEL_CUDA: {
        bk_carver c = bk_carver_start(workspace.data);
        return bk_cuda_alibi_bwd(&plan->desc, args, alibi_bwd_workspace(plan, &c), stream);
    }
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "alibi_bwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}
