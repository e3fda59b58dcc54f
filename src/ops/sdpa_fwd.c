/* sdpa_fwd.c - the flash-attention forward plan: descriptor checks (shared with the
 * backward, src/core/sdpa_check.c), the kernel table, can_implement and dispatch.
 *
 * Math:   y = softmax(scale * q k^T [softcap] [+ ALiBi], causal/window masked) v,
 *         lse = log-sum-exp of the scores (f32, natural log); see attention.h.
 * Shapes: q [B,Hq,Sq,Dqk], k [B,Hkv,Sk,Dqk], v [B,Hkv,Sk,Dv], y [B,Hq,Sq,Dv],
 *         lse [B,Hq,Sq].
 * Work:   in the backends: src/cpu/sdpa.c (f64 reference) and src/cuda/sdpa_fwd.cu, whose
 *         three kernels are tried in table order on a CUDA target:
 *           0. on compute capability 9.0 only: the Hopper kernel (wgmma, f32 accumulate,
 *              P rounded to the input dtype), same cases as 1 (SKU arch sm90);
 *           1. the tensor-core kernel (mma.sync, f32 accumulate, P rounded to the input
 *              dtype): f16/bf16 with head_dim_qk == head_dim_v in {64, 128, 256}, every
 *              mask and score option; other head dims are refused by its `rejects` hook
 *              and fall to
 *           2. the generic CUDA-core kernel: every dtype and option (f32 math, f64 for f64).
 * Not yet: see the .cu's header (no split-KV, no TMA / warp specialisation). */
#include "core/core.h"
#include "core/sdpa_check.h"
#include "cpu/sdpa.h"
#include "cuda/sdpa_fwd_cuda.h"

enum { SDPA_FWD_KERNEL_CPU = 0, SDPA_FWD_KERNEL_CUDA_MMA = 1, SDPA_FWD_KERNEL_CUDA_GENERIC = 2, SDPA_FWD_KERNEL_CUDA_WGMMA = 3 };

#ifdef BK_WITH_CUDA
/* The tensor-core kernel's tiles are built for these head dims only. */
static const char *mma_rejects(const void *desc)
{
    const bk_sdpa_fwd_desc *d = (const bk_sdpa_fwd_desc *)desc;
    if (d->head_dim_qk != d->head_dim_v)
        return "head_dim_qk != head_dim_v";
    if (d->head_dim_qk != 64 && d->head_dim_qk != 128 && d->head_dim_qk != 256)
        return "head_dim is not in {64, 128, 256}";
    return NULL;
}
#endif

static const bk_kernel_entry sdpa_fwd_kernels[] = {
#ifdef BK_WITH_CUDA
    /* Hopper (compute capability 9.0, sm_90a code): warpgroup MMA, the same math */
    {SDPA_FWD_KERNEL_CUDA_WGMMA, BK_TARGET_CUDA, 90, 90, BK_ARCH_SM90, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, mma_rejects},
    /* f16/bf16 operands on tensor cores, f32 accumulate and softmax, P in the input dtype */
    {SDPA_FWD_KERNEL_CUDA_MMA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, mma_rejects},
    /* CUDA cores: f32 math for f32/f16/bf16, f64 for f64; one thread per output, fixed order */
    {SDPA_FWD_KERNEL_CUDA_GENERIC, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, NULL},
#endif
    {SDPA_FWD_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

bk_status bk_sdpa_fwd_select(const bk_sdpa_fwd_desc *desc, bk_target target, bk_preference preference,
                             bk_sdpa_fwd_plan *plan)
{
    bk_clear_error();
    BK_TRY(bk_sdpa_check_desc("sdpa_fwd", desc));
    BK_TRY(bk_check_ptr("sdpa_fwd", "plan", plan));
    bk_sdpa_fwd_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel("sdpa_fwd", BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, sdpa_fwd_kernels,
                            (int32_t)(sizeof sdpa_fwd_kernels / sizeof sdpa_fwd_kernels[0]), desc, desc->dtype,
                            target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_sdpa_fwd_can_implement(const bk_sdpa_fwd_plan *plan, const bk_sdpa_fwd_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr("sdpa_fwd", "plan", plan));
    BK_TRY(bk_check_plan("sdpa_fwd", &plan->info, BK_OP_SDPA_FWD));
    BK_TRY(bk_check_ptr("sdpa_fwd", "args", args));
    const bk_sdpa_fwd_desc *d = &plan->desc;
    BK_TRY(bk_sdpa_check_inputs("sdpa_fwd", d, &args->q, &args->k, &args->v, args->alibi_slopes));
    bk_tensor_spec s_y = bk_sdpa_y_spec(d, "y", BK_LAYOUT_OUTPUT | BK_LAYOUT_INNER_UNIT);
    BK_TRY(bk_check_tensor("sdpa_fwd", &args->y, &s_y));
    if (args->lse) {
        bk_tensor_spec s_lse = bk_sdpa_lse_spec(d, "lse", BK_LAYOUT_OUTPUT);
        BK_TRY(bk_check_tensor("sdpa_fwd", args->lse, &s_lse));
    }
    return BK_STATUS_SUCCESS;
}

size_t bk_sdpa_fwd_workspace_size(const bk_sdpa_fwd_plan *plan)
{
    (void)plan;
    return 0;
}

bk_status bk_sdpa_fwd_run(const bk_sdpa_fwd_plan *plan, void *stream, bk_workspace workspace,
                          const bk_sdpa_fwd_args *args)
{
    BK_TRY(bk_sdpa_fwd_can_implement(plan, args));
    BK_TRY(bk_check_workspace("sdpa_fwd", &workspace, bk_sdpa_fwd_workspace_size(plan)));
    switch (plan->info.kernel) {
    case SDPA_FWD_KERNEL_CPU: (void)stream; return bk_cpu_sdpa_fwd(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case SDPA_FWD_KERNEL_CUDA_WGMMA: return bk_cuda_sdpa_fwd_wgmma(&plan->desc, args, stream);
    case SDPA_FWD_KERNEL_CUDA_MMA: return bk_cuda_sdpa_fwd_mma(&plan->desc, args, stream);
    case SDPA_FWD_KERNEL_CUDA_GENERIC: return bk_cuda_sdpa_fwd_generic(&plan->desc, args, stream);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "sdpa_fwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}
