/* paged_decode.c - the paged decode plan: descriptor checks, the kernel table,
 * can_implement (tensors, then the page table's values on a CPU plan), the workspace
 * (CUDA split-KV partials) and dispatch. The math lives in the backends
 * (src/cpu/paged_attention.c, src/cuda/paged.cu). */
#include "core/core.h"
#include "core/paged.h"
#include "cpu/paged_attention.h"
#include "cuda/paged_cuda.h"

static const char *const OP = "paged_decode";

enum { PAGED_DECODE_KERNEL_CPU = 0, PAGED_DECODE_KERNEL_CUDA = 1, PAGED_DECODE_KERNEL_CUDA_TC = 2 };

#define PAGED_DECODE_DTYPES (BK_DT(BK_DTYPE_F16) | BK_DT(BK_DTYPE_BF16) | BK_DT(BK_DTYPE_F32))

#ifdef BK_WITH_CUDA
/* The tensor-core kernel puts a kv head's R x group (query row, q head) pairs in the 16
 * rows of its MMAs and reads K/V once per 16 pairs; the CUDA-core kernel reads them once
 * per 4. Up to 4 pairs both read K/V once and run at about the same speed
 * (bench/RESULTS.md), so the exact f32 kernel keeps them. */
static const char *tc_rejects(const void *desc)
{
    const bk_paged_decode_desc *d = (const bk_paged_decode_desc *)desc;
    const int64_t pairs = (int64_t)bk_paged_decode_rows(d) * (d->q_heads / d->paged_kv.kv_heads);
    if (pairs <= 4)
        return "4 or fewer (query row, q head) pairs per kv head (q_rows_per_request x q_heads / kv_heads): the "
               "CUDA-core kernel reads K/V once too";
    return NULL;
}
#endif

static const bk_kernel_entry paged_decode_kernels[] = {
#ifdef BK_WITH_CUDA
    /* f16/bf16 on tensor cores (mma.sync, f32 accumulate and softmax, P rounded to the
       input dtype before P V) when R x group > 4; fixed reduction order (split-KV merged
       in part order): deterministic for a given split count */
    {PAGED_DECODE_KERNEL_CUDA_TC, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, true, true}, tc_rejects},
    /* f32 online softmax on CUDA cores, fixed reduction order (split-KV merged in part
       order): deterministic */
    {PAGED_DECODE_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, PAGED_DECODE_DTYPES, BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, NULL},
