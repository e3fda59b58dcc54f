/* ssd_bwd.c - Mamba-2 SSD chunk-scan backward plan: select, can_implement, workspace and
 * dispatch. The descriptor and input checks are shared with ssd_fwd (core/ssd_check.c);
 * the math lives in the backends (src/cpu/ssd.c, src/cuda/ssd.cu). Every kernel writes all
 * its gradients (none is accumulated) and reduces dA (and dskip, ddt_bias, the group sums
 * of dB and dC) without atomics. Both kernels run every option; varlen states have no
 * backward on any target. */
#include "core/core.h"
#include "core/ssd_check.h"
#include "cpu/ssd.h"
#include "cuda/ssd_cuda.h"

enum { SSD_BWD_KERNEL_CPU = 0, SSD_BWD_KERNEL_CUDA = 1, SSD_BWD_KERNEL_CUDA_TC = 2, SSD_BWD_KERNEL_CUDA_TF32 = 3 };

static const bk_kernel_entry ssd_bwd_kernels[] = {
#ifdef BK_WITH_CUDA
    /* chunked SSD, f16/bf16: the chunk products on tensor cores (16-bit operands, f32
     * accumulate; states and their gradients kept in f32 in the workspace), every option,
     * no atomics */
    {SSD_BWD_KERNEL_CUDA_TC, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, bk_ssd_rejects_dims},
    /* chunked SSD, f32 in TF32 (opt-in: BK_PREFER_ALLOW_TF32): the tensor-core kernels of
     * f16/bf16 with TF32 operands (f32 rounded to 10-bit mantissas), f32 accumulate; sums,
     * decays and states in f32 as the exact kernel, no atomics */
    {SSD_BWD_KERNEL_CUDA_TF32, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT(BK_DTYPE_F32), BK_BACKEND_BESPOKE,
     {BK_MATH_TF32, BK_DTYPE_F32, true, true}, bk_ssd_rejects_dims},
    /* chunked SSD, f32: f32 math on CUDA cores, every option, no atomics */
    {SSD_BWD_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT(BK_DTYPE_F32), BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, bk_ssd_rejects_dims},
#endif
    {SSD_BWD_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, bk_ssd_rejects_dims},
};

