/* ssd_fwd.c - Mamba-2 SSD chunk-scan forward plan: select, can_implement, workspace and
 * dispatch. The descriptor and input checks are shared with ssd_bwd (core/ssd_check.c);
 * the math lives in the backends (src/cpu/ssd.c, src/cuda/ssd.cu). Every kernel runs every
 * option; the CPU kernel reads cu_seqlens on the host first (the CUDA one cannot). */
#include "core/core.h"
#include "core/ssd_check.h"
#include "cpu/ssd.h"
#include "cuda/ssd_cuda.h"

enum { SSD_FWD_KERNEL_CPU = 0, SSD_FWD_KERNEL_CUDA = 1, SSD_FWD_KERNEL_CUDA_TC = 2, SSD_FWD_KERNEL_CUDA_TF32 = 3 };

static const bk_kernel_entry ssd_fwd_kernels[] = {
#ifdef BK_WITH_CUDA
    /* chunked SSD, f16/bf16: the chunk products on tensor cores (16-bit operands, f32
     * accumulate; states kept in f32 in the workspace), no atomics */
    {SSD_FWD_KERNEL_CUDA_TC, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, bk_ssd_rejects_dims},
    /* chunked SSD, f32 in TF32 (opt-in: BK_PREFER_ALLOW_TF32): the tensor-core kernels of
     * f16/bf16 with TF32 operands (f32 rounded to 10-bit mantissas), f32 accumulate; sums,
     * decays and states in f32 as the exact kernel, no atomics */
    {SSD_FWD_KERNEL_CUDA_TF32, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT(BK_DTYPE_F32), BK_BACKEND_BESPOKE,
     {BK_MATH_TF32, BK_DTYPE_F32, true, true}, bk_ssd_rejects_dims},
    /* chunked SSD, f32: f32 math on CUDA cores */
    {SSD_FWD_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT(BK_DTYPE_F32), BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, bk_ssd_rejects_dims},
#endif
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
    BK_TRY(bk_ssd_check_inputs("ssd_fwd", d, &args->x, &args->dt, &args->a, &args->b, &args->c, args->skip, args->z,
                               args->dt_bias, args->initial_states, args->seq_idx));
    const bool varlen = d->n_varlen_seqs > 0;
    bk_tensor_spec s_cu = {"cu_seqlens", BK_DTYPE_I32, 1, {(int64_t)d->n_varlen_seqs + 1}, "n_varlen_seqs+1",
                           BK_LAYOUT_CONTIGUOUS};
    bk_tensor_spec s_y = bk_ssd_spec(d, BK_SSD_ROLE_X, "y", true);
    bk_tensor_spec s_fin = bk_ssd_spec(d, BK_SSD_ROLE_STATE, "final_states", true);
    bk_tensor_spec s_var = bk_ssd_spec(d, BK_SSD_ROLE_VARLEN, "varlen_states", true);
    BK_TRY(bk_check_optional_tensor("ssd_fwd", args->cu_seqlens, varlen, "desc.n_varlen_seqs", &s_cu));
    BK_TRY(bk_check_tensor("ssd_fwd", &args->y, &s_y));
    BK_TRY(bk_check_optional_tensor("ssd_fwd", args->final_states, d->has_final_states, "desc.has_final_states",
                                    &s_fin));
    return bk_check_optional_tensor("ssd_fwd", args->varlen_states, varlen, "desc.n_varlen_seqs", &s_var);
}

/* CPU target: cu_seqlens (host memory) must cut [0, seq_len) into sequences. */
static bk_status ssd_fwd_check_cu_seqlens(const bk_ssd_desc *d, const bk_ssd_fwd_args *a)
{
    if (d->n_varlen_seqs == 0)
        return BK_STATUS_SUCCESS;
    const int32_t *cu = (const int32_t *)a->cu_seqlens->data;
    if (cu[0] != 0)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "ssd_fwd: cu_seqlens[0] is %d, expected 0; nothing was written",
                       (int)cu[0]);
    for (int32_t i = 0; i < d->n_varlen_seqs; i++)
        if (cu[i + 1] < cu[i])
            return bk_fail(BK_STATUS_INVALID_PROBLEM,
                           "ssd_fwd: cu_seqlens[%d] is %d, below cu_seqlens[%d] = %d; nothing was written", (int)i + 1,
                           (int)cu[i + 1], (int)i, (int)cu[i]);
    if (cu[d->n_varlen_seqs] != d->seq_len)
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "ssd_fwd: cu_seqlens[%d] is %d, expected seq_len = %d; nothing was written",
                       (int)d->n_varlen_seqs, (int)cu[d->n_varlen_seqs], (int)d->seq_len);
    return BK_STATUS_SUCCESS;
}

size_t bk_ssd_fwd_workspace_size(const bk_ssd_fwd_plan *plan)
{
    if (plan == NULL || plan->info.sku.op != BK_OP_SSD_FWD)
        return 0;
    switch (plan->info.kernel) {
    case SSD_FWD_KERNEL_CPU: return bk_cpu_ssd_fwd_workspace(&plan->desc);
#ifdef BK_WITH_CUDA
    case SSD_FWD_KERNEL_CUDA:
    case SSD_FWD_KERNEL_CUDA_TC:
    case SSD_FWD_KERNEL_CUDA_TF32: return bk_cuda_ssd_fwd_workspace(&plan->desc);
#endif
    }
    return 0;
}

bk_status bk_ssd_fwd_run(const bk_ssd_fwd_plan *plan, void *stream, bk_workspace workspace,
                         const bk_ssd_fwd_args *args)
{
    (void)stream; /* used by the CUDA kernels only */
    BK_TRY(bk_ssd_fwd_can_implement(plan, args));
    BK_TRY(bk_check_workspace("ssd_fwd", &workspace, bk_ssd_fwd_workspace_size(plan)));
    switch (plan->info.kernel) {
    case SSD_FWD_KERNEL_CPU:
        BK_TRY(ssd_fwd_check_cu_seqlens(&plan->desc, args));
        return bk_cpu_ssd_fwd(&plan->desc, args, workspace.data);
#ifdef BK_WITH_CUDA
    case SSD_FWD_KERNEL_CUDA:
    case SSD_FWD_KERNEL_CUDA_TC:
    case SSD_FWD_KERNEL_CUDA_TF32:
        return bk_cuda_ssd_fwd(&plan->desc, args, workspace.data, stream,
                              plan->info.kernel == SSD_FWD_KERNEL_CUDA_TF32);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "ssd_fwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}
