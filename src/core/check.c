/* check.c - tensor views and every validation the ops share.
 *
 * Each op describes what its tensors must look like (bk_tensor_spec) and calls
 * bk_check_tensor; no op re-writes a shape, stride or capacity rule. */
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool bk_mul_overflows(int64_t a, int64_t b, int64_t *out)
{
    if (a == 0 || b == 0) {
        *out = 0;
        return false;
    }
    bool over;
    if (a > 0)
        over = b > 0 ? a > INT64_MAX / b : b < INT64_MIN / a;
    else
        over = b > 0 ? a < INT64_MIN / b : b < INT64_MAX / a;
    if (!over)
        *out = a * b;
    return over;
}

bool bk_add_overflows(int64_t a, int64_t b, int64_t *out)
{
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
        return true;
    *out = a + b;
    return false;
}

int64_t bk_mul_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || a == INT64_MAX || b == INT64_MAX || bk_mul_overflows(a, b, &r))
        return (a == 0 || b == 0) ? 0 : INT64_MAX;
    return r;
}

size_t bk_bytes(int64_t count, size_t elem_size)
{
    if (count < 0 || count == INT64_MAX)
        return SIZE_MAX;
    if (elem_size != 0 && (uint64_t)count > (uint64_t)(SIZE_MAX - 1) / elem_size)
        return SIZE_MAX;
    return (size_t)count * elem_size;
}

bk_tensor bk_tensor_contiguous(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape)
{
    bk_tensor t;
    memset(&t, 0, sizeof t);
    if (rank < 0)
        rank = 0;
    if (rank > BK_MAX_RANK)
        rank = BK_MAX_RANK;
    t.data = data;
    t.dtype = dtype;
    t.rank = rank;
    int64_t stride = 1;
    for (int32_t i = rank - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.strides[i] = stride;
        stride = bk_mul_sat(stride, shape[i] > 0 ? shape[i] : 1);
    }
    int64_t n = bk_tensor_numel(&t);
    t.capacity = n > 0 ? n : 0;
    return t;
}

int64_t bk_tensor_numel(const bk_tensor *t)
{
    int64_t n = 1;
    bool over = false;
    if (t->rank < 0 || t->rank > BK_MAX_RANK)
        return -1;
    for (int32_t i = 0; i < t->rank; i++)
        if (t->shape[i] < 0)
            return -1;
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->shape[i] == 0)
            return 0;
        over = over || bk_mul_overflows(n, t->shape[i], &n);
    }
    return over ? -1 : n;
}

bool bk_tensor_is_contiguous(const bk_tensor *t)
{
    int64_t expect = 1;
    for (int32_t i = t->rank - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return false;
        if (bk_mul_overflows(expect, t->shape[i], &expect))
            return false;
    }
    return true;
}

int64_t bk_tensor_span(const bk_tensor *t)
{
    int64_t numel = bk_tensor_numel(t);
    if (numel == 0)
        return 0;
    if (numel < 0)
        return -1;
    int64_t span = 1, step;
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->strides[i] < 0 || bk_mul_overflows(t->shape[i] - 1, t->strides[i], &step) ||
            bk_add_overflows(span, step, &span))
            return -1;
    }
    return span;
}

bk_status bk_check_extent(const char *op, const char *field, int64_t value, int64_t min_value)
{
    if (value < min_value)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s is %lld, expected >= %lld", op, field,
                       (long long)value, (long long)min_value);
    return BK_STATUS_SUCCESS;
}

bk_status bk_check_finite(const char *op, const char *field, double value)
{
    if (!isfinite(value))
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s is %g, expected a finite value", op, field,
                       value);
    return BK_STATUS_SUCCESS;
}

bk_status bk_check_dtype_in(const char *op, const char *field, bk_dtype dtype, uint32_t mask)
{
    if ((unsigned)dtype > (unsigned)BK_DTYPE_I64)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s is %d, not a bk_dtype", op, field, (int)dtype);
    if (!(mask & BK_DT(dtype))) {
        char list[64] = "";
        for (int d = 0; d <= (int)BK_DTYPE_I64; d++) {
            if (mask & BK_DT(d)) {
                if (list[0])
                    strcat(list, ", ");
                strcat(list, bk_dtype_name((bk_dtype)d));
            }
        }
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: %s is %s, expected one of {%s}", op, field,
                       bk_dtype_name(dtype), list);
    }
    return BK_STATUS_SUCCESS;
}