bk_status bk_ssd_bwd_select(const bk_ssd_desc *desc, bk_target target, bk_preference preference,
                            bk_ssd_bwd_plan *plan)
{
    bk_clear_error();
    BK_TRY(bk_ssd_check_desc("ssd_bwd", desc));
    BK_TRY(bk_check_ptr("ssd_bwd", "plan", plan));
    if (desc->n_varlen_seqs > 0)
        return bk_fail(BK_STATUS_UNSUPPORTED,
                       "ssd_bwd: desc.n_varlen_seqs is %d, expected 0: no gradient flows through varlen states",
                       (int)desc->n_varlen_seqs);
    bk_ssd_bwd_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel("ssd_bwd", BK_CATEGORY_SSM, BK_OP_SSD_BWD, ssd_bwd_kernels,
                            (int32_t)(sizeof ssd_bwd_kernels / sizeof ssd_bwd_kernels[0]), desc, desc->dtype,
                            target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_ssd_bwd_can_implement(const bk_ssd_bwd_plan *plan, const bk_ssd_bwd_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr("ssd_bwd", "plan", plan));
    BK_TRY(bk_check_plan("ssd_bwd", &plan->info, BK_OP_SSD_BWD));
    BK_TRY(bk_check_ptr("ssd_bwd", "args", args));
    const bk_ssd_desc *d = &plan->desc;
    BK_TRY(bk_ssd_check_inputs("ssd_bwd", d, &args->x, &args->dt, &args->a, &args->b, &args->c, args->skip, args->z,
                               args->dt_bias, args->initial_states, args->seq_idx));
    const bk_ssd_opts o = bk_ssd_desc_opts(d);
    bk_tensor_spec s_dy = bk_ssd_spec(d, BK_SSD_ROLE_X, "dy", false);
    bk_tensor_spec s_dfin = bk_ssd_spec(d, BK_SSD_ROLE_STATE, "dfinal_states", false);
    bk_tensor_spec s_dx = bk_ssd_spec(d, BK_SSD_ROLE_X, "dx", true);
    bk_tensor_spec s_ddt = bk_ssd_spec(d, BK_SSD_ROLE_DT, "ddt", true);
    bk_tensor_spec s_da = bk_ssd_spec(d, BK_SSD_ROLE_A, "da", true);
    bk_tensor_spec s_db = bk_ssd_spec(d, BK_SSD_ROLE_BC, "db", true);
    bk_tensor_spec s_dc = bk_ssd_spec(d, BK_SSD_ROLE_BC, "dc", true);
    bk_tensor_spec s_dskip = bk_ssd_skip_spec(&o, d->dtype, "dskip", true);
    bk_tensor_spec s_dz = bk_ssd_spec(d, BK_SSD_ROLE_X, "dz", true);
    bk_tensor_spec s_dbias = bk_ssd_spec(d, BK_SSD_ROLE_A, "ddt_bias", true);
    bk_tensor_spec s_dinit = bk_ssd_spec(d, BK_SSD_ROLE_STATE, "dinitial_states", true);
    BK_TRY(bk_check_tensor("ssd_bwd", &args->dy, &s_dy));
    BK_TRY(bk_check_optional_tensor("ssd_bwd", args->dfinal_states, d->has_final_states, "desc.has_final_states",
                                    &s_dfin));
    BK_TRY(bk_check_tensor("ssd_bwd", &args->dx, &s_dx));
    BK_TRY(bk_check_tensor("ssd_bwd", &args->ddt, &s_ddt));
    BK_TRY(bk_check_tensor("ssd_bwd", &args->da, &s_da));
    BK_TRY(bk_check_tensor("ssd_bwd", &args->db, &s_db));
    BK_TRY(bk_check_tensor("ssd_bwd", &args->dc, &s_dc));
    BK_TRY(bk_check_optional_tensor("ssd_bwd", args->dskip, d->skip != BK_SSD_SKIP_NONE, "desc.skip", &s_dskip));
    BK_TRY(bk_check_optional_tensor("ssd_bwd", args->dz, d->has_z, "desc.has_z", &s_dz));
    BK_TRY(bk_check_optional_tensor("ssd_bwd", args->ddt_bias, d->has_dt_bias, "desc.has_dt_bias", &s_dbias));
    return bk_check_optional_tensor("ssd_bwd", args->dinitial_states, d->has_initial_states,
                                    "desc.has_initial_states", &s_dinit);
}

size_t bk_ssd_bwd_workspace_size(const bk_ssd_bwd_plan *plan)
{
    if (plan == NULL || plan->info.sku.op != BK_OP_SSD_BWD)
        return 0;
    switch (plan->info.kernel) {
    case SSD_BWD_KERNEL_CPU: return bk_cpu_ssd_bwd_workspace(&plan->desc);
#ifdef BK_WITH_CUDA
    case SSD_BWD_KERNEL_CUDA:
    case SSD_BWD_KERNEL_CUDA_TC:
    case SSD_BWD_KERNEL_CUDA_TF32: return bk_cuda_ssd_bwd_workspace(&plan->desc);
#endif
    }
    return 0;
}

bk_status bk_ssd_bwd_run(const bk_ssd_bwd_plan *plan, void *stream, bk_workspace workspace,
                         const bk_ssd_bwd_args *args)
{
    (void)stream; /* used by the CUDA kernels only */
    BK_TRY(bk_ssd_bwd_can_implement(plan, args));
    BK_TRY(bk_check_workspace("ssd_bwd", &workspace, bk_ssd_bwd_workspace_size(plan)));
    switch (plan->info.kernel) {
    case SSD_BWD_KERNEL_CPU: return bk_cpu_ssd_bwd(&plan->desc, args, workspace.data);
#ifdef BK_WITH_CUDA
    case SSD_BWD_KERNEL_CUDA:
    case SSD_BWD_KERNEL_CUDA_TC:
    case SSD_BWD_KERNEL_CUDA_TF32:
        return bk_cuda_ssd_bwd(&plan->desc, args, workspace.data, stream,
                              plan->info.kernel == SSD_BWD_KERNEL_CUDA_TF32);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "ssd_bwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}
