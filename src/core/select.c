/* select.c - the one kernel-selection routine every op's select goes through, and
 * the names of the SKU fields.
 *
 * Each op owns a table of bk_kernel_entry (fastest first). bk_select_kernel walks it
 * for the target, the dtype and the preference (cuBLASLt-style heuristics, ggml-style
 * single decision point), so select, can_implement, workspace_size and run all agree
 * on one kernel id stored in the plan. */
#include "core/core.h"

#include <stdio.h>

const char *bk_op_name(bk_op op)
{
    static const char *const names[BK_OP_COUNT] = {
        "sdpa_fwd",     "sdpa_bwd",      "kv_append",       "paged_kv_append",
        "paged_decode", "paged_prefill", "attention_merge", "alibi_fwd",
        "alibi_bwd",    "ssd_fwd",       "ssd_bwd",       "ssd_step",
    };
    return (unsigned)op < (unsigned)BK_OP_COUNT ? names[op] : "?";
}

const char *bk_category_name(bk_category category)
{
    switch (category) {
    case BK_CATEGORY_ATTENTION: return "attention";
    case BK_CATEGORY_SSM: return "ssm";
    }
    return "?";
}

const char *bk_arch_name(bk_arch arch)
{
    switch (arch) {
    case BK_ARCH_CPU: return "cpu";
    case BK_ARCH_SM80: return "sm80";
    case BK_ARCH_SM90: return "sm90";
    }
    return "?";
}

const char *bk_backend_name(bk_backend backend)
{
    switch (backend) {
    case BK_BACKEND_REFERENCE: return "reference";
    case BK_BACKEND_BESPOKE: return "bespoke";
    case BK_BACKEND_CUBLAS: return "cublas";
    }
    return "?";
}

size_t bk_sku_name(const bk_sku *sku, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s/%s/%s/%s", bk_category_name(sku->category), bk_op_name(sku->op),
                     bk_dtype_name(sku->dtype), bk_arch_name(sku->arch), bk_backend_name(sku->backend));
    return n < 0 ? 0 : (size_t)n;
}

bk_status bk_check_target(const char *op, bk_target target, bk_preference preference)
{
    if (target.kind != BK_TARGET_CPU && target.kind != BK_TARGET_CUDA)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: target.kind is %d, expected BK_TARGET_CPU or BK_TARGET_CUDA",
                       op, (int)target.kind);
    if (target.kind == BK_TARGET_CUDA && (target.device < 0 || target.cc_major <= 0))
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: CUDA target has device %d and compute capability %d.%d, expected a device >= 0 "
                       "and a capability (use bk_target_cuda)",
                       op, (int)target.device, (int)target.cc_major, (int)target.cc_minor);
    if ((unsigned)preference > (unsigned)BK_PREFER_ALLOW_TF32)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: preference is %d, not a bk_preference", op, (int)preference);
    return BK_STATUS_SUCCESS;
}

static void target_text(bk_target target, char *buf, size_t size)
{
    if (target.kind == BK_TARGET_CPU)
        snprintf(buf, size, "the CPU");
    else
        snprintf(buf, size, "CUDA device %d (sm_%d%d)", (int)target.device, (int)target.cc_major,
                 (int)target.cc_minor);
}

bk_status bk_select_kernel(const char *op, bk_category category, bk_op op_id,
                           const bk_kernel_entry *table, int32_t count, const void *desc,
                           bk_dtype dtype, bk_target target, bk_preference preference,
                           bk_plan_info *info)
{
    BK_TRY(bk_check_target(op, target, preference));
    int32_t cc = target.cc_major * 10 + target.cc_minor;
    const bk_kernel_entry *chosen = NULL;
    const char *reason = NULL;
    for (int32_t i = 0; i < count; i++) {
        const bk_kernel_entry *e = &table[i];
        if (e->target != target.kind)
            continue;
        if (e->target == BK_TARGET_CUDA && (cc < e->min_cc || (e->max_cc && cc > e->max_cc)))
            continue;
        if (!(e->dtypes & BK_DT(dtype)))
            continue;
        if (preference == BK_PREFER_DETERMINISTIC && !e->precision.deterministic) {
            reason = "no deterministic kernel";
            continue;
        }
        if (e->precision.math == BK_MATH_TF32 && preference != BK_PREFER_ALLOW_TF32)
            continue; /* TF32 only by opt-in; the exact kernel follows it in the table */
        const char *why = e->rejects ? e->rejects(desc) : NULL;
        if (why) {
            reason = why;
            continue;
        }
        chosen = e;
        if (preference != BK_PREFER_REFERENCE)
            break; /* fastest first; REFERENCE keeps walking to the simplest */
    }
    if (!chosen) {
        char where[64];
        target_text(target, where, sizeof where);
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: no kernel for %s on %s%s%s", op, bk_dtype_name(dtype), where,
                       reason ? ": " : "", reason ? reason : "");
    }
    info->target = target;
    info->preference = preference;
    info->sku.category = category;
    info->sku.op = op_id;
    info->sku.dtype = dtype;
    info->sku.arch = chosen->arch;
    info->sku.backend = chosen->backend;
    info->precision = chosen->precision;
    info->kernel = chosen->id;
    return BK_STATUS_SUCCESS;
}

bk_status bk_check_plan(const char *op, const bk_plan_info *info, bk_op op_id)
{
    if (info == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan is NULL", op);
    if (info->sku.op != op_id)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: plan was made by %s_select, expected %s_select", op,
                       bk_op_name(info->sku.op), op);
    return BK_STATUS_SUCCESS;
}