bk_status bk_check_gqa(const char *op, int32_t q_heads, int32_t kv_heads, const char *kv_field)
{
    if (q_heads % kv_heads != 0)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: desc.q_heads is %d, expected a multiple of %s = %d", op,
                       (int)q_heads, kv_field, (int)kv_heads);
    return BK_STATUS_SUCCESS;
}

bk_status bk_check_ptr(const char *op, const char *name, const void *ptr)
{
    if (ptr == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s is NULL", op, name);
    return BK_STATUS_SUCCESS;
}

/* Copies the k-th comma-separated name of `dims` into out ("?" when absent). */
static void dim_name(const char *dims, int32_t k, char *out, size_t size)
{
    const char *p = dims ? dims : "";
    for (int32_t i = 0; i < k && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    if (!p || !*p) {
        snprintf(out, size, "?");
        return;
    }
    size_t n = strcspn(p, ",");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void shape_text(const int64_t *shape, int32_t rank, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int32_t i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

typedef struct axis_ref {
    int64_t extent;
    int64_t stride;
} axis_ref;

static int axis_by_stride(const void *a, const void *b)
{
    const axis_ref *x = (const axis_ref *)a, *y = (const axis_ref *)b;
    return (x->stride > y->stride) - (x->stride < y->stride);
}

/* True when no two positions of the view share an address: sorted by stride, each
 * axis must step over everything the smaller axes reach. */
static bool non_overlapping(const bk_tensor *t)
{
    axis_ref axes[BK_MAX_RANK];
    int32_t n = 0;
    for (int32_t i = 0; i < t->rank; i++)
        if (t->shape[i] > 1)
            axes[n++] = (axis_ref){t->shape[i], t->strides[i]};
    qsort(axes, (size_t)n, sizeof axes[0], axis_by_stride);
    int64_t reach = 0; /* largest offset reached by the axes so far */
    for (int32_t i = 0; i < n; i++) {
        if (axes[i].stride <= reach)
            return false;
        reach += (axes[i].extent - 1) * axes[i].stride;
    }
    return true;
}

bk_status bk_check_tensor(const char *op, const bk_tensor *t, const bk_tensor_spec *spec)
{
    const char *name = spec->name;
    char dim[32], got[160], want[160];
    if (t == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s is NULL", op, name);
    if (t->dtype != spec->dtype)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.dtype is %s, expected %s", op, name,
                       bk_dtype_name(t->dtype), bk_dtype_name(spec->dtype));
    if (t->rank != spec->rank) {
        shape_text(spec->shape, spec->rank, want, sizeof want);
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.rank is %d, expected %d (shape %s)", op, name,
                       (int)t->rank, (int)spec->rank, want);
    }
    for (int32_t i = 0; i < spec->rank; i++) {
        if (t->shape[i] != spec->shape[i]) {
            dim_name(spec->dims, i, dim, sizeof dim);
            return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.shape[%d] is %lld, expected %s = %lld", op,
                           name, (int)i, (long long)t->shape[i], dim, (long long)spec->shape[i]);
        }
    }
    const int64_t esize = (int64_t)bk_dtype_size(t->dtype);
    int64_t numel = bk_tensor_numel(t), bytes;
    if (numel < 0 || bk_mul_overflows(numel, esize, &bytes)) {
        shape_text(t->shape, t->rank, got, sizeof got);
        for (int32_t i = 0; i < t->rank; i++)
            if (t->shape[i] < 0)
                return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.shape[%d] is %lld, expected >= 0", op, name,
                               (int)i, (long long)t->shape[i]);
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: %s of shape %s has more elements or bytes than int64 can count", op, name, got);
    }
    if (t->capacity < 0)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.capacity is %lld, expected >= 0 (0 = unknown)", op, name,
                       (long long)t->capacity);
    if (numel > 0 && t->data == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.data is NULL for %lld elements", op, name,
                       (long long)numel);
    if (numel == 0) {
        /* Kernels still form the offsets of an empty view's rows (b * stride[0] + ...), so
         * its strides must be >= 0 and reach within int64 as if its empty axes had extent 1. */
        bk_tensor ones = *t;
        for (int32_t i = 0; i < t->rank; i++)
            if (ones.shape[i] == 0)
                ones.shape[i] = 1;
        int64_t reach = bk_tensor_span(&ones);
        if (reach >= 0 && !bk_mul_overflows(reach, esize, &bytes))
            return BK_STATUS_SUCCESS;
        for (int32_t i = 0; i < t->rank; i++)
            if (t->strides[i] < 0)
                return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.strides[%d] is %lld, expected >= 0", op, name,
                               (int)i, (long long)t->strides[i]);
        shape_text(t->strides, t->rank, got, sizeof got);
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: %s is empty but its strides %s reach beyond what int64 can address", op, name, got);
    }
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->strides[i] < 0)
            return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.strides[%d] is %lld, expected >= 0", op,
                           name, (int)i, (long long)t->strides[i]);
        if (t->strides[i] == 0 && t->shape[i] > 1 && !(spec->layout & BK_LAYOUT_BROADCAST_AXIS(i))) {
            dim_name(spec->dims, i, dim, sizeof dim);
            if (spec->layout & BK_LAYOUT_OUTPUT)
                return bk_fail(BK_STATUS_INVALID_PROBLEM,
                               "%s: %s.strides[%d] is 0 on axis %s of extent %lld: an output cannot "
                               "broadcast",
                               op, name, (int)i, dim, (long long)t->shape[i]);
            return bk_fail(BK_STATUS_UNSUPPORTED,
                           "%s: %s.strides[%d] is 0 on axis %s: broadcast is not supported there", op,
                           name, (int)i, dim);
        }
    }
    /* the reach bounds every offset the kernels form, so it must fit in int64 bytes */
    int64_t span = bk_tensor_span(t);
    if (span < 0 || bk_mul_overflows(span, esize, &bytes)) {
        shape_text(t->shape, t->rank, want, sizeof want);
        shape_text(t->strides, t->rank, got, sizeof got);
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: %s of shape %s with strides %s reaches beyond what int64 can address", op, name, want,
                       got);
    }
    if ((spec->layout & BK_LAYOUT_OUTPUT) && !non_overlapping(t)) {
        shape_text(t->strides, t->rank, got, sizeof got);
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s.strides %s make positions of an output overlap",
                       op, name, got);
    }
    if ((spec->layout & BK_LAYOUT_CONTIGUOUS) && !bk_tensor_is_contiguous(t)) {
        shape_text(t->strides, t->rank, got, sizeof got);
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: %s.strides are %s, expected a contiguous row-major tensor",
                       op, name, got);
    }
    if ((spec->layout & BK_LAYOUT_INNER_UNIT) && t->rank > 0 && t->shape[t->rank - 1] > 1 &&
        t->strides[t->rank - 1] != 1)
        return bk_fail(BK_STATUS_UNSUPPORTED, "%s: %s.strides[%d] is %lld, expected 1 (inner axis)", op,
                       name, (int)(t->rank - 1), (long long)t->strides[t->rank - 1]);
    if (t->capacity > 0 && span > t->capacity)
        return bk_fail(BK_STATUS_BUFFER_TOO_SMALL, "%s: %s reaches %lld elements from data, capacity is %lld",
                       op, name, (long long)span, (long long)t->capacity);
    return BK_STATUS_SUCCESS;
}

bk_status bk_check_optional_tensor(const char *op, const bk_tensor *t, bool on, const char *field,
                                   const bk_tensor_spec *spec)
{
    if (!on) {
        if (t != NULL)
            return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s is given, expected NULL since %s is off", op,
                           spec->name, field);
        return BK_STATUS_SUCCESS;
    }
    if (t == NULL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: %s is NULL, expected a [%s] tensor since %s is on", op,
                       spec->name, spec->dims, field);
    return bk_check_tensor(op, t, spec);
}
