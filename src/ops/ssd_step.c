/* ssd_step.c - the one-token Mamba-2 step on a pool of states (mamba_ssm's
 * selective_state_update): select, can_implement, workspace (0), the CPU check of the
 * state indices, and dispatch. The descriptor options and their checks are shared with
 * ssd_fwd / ssd_bwd (core/ssd_check.c); the math lives in the backends (src/cpu/ssd.c,
 * src/cuda/ssd.cu).
 *
 * Math:   see include/baracuda/ssd.h (ssd_step).
 * Work:   CPU: the f64 reference, after every state index was read and checked (an index
 *         outside the pool is refused with OUT_OF_RANGE, nothing written). CUDA: one block
 *         per (request, head); out-of-pool requests are skipped on the device and counted
 *         into dropped_requests (kv_append's contract, kvcache.h).
 * Not yet: nothing known missing. */
#include "core/core.h"
#include "core/ssd_check.h"
#include "cpu/ssd.h"
#include "cuda/ssd_cuda.h"

static const char *const OP = "ssd_step";

enum { SSD_STEP_KERNEL_CPU = 0, SSD_STEP_KERNEL_CUDA = 1 };

static const bk_kernel_entry ssd_step_kernels[] = {
#ifdef BK_WITH_CUDA
    /* one block per (request, head), f32 math; each state written by one block */
    {SSD_STEP_KERNEL_CUDA, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT(BK_DTYPE_F32) | BK_DT_HALVES, BK_BACKEND_BESPOKE,
     {BK_MATH_F32, BK_DTYPE_F32, true, true}, bk_ssd_step_rejects_dims},
#endif
    {SSD_STEP_KERNEL_CPU, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE,
     BK_PRECISION_CPU_REFERENCE, bk_ssd_step_rejects_dims},
};

bk_status bk_ssd_step_select(const bk_ssd_step_desc *desc, bk_target target, bk_preference preference,
                             bk_ssd_step_plan *plan)
{
    bk_clear_error();
    BK_TRY(bk_ssd_check_step_desc(OP, desc));
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    bk_ssd_step_plan p = {.desc = *desc};
    BK_TRY(bk_select_kernel(OP, BK_CATEGORY_SSM, BK_OP_SSD_STEP, ssd_step_kernels,
                            (int32_t)(sizeof ssd_step_kernels / sizeof ssd_step_kernels[0]), desc, desc->dtype,
                            target, preference, &p.info));
    *plan = p;
    return BK_STATUS_SUCCESS;
}

/* A [batch, heads-or-groups, width] tensor of the step. */
static bk_tensor_spec step_spec(const bk_ssd_step_desc *d, const char *name, int32_t rank, int64_t mid, int64_t width,
                                const char *dims, bool output)
{
    bk_tensor_spec s = {name, d->dtype, rank, {d->batch, mid, width}, dims,
                        BK_LAYOUT_INNER_UNIT | (output ? (uint32_t)BK_LAYOUT_OUTPUT : 0u)};
    return s;
}

