/* paged_prefill.c - the paged prefill plan: descriptor checks, the kernel table,
 * can_implement (tensors, then q_indptr's and the page table's values on a CPU plan)
 * and dispatch. The math lives in the backends: src/cpu/paged_attention.c (f64), on CUDA
 * the flash-attention forward's tensor-core kernels with paged K/V (src/cuda/sdpa_fwd.cu:
 * wgmma on compute capability 9.0, mma.sync on 8.0+; P rounded to the input dtype), and
 * the CUDA-core kernel of src/cuda/paged.cu (f32 math), the reference CUDA path
 * (BK_PREFER_REFERENCE). Workspace: 0. */
#include "core/core.h"
#include "core/paged.h"
#include "cpu/paged_attention.h"
#include "cuda/paged_cuda.h"

static const char *const OP = "paged_prefill";

enum {
    PAGED_PREFILL_KERNEL_CPU = 0,
    PAGED_PREFILL_KERNEL_CUDA = 1,
    PAGED_PREFILL_KERNEL_CUDA_WGMMA = 2,
    PAGED_PREFILL_KERNEL_CUDA_MMA = 3
};

/* f16/bf16 as the seed (the GPU kernels are mma-based); the CPU keeps the contract. */
static const bk_kernel_entry paged_prefill_kernels[] = {
#ifdef BK_WITH_CUDA
    /* tensor cores, f32 accumulate and softmax, P rounded to the input dtype: wgmma on 9.0 */
    {PAGED_PREFILL_KERNEL_CUDA_WGMMA, BK_TARGET_CUDA, 90, 90, BK_ARCH_SM90, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, NULL},
    /* ... mma.sync on 8.0+ */
    {PAGED_PREFILL_KERNEL_CUDA_MMA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, NULL},
    /* f16/bf16 operands converted to f32, CUDA-core f32 math, keys in order per row:
       deterministic; the reference CUDA path */
    {PAGED_PREFILL_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_REFERENCE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, NULL},
#endif
    {PAGED_PREFILL_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_HALVES, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

static bk_status check_desc(const bk_paged_prefill_desc *d)
{
    BK_TRY(bk_check_ptr(OP, "desc", d));
    BK_TRY(bk_check_extent(OP, "desc.batch", d->batch, 1));
    BK_TRY(bk_check_extent(OP, "desc.total_rows", d->total_rows, 0));
    return bk_check_paged_attention(OP, d->q_heads, d->scale, &d->paged_kv, BK_DT_HALVES);
}

bk_status bk_paged_prefill_select(const bk_paged_prefill_desc *desc, bk_target target, bk_preference preference,
                                  bk_paged_prefill_plan *plan)
{
    bk_clear_error();
    BK_TRY(check_desc(desc));
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    bk_paged_prefill_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel(OP, BK_CATEGORY_ATTENTION, BK_OP_PAGED_PREFILL, paged_prefill_kernels,
                            (int32_t)(sizeof paged_prefill_kernels / sizeof paged_prefill_kernels[0]), desc,
                            desc->paged_kv.dtype, target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_paged_prefill_can_implement(const bk_paged_prefill_plan *plan, const bk_paged_prefill_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    BK_TRY(bk_check_plan(OP, &plan->info, BK_OP_PAGED_PREFILL));
    BK_TRY(bk_check_ptr(OP, "args", args));
    const bk_paged_prefill_desc *d = &plan->desc;
    const bk_paged_kv_desc *pd = &d->paged_kv;
    bk_tensor_spec s_q = {"q", pd->dtype, 3, {d->total_rows, d->q_heads, pd->head_dim},
                          "total_rows,q_heads,head_dim", BK_LAYOUT_INNER_UNIT};
    bk_tensor_spec s_o = s_q;
    s_o.name = "o";
    s_o.layout = BK_LAYOUT_INNER_UNIT | BK_LAYOUT_OUTPUT;
    bk_tensor_spec s_ptr = {"q_indptr", BK_DTYPE_I32, 1, {(int64_t)d->batch + 1}, "batch+1", BK_LAYOUT_CONTIGUOUS};
    bk_tensor_spec s_lse = {"lse", BK_DTYPE_F32, 2, {d->total_rows, d->q_heads}, "total_rows,q_heads",
                            BK_LAYOUT_OUTPUT};
    BK_TRY(bk_check_tensor(OP, &args->q, &s_q));
    BK_TRY(bk_check_tensor(OP, &args->q_indptr, &s_ptr));
    BK_TRY(bk_check_paged_tensors(OP, pd, d->batch, &args->kv, false));
    BK_TRY(bk_check_tensor(OP, &args->o, &s_o));
    if (args->lse)
        BK_TRY(bk_check_tensor(OP, args->lse, &s_lse));
    /* index values live in host memory only for a CPU plan */
    if (plan->info.target.kind == BK_TARGET_CPU) {
        BK_TRY(bk_check_indptr_values(OP, "q_indptr", (const int32_t *)args->q_indptr.data, d->batch,
                                      d->total_rows));
        BK_TRY(bk_check_paged_values(OP, pd, d->batch, &args->kv, false));
    }
    return BK_STATUS_SUCCESS;
}

size_t bk_paged_prefill_workspace_size(const bk_paged_prefill_plan *plan)
{
    (void)plan;
    return 0;
}

bk_status bk_paged_prefill_run(const bk_paged_prefill_plan *plan, void *stream, bk_workspace workspace,
                               const bk_paged_prefill_args *args)
{
    (void)stream; /* used by the CUDA kernel only */
    BK_TRY(bk_paged_prefill_can_implement(plan, args));
    BK_TRY(bk_check_workspace(OP, &workspace, bk_paged_prefill_workspace_size(plan)));
    switch (plan->info.kernel) {
    case PAGED_PREFILL_KERNEL_CPU: return bk_cpu_paged_prefill(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case PAGED_PREFILL_KERNEL_CUDA: return bk_cuda_paged_prefill(&plan->desc, args, stream);
    case PAGED_PREFILL_KERNEL_CUDA_WGMMA: return bk_cuda_paged_prefill_tc(&plan->desc, args, true, stream);
    case PAGED_PREFILL_KERNEL_CUDA_MMA: return bk_cuda_paged_prefill_tc(&plan->desc, args, false, stream);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan names kernel %d, which does not exist", OP,
                   (int)plan->info.kernel);
}
