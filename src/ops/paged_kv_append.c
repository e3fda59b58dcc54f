/* paged_kv_append.c - the paged_kv_append plan: descriptor checks, the kernel table,
 * can_implement, the CPU checks of the index data and dispatch. The copy lives in the
 * backends (src/cpu/kvcache.c).
 *
 * Math:   for request b's n_b new rows r: token t = kv_len[b] - n_b + r of the cache
 *         AFTER the append (FlashInfer's convention) gets K_new[append_indptr[b] + r]
 *         in every kv head (V likewise), bit-exact.
 * Shapes: see include/baracuda/kvcache.h and paged.h.
 * Work:   select -> one CPU reference kernel; run -> can_implement, workspace (0 bytes),
 *         then on the CPU the page table, append_indptr and n_b <= kv_len[b] are
 *         checked before the first byte is written (shared helpers of core/paged.h).
 *         On CUDA (src/cuda/kvcache.cu) run never reads index data on the host: rows that
 *         land outside the pool are skipped on the device and counted into dropped_rows.
 * Not yet: two new rows landing in one slot (a page listed twice) are not detected;
 *         on CUDA which of them wins is then unspecified (the plan says deterministic,
 *         which holds only when no two rows share a slot). */
#include "core/core.h"
#include "core/paged.h"
#include "cpu/kvcache.h"
#include "cuda/kvcache_cuda.h"

static const char *const OP = "paged_kv_append";

#define PAGED_KV_APPEND_DTYPES (BK_DT(BK_DTYPE_F16) | BK_DT(BK_DTYPE_BF16) | BK_DT(BK_DTYPE_F32))

enum { PAGED_KV_APPEND_KERNEL_CPU = 0, PAGED_KV_APPEND_KERNEL_CUDA = 1 };

static const bk_kernel_entry paged_kv_append_kernels[] = {
#ifdef BK_WITH_CUDA
    /* a bit-exact copy (no math); deterministic as long as no two new rows target the
       same slot (then the winner depends on scheduling) */
    {PAGED_KV_APPEND_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, PAGED_KV_APPEND_DTYPES, BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, NULL},
#endif
    {PAGED_KV_APPEND_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, PAGED_KV_APPEND_DTYPES, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

static bk_status paged_kv_append_check_desc(const bk_paged_kv_append_desc *d)
{
    BK_TRY(bk_check_ptr(OP, "desc", d));
    BK_TRY(bk_check_extent(OP, "desc.batch", d->batch, 1));
    BK_TRY(bk_check_extent(OP, "desc.nnz", d->nnz, 0));
    return bk_check_paged_desc(OP, &d->paged_kv, PAGED_KV_APPEND_DTYPES);
}

bk_status bk_paged_kv_append_select(const bk_paged_kv_append_desc *desc, bk_target target,
                                    bk_preference preference, bk_paged_kv_append_plan *plan)
{
    bk_clear_error();
    BK_TRY(paged_kv_append_check_desc(desc));
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    bk_paged_kv_append_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel(OP, BK_CATEGORY_ATTENTION, BK_OP_PAGED_KV_APPEND, paged_kv_append_kernels,
                            (int32_t)(sizeof paged_kv_append_kernels / sizeof paged_kv_append_kernels[0]), desc,
                            desc->paged_kv.dtype, target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_paged_kv_append_can_implement(const bk_paged_kv_append_plan *plan,
                                           const bk_paged_kv_append_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    BK_TRY(bk_check_plan(OP, &plan->info, BK_OP_PAGED_KV_APPEND));
    BK_TRY(bk_check_ptr(OP, "args", args));
    const bk_paged_kv_append_desc *d = &plan->desc;
    const bk_paged_kv_desc *p = &d->paged_kv;
    bk_tensor_spec s_kn = {"k_new", p->dtype, 3, {d->nnz, p->kv_heads, p->head_dim}, "nnz,kv_heads,head_dim",
                           BK_LAYOUT_INNER_UNIT};
    bk_tensor_spec s_vn = s_kn;
    s_vn.name = "v_new";
    bk_tensor_spec s_ptr = {"append_indptr", BK_DTYPE_I32, 1, {(int64_t)d->batch + 1}, "batch+1",
                            BK_LAYOUT_CONTIGUOUS};
    BK_TRY(bk_check_tensor(OP, &args->k_new, &s_kn));
    BK_TRY(bk_check_tensor(OP, &args->v_new, &s_vn));
    BK_TRY(bk_check_tensor(OP, &args->append_indptr, &s_ptr));
    BK_TRY(bk_check_paged_tensors(OP, p, d->batch, &args->kv, true));
    if (args->dropped_rows) {
        bk_tensor_spec s_drop = {"dropped_rows", BK_DTYPE_I64, 1, {1}, "1", BK_LAYOUT_CONTIGUOUS | BK_LAYOUT_OUTPUT};
        BK_TRY(bk_check_tensor(OP, args->dropped_rows, &s_drop));
    }
    return BK_STATUS_SUCCESS;
}

size_t bk_paged_kv_append_workspace_size(const bk_paged_kv_append_plan *plan)
{
    (void)plan;
    return 0;
}

/* CPU target: the index data (host memory) must place every new row inside the pool. */
static bk_status paged_kv_append_check_values(const bk_paged_kv_append_desc *d, const bk_paged_kv_append_args *a)
{
    const int32_t *indptr = (const int32_t *)a->append_indptr.data;
    BK_TRY(bk_check_paged_values(OP, &d->paged_kv, d->batch, &a->kv, false));
    BK_TRY(bk_check_indptr_values(OP, "append_indptr", indptr, d->batch, d->nnz));
    for (int32_t b = 0; b < d->batch; b++) {
        int64_t n = (int64_t)indptr[b + 1] - indptr[b];
        int64_t len = bk_paged_kv_len(&d->paged_kv, &a->kv, b);
        if (n > len)
            return bk_fail(BK_STATUS_OUT_OF_RANGE,
                           "%s: request %d appends %lld rows (append_indptr), but its pages hold kv_len = %lld "
                           "tokens, expected n <= kv_len (the page table must describe the cache after the "
                           "append)",
                           OP, (int)b, (long long)n, (long long)len);
    }
    return BK_STATUS_SUCCESS;
}

bk_status bk_paged_kv_append_run(const bk_paged_kv_append_plan *plan, void *stream, bk_workspace workspace,
                                 const bk_paged_kv_append_args *args)
{
    (void)stream; /* used by the CUDA kernel only */
    BK_TRY(bk_paged_kv_append_can_implement(plan, args));
    BK_TRY(bk_check_workspace(OP, &workspace, bk_paged_kv_append_workspace_size(plan)));
    switch (plan->info.kernel) {
    case PAGED_KV_APPEND_KERNEL_CPU:
        BK_TRY(paged_kv_append_check_values(&plan->desc, args));
        return bk_cpu_paged_kv_append(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case PAGED_KV_APPEND_KERNEL_CUDA: return bk_cuda_paged_kv_append(&plan->desc, args, stream);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan names kernel %d, which does not exist", OP,
                   (int)plan->info.kernel);
}
