/* sdpa_bwd.c - the flash-attention backward plan: descriptor checks (shared with the
 * forward, src/core/sdpa_check.c), the kernel table, can_implement, the workspace size
 * and dispatch.
 *
 * Math:   dq, dk, dv of y = softmax(S) v from q, k, v, y, lse, dy; dk/dv summed over
 *         the query heads of each GQA group; see attention.h.
 * Shapes: as the forward; dq like q, dk like k, dv like v (outputs, no broadcast);
 *         lse f32 [B,Hq,Sq] (required).
 * Work:   in the backends. The CPU kernel (src/cpu/sdpa.c) needs an f64 dk/dv
 *         accumulator in the workspace (bk_cpu_sdpa_bwd_workspace_size). The CUDA
 *         kernels (src/cuda/sdpa_bwd.cu) need two row arrays [B,Hq,Sq] of the compute
 *         type (D_i = <dy_i, y_i> and lse), for the fused and Hopper kernels an f32 dq
 *         accumulator [B,Hq,Sq,Dqk] and for their deterministic modes the sync words (a
 *         ticket counter and a semaphore per row tile), carved by sdpa_bwd_cuda_layout.
 *         Table, first match wins: on compute capability 9.0 the Hopper kernel
 *         (src/cuda/sdpa_bwd_sm90.cu: wgmma + TMA; f16/bf16, Dqk == Dv in {64, 128}, no
 *         softcap/ALiBi/window; SKU arch sm90, backend "bespoke"; dq by f32 atomics, NOT
 *         deterministic; it runs the fused kernel where its run-time conditions fail),
 *         the Hopper kernel's deterministic mode (same problems and SKU; the fused
 *         deterministic mode's ordered dq adds: what BK_PREFER_DETERMINISTIC selects there;
 *         it runs the fused deterministic mode where its run-time conditions fail), CUDA
 *         fused tensor cores (f16/bf16, Dqk == Dv in {64, 128, 256}; SKU backend
 *         "bespoke"; dq by f32 atomics, so NOT deterministic), the same fused pass in its
 *         deterministic mode (same problems and SKU; dq tiles added in a fixed order:
 *         what BK_PREFER_DETERMINISTIC selects there), CUDA two-pass tensor cores (Dqk ==
 *         Dv in {64, 128}, same SKU, deterministic; run by the fused plans when the fused
 *         kernel cannot run, see attention.h), CUDA cores (every dtype and option; SKU
 *         backend "reference", f64 math for f64 and f32 math otherwise; deterministic),
 *         CPU (deterministic).
 * Not yet: no dslopes (ALiBi slopes are treated as constants). */
#include "core/core.h"
#include "core/sdpa_check.h"
#include "cpu/sdpa.h"
#include "cuda/sdpa_bwd_cuda.h"

enum {
    SDPA_BWD_KERNEL_CPU = 0,
    SDPA_BWD_KERNEL_CUDA_TC = 1,
    SDPA_BWD_KERNEL_CUDA = 2,
    SDPA_BWD_KERNEL_CUDA_FUSED = 3,
    SDPA_BWD_KERNEL_CUDA_FUSED_DET = 4,
    SDPA_BWD_KERNEL_CUDA_SM90 = 5,
    SDPA_BWD_KERNEL_CUDA_SM90_DET = 6
};

#ifdef BK_WITH_CUDA
static const char *tc_rejects(const void *desc)
{
    return bk_cuda_sdpa_bwd_tc_rejects((const bk_sdpa_bwd_desc *)desc);
}
static const char *fused_rejects(const void *desc)
{
    return bk_cuda_sdpa_bwd_fused_rejects((const bk_sdpa_bwd_desc *)desc);
}
static const char *sm90_rejects(const void *desc)
{
    return bk_cuda_sdpa_bwd_sm90_rejects((const bk_sdpa_bwd_desc *)desc);
}
#endif

static const bk_kernel_entry sdpa_bwd_kernels[] = {
#ifdef BK_WITH_CUDA
    /* Hopper (compute capability 9.0, sm_90a code): wgmma and TMA, one pass, dq summed
     * with f32 atomics (neither deterministic nor bit-stable); D 64/128, no softcap,
     * ALiBi or window */
    {SDPA_BWD_KERNEL_CUDA_SM90, BK_TARGET_CUDA, 90, 90, BK_ARCH_SM90, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, false, false}, sm90_rejects},
    /* the same Hopper pass, dq tiles added one key tile after another in a fixed order:
     * deterministic and bit-stable (what BK_PREFER_DETERMINISTIC selects on cc 9.0) */
    {SDPA_BWD_KERNEL_CUDA_SM90_DET, BK_TARGET_CUDA, 90, 90, BK_ARCH_SM90, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, sm90_rejects},
    /* one pass, dq summed with f32 atomics: neither deterministic nor bit-stable */
    {SDPA_BWD_KERNEL_CUDA_FUSED, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, false, false}, fused_rejects},
    /* the same pass, dq tiles added one key tile after another in a fixed order:
     * deterministic and bit-stable (what BK_PREFER_DETERMINISTIC selects) */
    {SDPA_BWD_KERNEL_CUDA_FUSED_DET, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, fused_rejects},
    /* mma.sync m16n8k16, f32 accumulation; P and dS rounded to the element type; two
     * passes, no atomics (selected by no preference where a fused kernel applies: its
     * problems are theirs; the fused plans' run-time fallback) */
    {SDPA_BWD_KERNEL_CUDA_TC, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, tc_rejects},
    /* CUDA cores: f64 math for f64 ... */
    {SDPA_BWD_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT(BK_DTYPE_F64), BK_BACKEND_REFERENCE,
     {BK_MATH_F64, BK_DTYPE_F64, true, true}, NULL},
    /* ... f32 math for f32, f16, bf16 */
    {SDPA_BWD_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT(BK_DTYPE_F32) | BK_DT_HALVES,
     BK_BACKEND_REFERENCE, {BK_MATH_F32, BK_DTYPE_F32, true, true}, NULL},