#endif
    {PAGED_DECODE_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, PAGED_DECODE_DTYPES, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

static bk_status check_desc(const bk_paged_decode_desc *d)
{
    BK_TRY(bk_check_ptr(OP, "desc", d));
    BK_TRY(bk_check_extent(OP, "desc.batch", d->batch, 1));
    BK_TRY(bk_check_extent(OP, "desc.kv_splits", d->kv_splits, 0));
    BK_TRY(bk_check_extent(OP, "desc.q_rows_per_request", d->q_rows_per_request, 0));
    if (d->q_rows_per_request > BK_PAGED_DECODE_MAX_ROWS)
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: desc.q_rows_per_request is %d, expected at most %d (use "
                       "paged_prefill for more query rows per request)", OP, (int)d->q_rows_per_request,
                       BK_PAGED_DECODE_MAX_ROWS);
    return bk_check_paged_attention(OP, d->q_heads, d->scale, &d->paged_kv, PAGED_DECODE_DTYPES);
}

bk_status bk_paged_decode_select(const bk_paged_decode_desc *desc, bk_target target, bk_preference preference,
                                 bk_paged_decode_plan *plan)
{
    bk_clear_error();
    BK_TRY(check_desc(desc));
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    bk_paged_decode_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel(OP, BK_CATEGORY_ATTENTION, BK_OP_PAGED_DECODE, paged_decode_kernels,
                            (int32_t)(sizeof paged_decode_kernels / sizeof paged_decode_kernels[0]), desc,
                            desc->paged_kv.dtype, target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_paged_decode_can_implement(const bk_paged_decode_plan *plan, const bk_paged_decode_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    BK_TRY(bk_check_plan(OP, &plan->info, BK_OP_PAGED_DECODE));
    BK_TRY(bk_check_ptr(OP, "args", args));
    const bk_paged_decode_desc *d = &plan->desc;
    const bk_paged_kv_desc *pd = &d->paged_kv;
    bk_tensor_spec s_q = bk_paged_decode_spec(d, &args->q, false, "q", BK_LAYOUT_INNER_UNIT);
    bk_tensor_spec s_o = bk_paged_decode_spec(d, &args->o, false, "o", BK_LAYOUT_INNER_UNIT | BK_LAYOUT_OUTPUT);
    bk_tensor_spec s_lse = bk_paged_decode_spec(d, args->lse, true, "lse", BK_LAYOUT_OUTPUT);
    BK_TRY(bk_check_tensor(OP, &args->q, &s_q));
    BK_TRY(bk_check_paged_tensors(OP, pd, d->batch, &args->kv, false));
    BK_TRY(bk_check_tensor(OP, &args->o, &s_o));
    if (args->lse)
        BK_TRY(bk_check_tensor(OP, args->lse, &s_lse));
    /* index values live in host memory only for a CPU plan */
    if (plan->info.target.kind == BK_TARGET_CPU)
        BK_TRY(bk_check_paged_values(OP, pd, d->batch, &args->kv, true));
    return BK_STATUS_SUCCESS;
}

/* CUDA with S > 1 split-KV parts: partial o f32 [batch, R, q_heads, S, head_dim], then
 * partial lse f32 [batch, R, q_heads, S]. The CPU needs none. */
typedef struct decode_ws {
    int32_t splits;
    float *part_o, *part_lse;
} decode_ws;

static decode_ws decode_workspace(const bk_paged_decode_plan *plan, bk_carver *c)
{
    decode_ws w = {1, NULL, NULL};
#ifdef BK_WITH_CUDA
    const bool tc = plan->info.kernel == PAGED_DECODE_KERNEL_CUDA_TC;
    if (tc || plan->info.kernel == PAGED_DECODE_KERNEL_CUDA) {
        const bk_paged_decode_desc *d = &plan->desc;
        w.splits = bk_cuda_paged_decode_splits(d, tc);
        if (w.splits > 1) {
            const int64_t rows = bk_mul_sat(d->batch, bk_paged_decode_rows(d));
            const int64_t parts = bk_mul_sat(bk_mul_sat(rows, d->q_heads), w.splits);
            w.part_o = (float *)bk_carve(c, bk_bytes(bk_mul_sat(parts, d->paged_kv.head_dim), sizeof(float)));
            w.part_lse = (float *)bk_carve(c, bk_bytes(parts, sizeof(float)));
        }
    }
#else
    (void)plan;
    (void)c;
#endif
    return w;
}

size_t bk_paged_decode_workspace_size(const bk_paged_decode_plan *plan)
{
    if (plan == NULL)
        return 0;
    bk_carver c = bk_carver_start(NULL);
    decode_workspace(plan, &c);
    return c.offset;
}

bk_status bk_paged_decode_run(const bk_paged_decode_plan *plan, void *stream, bk_workspace workspace,
                              const bk_paged_decode_args *args)
{
    (void)stream; /* used by the CUDA kernel only */
    BK_TRY(bk_paged_decode_can_implement(plan, args));
    BK_TRY(bk_check_workspace(OP, &workspace, bk_paged_decode_workspace_size(plan)));
    switch (plan->info.kernel) {
    case PAGED_DECODE_KERNEL_CPU: return bk_cpu_paged_decode(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case PAGED_DECODE_KERNEL_CUDA_TC:
    case PAGED_DECODE_KERNEL_CUDA: {
        bk_carver c = bk_carver_start(workspace.data);
        decode_ws w = decode_workspace(plan, &c);
        return bk_cuda_paged_decode(&plan->desc, args, plan->info.kernel == PAGED_DECODE_KERNEL_CUDA_TC, w.splits,
                                    w.part_o, w.part_lse, plan->info.target.cc_major >= 9, stream);
    }
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan names kernel %d, which does not exist", OP,
                   (int)plan->info.kernel);
}
