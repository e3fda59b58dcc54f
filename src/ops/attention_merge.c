/* attention_merge.c - the attention merge plan: descriptor checks, the kernel table,
 * can_implement and dispatch. The math lives in the backends
 * (src/cpu/paged_attention.c, beside the split-KV decode it serves; src/cuda/paged.cu,
 * whose merge kernel also finishes the CUDA split-KV decode). Workspace: 0 on every
 * target. */
#include "core/core.h"
#include "cpu/paged_attention.h"
#include "cuda/paged_cuda.h"

static const char *const OP = "attention_merge";

enum { ATTENTION_MERGE_KERNEL_CPU = 0, ATTENTION_MERGE_KERNEL_CUDA = 1 };

static const bk_kernel_entry attention_merge_kernels[] = {
#ifdef BK_WITH_CUDA
    /* f32 math (f64 for f64), one thread per output element, parts in order */
    {ATTENTION_MERGE_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_FLOATS, BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, NULL},
#endif
    {ATTENTION_MERGE_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

static bk_status check_desc(const bk_attention_merge_desc *d)
{
    BK_TRY(bk_check_ptr(OP, "desc", d));
    BK_TRY(bk_check_extent(OP, "desc.rows", d->rows, 0));
    BK_TRY(bk_check_extent(OP, "desc.parts", d->parts, 1));
    BK_TRY(bk_check_extent(OP, "desc.heads", d->heads, 1));
    BK_TRY(bk_check_extent(OP, "desc.head_dim", d->head_dim, 1));
    return bk_check_dtype_in(OP, "desc.dtype", d->dtype, BK_DT_FLOATS);
}

bk_status bk_attention_merge_select(const bk_attention_merge_desc *desc, bk_target target,
                                    bk_preference preference, bk_attention_merge_plan *plan)
{
    bk_clear_error();
    BK_TRY(check_desc(desc));
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    bk_attention_merge_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel(OP, BK_CATEGORY_ATTENTION, BK_OP_ATTENTION_MERGE, attention_merge_kernels,
                            (int32_t)(sizeof attention_merge_kernels / sizeof attention_merge_kernels[0]), desc,
                            desc->dtype, target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_attention_merge_can_implement(const bk_attention_merge_plan *plan,
                                           const bk_attention_merge_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    BK_TRY(bk_check_plan(OP, &plan->info, BK_OP_ATTENTION_MERGE));
    BK_TRY(bk_check_ptr(OP, "args", args));
    const bk_attention_merge_desc *d = &plan->desc;
    bk_tensor_spec s_op = {"o_parts", d->dtype, 4, {d->rows, d->parts, d->heads, d->head_dim},
                           "rows,parts,heads,head_dim", BK_LAYOUT_INNER_UNIT};
    bk_tensor_spec s_lp = {"lse_parts", BK_DTYPE_F32, 3, {d->rows, d->parts, d->heads}, "rows,parts,heads",
                           BK_LAYOUT_ANY};
    bk_tensor_spec s_o = {"o", d->dtype, 3, {d->rows, d->heads, d->head_dim}, "rows,heads,head_dim",
                          BK_LAYOUT_INNER_UNIT | BK_LAYOUT_OUTPUT};
    bk_tensor_spec s_lse = {"lse", BK_DTYPE_F32, 2, {d->rows, d->heads}, "rows,heads", BK_LAYOUT_OUTPUT};
    BK_TRY(bk_check_tensor(OP, &args->o_parts, &s_op));
    BK_TRY(bk_check_tensor(OP, &args->lse_parts, &s_lp));
    BK_TRY(bk_check_tensor(OP, &args->o, &s_o));
    if (args->lse)
        BK_TRY(bk_check_tensor(OP, args->lse, &s_lse));
    return BK_STATUS_SUCCESS;
}

size_t bk_attention_merge_workspace_size(const bk_attention_merge_plan *plan)
{
    (void)plan;
    return 0;
}

bk_status bk_attention_merge_run(const bk_attention_merge_plan *plan, void *stream, bk_workspace workspace,
                                 const bk_attention_merge_args *args)
{
    (void)stream; /* used by the CUDA kernel only */
    BK_TRY(bk_attention_merge_can_implement(plan, args));
    BK_TRY(bk_check_workspace(OP, &workspace, bk_attention_merge_workspace_size(plan)));
    switch (plan->info.kernel) {
    case ATTENTION_MERGE_KERNEL_CPU: return bk_cpu_attention_merge(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case ATTENTION_MERGE_KERNEL_CUDA: return bk_cuda_attention_merge(&plan->desc, args, stream);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan names kernel %d, which does not exist", OP,
                   (int)plan->info.kernel);
}
