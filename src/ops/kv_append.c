/* kv_append.c - the kv_append plan: descriptor checks, the kernel table, can_implement,
 * the CPU check of the offsets and dispatch. The copy lives in the backends
 * (src/cpu/kvcache.c).
 *
 * Math:   K_cache[b,h,off[b]+l,:] = K_new[b,h,l,:], V likewise (bit-exact copy).
 * Shapes: see include/baracuda/kvcache.h.
 * Work:   select -> one CPU reference kernel; run -> can_implement, workspace (0 bytes),
 *         then on the CPU every offset is read and checked before the first byte is
 *         written (the seed silently skipped out-of-range rows; we refuse them).
 *         On CUDA (src/cuda/kvcache.cu) run never reads the offsets on the host: rows out
 *         of range are skipped on the device and counted into dropped_rows.
 * Not yet: nothing known missing. */
#include "core/core.h"
#include "cpu/kvcache.h"
#include "cuda/kvcache_cuda.h"

static const char *const OP = "kv_append";

enum { KV_APPEND_KERNEL_CPU = 0, KV_APPEND_KERNEL_CUDA = 1 };

static const bk_kernel_entry kv_append_kernels[] = {
#ifdef BK_WITH_CUDA
    /* a bit-exact copy (no math); every slot written at most once: deterministic */
    {KV_APPEND_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_FLOATS, BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, NULL},
#endif
    {KV_APPEND_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, NULL},
};

static bk_status kv_append_check_desc(const bk_kv_append_desc *d)
{
    BK_TRY(bk_check_ptr(OP, "desc", d));
    BK_TRY(bk_check_extent(OP, "desc.batch", d->batch, 0));
    BK_TRY(bk_check_extent(OP, "desc.heads", d->heads, 0));
    BK_TRY(bk_check_extent(OP, "desc.new_len", d->new_len, 0));
    BK_TRY(bk_check_extent(OP, "desc.max_cache_len", d->max_cache_len, 0));
    BK_TRY(bk_check_extent(OP, "desc.head_dim_k", d->head_dim_k, 0));
    BK_TRY(bk_check_extent(OP, "desc.head_dim_v", d->head_dim_v, 0));
    return bk_check_dtype_in(OP, "desc.dtype", d->dtype, BK_DT_FLOATS);
}

static bk_tensor_spec kv_spec(const bk_kv_append_desc *d, const char *name, int32_t len, int32_t dim,
                              const char *dims, uint32_t layout)
{
    bk_tensor_spec s = {name, d->dtype, 4, {d->batch, d->heads, len, dim}, dims, layout};
    return s;
}

bk_status bk_kv_append_select(const bk_kv_append_desc *desc, bk_target target, bk_preference preference,
                              bk_kv_append_plan *plan)
{
    bk_clear_error();
    BK_TRY(kv_append_check_desc(desc));
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    bk_kv_append_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel(OP, BK_CATEGORY_ATTENTION, BK_OP_KV_APPEND, kv_append_kernels,
                            (int32_t)(sizeof kv_append_kernels / sizeof kv_append_kernels[0]), desc, desc->dtype,
                            target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

bk_status bk_kv_append_can_implement(const bk_kv_append_plan *plan, const bk_kv_append_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    BK_TRY(bk_check_plan(OP, &plan->info, BK_OP_KV_APPEND));
    BK_TRY(bk_check_ptr(OP, "args", args));
    const bk_kv_append_desc *d = &plan->desc;
    const uint32_t in = BK_LAYOUT_INNER_UNIT, out = BK_LAYOUT_INNER_UNIT | BK_LAYOUT_OUTPUT;
    bk_tensor_spec s_kn = kv_spec(d, "k_new", d->new_len, d->head_dim_k, "batch,heads,new_len,head_dim_k", in);
    bk_tensor_spec s_vn = kv_spec(d, "v_new", d->new_len, d->head_dim_v, "batch,heads,new_len,head_dim_v", in);
    bk_tensor_spec s_kc =
        kv_spec(d, "k_cache", d->max_cache_len, d->head_dim_k, "batch,heads,max_cache_len,head_dim_k", out);
    bk_tensor_spec s_vc =
        kv_spec(d, "v_cache", d->max_cache_len, d->head_dim_v, "batch,heads,max_cache_len,head_dim_v", out);
    bk_tensor_spec s_off = {"cache_offsets", BK_DTYPE_I64, 1, {d->batch}, "batch", BK_LAYOUT_CONTIGUOUS};
    BK_TRY(bk_check_tensor(OP, &args->k_new, &s_kn));
    BK_TRY(bk_check_tensor(OP, &args->v_new, &s_vn));
    BK_TRY(bk_check_tensor(OP, &args->cache_offsets, &s_off));
    BK_TRY(bk_check_tensor(OP, &args->k_cache, &s_kc));
    BK_TRY(bk_check_tensor(OP, &args->v_cache, &s_vc));
    if (args->dropped_rows) {
        bk_tensor_spec s_drop = {"dropped_rows", BK_DTYPE_I64, 1, {1}, "1", BK_LAYOUT_CONTIGUOUS | BK_LAYOUT_OUTPUT};
        BK_TRY(bk_check_tensor(OP, args->dropped_rows, &s_drop));
    }
    return BK_STATUS_SUCCESS;
}

size_t bk_kv_append_workspace_size(const bk_kv_append_plan *plan)
{
    (void)plan;
    return 0;
}

/* CPU target: every row of every batch entry must land in the cache. The test is
 * written so that it cannot overflow (offsets are arbitrary i64). */
static bk_status kv_append_check_offsets(const bk_kv_append_desc *d, const bk_kv_append_args *a)
{
    const int64_t *off = (const int64_t *)a->cache_offsets.data;
    const int64_t limit = (int64_t)d->max_cache_len - d->new_len; /* largest valid offset */
    for (int32_t b = 0; b < d->batch; b++)
        if (off[b] < 0 || off[b] > limit)
            return bk_fail(BK_STATUS_OUT_OF_RANGE,
                           "%s: cache_offsets[%d] is %lld, expected 0 <= offset and offset + new_len (%d) <= "
                           "max_cache_len = %d; nothing was written",
                           OP, (int)b, (long long)off[b], (int)d->new_len, (int)d->max_cache_len);
    return BK_STATUS_SUCCESS;
}

bk_status bk_kv_append_run(const bk_kv_append_plan *plan, void *stream, bk_workspace workspace,
                           const bk_kv_append_args *args)
{
    (void)stream; /* used by the CUDA kernel only */
    BK_TRY(bk_kv_append_can_implement(plan, args));
    BK_TRY(bk_check_workspace(OP, &workspace, bk_kv_append_workspace_size(plan)));
    switch (plan->info.kernel) {
    case KV_APPEND_KERNEL_CPU:
        BK_TRY(kv_append_check_offsets(&plan->desc, args));
        return bk_cpu_kv_append(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case KV_APPEND_KERNEL_CUDA: return bk_cuda_kv_append(&plan->desc, args, stream);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan names kernel %d, which does not exist", OP,
                   (int)plan->info.kernel);
}