bk_status bk_ssd_step_can_implement(const bk_ssd_step_plan *plan, const bk_ssd_step_args *args)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr(OP, "plan", plan));
    BK_TRY(bk_check_plan(OP, &plan->info, BK_OP_SSD_STEP));
    BK_TRY(bk_check_ptr(OP, "args", args));
    const bk_ssd_step_desc *d = &plan->desc;
    const bk_ssd_opts o = bk_ssd_step_opts(d);
    const char *gdims = d->ngroups > 0 ? "batch,ngroups,state_dim" : "batch,heads,state_dim";
    bk_tensor_spec s_state = {"state", d->dtype, 4, {d->pool, d->heads, d->head_dim, d->state_dim},
                              "pool,heads,head_dim,state_dim", BK_LAYOUT_INNER_UNIT | BK_LAYOUT_OUTPUT};
    bk_tensor_spec s_x = step_spec(d, "x", 3, d->heads, d->head_dim, "batch,heads,head_dim", false);
    bk_tensor_spec s_dt = step_spec(d, "dt", 2, d->heads, 0, "batch,heads", false);
    bk_tensor_spec s_a = {"a", d->dtype, 1, {d->heads}, "heads", BK_LAYOUT_INNER_UNIT};
    bk_tensor_spec s_b = step_spec(d, "b", 3, o.groups, d->state_dim, gdims, false);
    bk_tensor_spec s_c = step_spec(d, "c", 3, o.groups, d->state_dim, gdims, false);
    bk_tensor_spec s_skip = bk_ssd_skip_spec(&o, d->dtype, "skip", false);
    bk_tensor_spec s_z = step_spec(d, "z", 3, d->heads, d->head_dim, "batch,heads,head_dim", false);
    bk_tensor_spec s_bias = {"dt_bias", d->dtype, 1, {d->heads}, "heads", BK_LAYOUT_INNER_UNIT};
    bk_tensor_spec s_idx = {"state_indices", BK_DTYPE_I32, 1, {d->batch}, "batch", BK_LAYOUT_CONTIGUOUS};
    bk_tensor_spec s_y = step_spec(d, "y", 3, d->heads, d->head_dim, "batch,heads,head_dim", true);
    bk_tensor_spec s_drop = {"dropped_requests", BK_DTYPE_I64, 1, {1}, "1", BK_LAYOUT_CONTIGUOUS | BK_LAYOUT_OUTPUT};
    BK_TRY(bk_check_tensor(OP, &args->state, &s_state));
    BK_TRY(bk_check_tensor(OP, &args->x, &s_x));
    BK_TRY(bk_check_tensor(OP, &args->dt, &s_dt));
    BK_TRY(bk_check_tensor(OP, &args->a, &s_a));
    BK_TRY(bk_check_tensor(OP, &args->b, &s_b));
    BK_TRY(bk_check_tensor(OP, &args->c, &s_c));
    BK_TRY(bk_check_optional_tensor(OP, args->skip, d->skip != BK_SSD_SKIP_NONE, "desc.skip", &s_skip));
    BK_TRY(bk_check_optional_tensor(OP, args->z, d->has_z, "desc.has_z", &s_z));
    BK_TRY(bk_check_optional_tensor(OP, args->dt_bias, d->has_dt_bias, "desc.has_dt_bias", &s_bias));
    BK_TRY(bk_check_optional_tensor(OP, args->state_indices, d->has_state_indices, "desc.has_state_indices", &s_idx));
    BK_TRY(bk_check_tensor(OP, &args->y, &s_y));
    if (args->dropped_requests)
        BK_TRY(bk_check_tensor(OP, args->dropped_requests, &s_drop));
    return BK_STATUS_SUCCESS;
}

size_t bk_ssd_step_workspace_size(const bk_ssd_step_plan *plan)
{
    (void)plan;
    return 0;
}

/* CPU target: every state index (host memory) must name a state of the pool. */
static bk_status ssd_step_check_indices(const bk_ssd_step_desc *d, const bk_ssd_step_args *a)
{
    if (a->state_indices == NULL)
        return BK_STATUS_SUCCESS;
    const int32_t *idx = (const int32_t *)a->state_indices->data;
    for (int32_t r = 0; r < d->batch; r++)
        if (idx[r] < 0 || idx[r] >= d->pool)
            return bk_fail(BK_STATUS_OUT_OF_RANGE,
                           "%s: state_indices[%d] is %d, expected 0 <= index < pool = %d; nothing was written", OP,
                           (int)r, (int)idx[r], (int)d->pool);
    return BK_STATUS_SUCCESS;
}

bk_status bk_ssd_step_run(const bk_ssd_step_plan *plan, void *stream, bk_workspace workspace,
                          const bk_ssd_step_args *args)
{
    (void)stream; /* used by the CUDA kernel only */
    BK_TRY(bk_ssd_step_can_implement(plan, args));
    BK_TRY(bk_check_workspace(OP, &workspace, bk_ssd_step_workspace_size(plan)));
    switch (plan->info.kernel) {
    case SSD_STEP_KERNEL_CPU:
        BK_TRY(ssd_step_check_indices(&plan->desc, args));
        return bk_cpu_ssd_step(&plan->desc, args);
#ifdef BK_WITH_CUDA
    case SSD_STEP_KERNEL_CUDA: return bk_cuda_ssd_step(&plan->desc, args, stream);
#endif
    }
    return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan names kernel %d, which does not exist", OP,
                   (int)plan->info.kernel);
}