#endif
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

#ifdef BK_WITH_CUDA
/* The CUDA kernels' workspace of plan kernel `kernel`, for sizing (base NULL) and
 * carving: D_i, then lse, each [B, Hq, Sq] of bk_cuda_sdpa_bwd_row_bytes; for the fused
 * and Hopper kernels then the f32 dq accumulator [B, Hq, Sq, Dqk] (else *dq_acc = NULL);
 * for their deterministic modes then the sync words (bk_cuda_sdpa_bwd_det_sync_bytes,
 * room for either mode: the Hopper one falls back to the fused one; else *dq_sync = NULL). Returns the bytes, SIZE_MAX on overflow (the checked sizes of
 * core.h and the saturating carver). */
static size_t sdpa_bwd_cuda_layout(const bk_sdpa_bwd_desc *d, int32_t kernel, void *base, void **d_rows,
                                   void **lse_rows, void **dq_acc, void **dq_sync)
{
    const bool det = kernel == SDPA_BWD_KERNEL_CUDA_FUSED_DET || kernel == SDPA_BWD_KERNEL_CUDA_SM90_DET,
               fused = det || kernel == SDPA_BWD_KERNEL_CUDA_FUSED || kernel == SDPA_BWD_KERNEL_CUDA_SM90;
    const size_t es = bk_cuda_sdpa_bwd_row_bytes(d);
    const int64_t n = bk_mul_sat(bk_mul_sat(d->batch, d->q_heads), d->q_len);
    bk_carver c = bk_carver_start(base);
    *d_rows = bk_carve(&c, bk_bytes(n, es));
    *lse_rows = bk_carve(&c, bk_bytes(n, es));
    *dq_acc = fused ? bk_carve(&c, bk_bytes(bk_mul_sat(n, d->head_dim_qk), sizeof(float))) : NULL;
    *dq_sync = det ? bk_carve(&c, bk_cuda_sdpa_bwd_det_sync_bytes(d)) : NULL;
    return c.offset;
}
#endif

size_t bk_sdpa_bwd_workspace_size(const bk_sdpa_bwd_plan *plan)
{
    if (plan == NULL)
        return 0;
    switch (plan->info.kernel) {
    case SDPA_BWD_KERNEL_CPU: return bk_cpu_sdpa_bwd_workspace_size(&plan->desc);
#ifdef BK_WITH_CUDA
    case SDPA_BWD_KERNEL_CUDA_SM90:
    case SDPA_BWD_KERNEL_CUDA_SM90_DET:
    case SDPA_BWD_KERNEL_CUDA_FUSED:
    case SDPA_BWD_KERNEL_CUDA_FUSED_DET:
    case SDPA_BWD_KERNEL_CUDA_TC:
    case SDPA_BWD_KERNEL_CUDA: {
        void *dr, *lr, *qa, *qs;
        return sdpa_bwd_cuda_layout(&plan->desc, plan->info.kernel, NULL, &dr, &lr, &qa, &qs);
    }
#endif
    }
    return 0;
}

bk_status bk_sdpa_bwd_run(const bk_sdpa_bwd_plan *plan, void *stream, bk_workspace workspace,
                          const bk_sdpa_bwd_args *args)
{
    BK_TRY(bk_sdpa_bwd_can_implement(plan, args));
    BK_TRY(bk_check_workspace("sdpa_bwd", &workspace, bk_sdpa_bwd_workspace_size(plan)));
    switch (plan->info.kernel) {
    case SDPA_BWD_KERNEL_CPU: (void)stream; return bk_cpu_sdpa_bwd(&plan->desc, workspace, args);
#ifdef BK_WITH_CUDA
    case SDPA_BWD_KERNEL_CUDA_SM90:
    case SDPA_BWD_KERNEL_CUDA_SM90_DET:
    case SDPA_BWD_KERNEL_CUDA_FUSED:
    case SDPA_BWD_KERNEL_CUDA_FUSED_DET:
    case SDPA_BWD_KERNEL_CUDA_TC:
    case SDPA_BWD_KERNEL_CUDA: {
        const int32_t id = plan->info.kernel;
        void *dr = NULL, *lr = NULL, *qa = NULL, *qs = NULL;
        sdpa_bwd_cuda_layout(&plan->desc, id, workspace.data, &dr, &lr, &qa, &qs);
        const bk_cuda_sdpa_bwd_kernel k = id == SDPA_BWD_KERNEL_CUDA_SM90        ? BK_CUDA_SDPA_BWD_SM90
                                          : id == SDPA_BWD_KERNEL_CUDA_SM90_DET  ? BK_CUDA_SDPA_BWD_SM90_DET
                                          : id == SDPA_BWD_KERNEL_CUDA_FUSED     ? BK_CUDA_SDPA_BWD_FUSED
                                          : id == SDPA_BWD_KERNEL_CUDA_FUSED_DET ? BK_CUDA_SDPA_BWD_FUSED_DET
                                          : id == SDPA_BWD_KERNEL_CUDA_TC        ? BK_CUDA_SDPA_BWD_TC
                                                                                 : BK_CUDA_SDPA_BWD_GENERIC;
        return bk_cuda_sdpa_bwd(&plan->desc, args, k, dr, lr, qa, qs, stream);
    }
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "sdpa_bwd: plan names kernel %d, which does not exist",
                   (int)plan->info.kernel);
}
