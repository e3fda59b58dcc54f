/*
 * core.h - the library's internal toolbox, shared by every op and backend.
 *
 * One routine for one job:
 *   errors      bk_fail / bk_clear_error           (status.c)
 *   dtypes      element load/store and row gather/scatter through f64 (dtype.c)
 *   checks      descriptor extents, dtype sets, finite scalars, tensor specs  (check.c)
 *   selection   the kernel table walk shared by every op's select        (select.c)
 *   workspace   carving one caller buffer into aligned pieces              (workspace.c)
 *
 * Ops never write their own copy of any of these.
 */
#ifndef BK_CORE_H
#define BK_CORE_H

#include "baracuda/baracuda.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- errors -- */

/* Records `fmt` (printf-style) as this thread's last error and returns `status`.
 * Messages start with the op name: "sdpa_fwd: k.shape[2] is 100, expected kv_len = 128". */
bk_status bk_fail(bk_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Empties this thread's last error (called at the entry of every public op call). */
void bk_clear_error(void);

/* Returns early from the enclosing function with the status of `expr` if it failed. */
#define BK_TRY(expr)                                    \
    do {                                                \
        bk_status bk_try_status_ = (expr);              \
        if (bk_try_status_ != BK_STATUS_SUCCESS)        \
            return bk_try_status_;                      \
    } while (0)

/* ------------------------------------------------------------- dtypes -- */

/* Bit for `dtype` in a dtype mask. */
#define BK_DT(dtype) (1u << (unsigned)(dtype))
#define BK_DT_FLOATS (BK_DT(BK_DTYPE_F32) | BK_DT(BK_DTYPE_F64) | BK_DT(BK_DTYPE_F16) | BK_DT(BK_DTYPE_BF16))
#define BK_DT_HALVES (BK_DT(BK_DTYPE_F16) | BK_DT(BK_DTYPE_BF16))

/* Element `idx` (in elements from `base`) of a float or integer tensor, as f64. */
double bk_load_f64(const void *base, bk_dtype dtype, int64_t idx);
/* Stores `v` at element `idx`, rounding to nearest even for f32/f16/bf16. */
void bk_store_f64(void *base, bk_dtype dtype, int64_t idx, double v);
/* dst[i] = element (i * stride) of base, i < n. */
void bk_gather_f64(const void *base, bk_dtype dtype, int64_t stride, int64_t n, double *dst);
/* element (i * stride) of base = src[i], i < n. */
void bk_scatter_f64(void *base, bk_dtype dtype, int64_t stride, int64_t n, const double *src);

/* --------------------------------------------------------- arithmetic -- */

/* The one checked arithmetic every extent product, element count, view reach and byte
 * size goes through (int32 extents multiply past int64, int64 strides past anything):
 *   bk_mul_overflows / bk_add_overflows  true when a * b (a + b) does not fit in int64;
 *                                        otherwise *out holds it;
 *   bk_mul_sat      a * b for a, b >= 0, saturated to INT64_MAX (which stays INT64_MAX);
 *   bk_bytes        count * elem_size as size_t for sizing workspaces, SIZE_MAX when count
 *                   is negative or saturated (INT64_MAX) or the bytes do not fit.
 * Portable C (no compiler builtins), also called from the CUDA host code. */
bool bk_mul_overflows(int64_t a, int64_t b, int64_t *out);
bool bk_add_overflows(int64_t a, int64_t b, int64_t *out);
int64_t bk_mul_sat(int64_t a, int64_t b);
size_t bk_bytes(int64_t count, size_t elem_size);

/* ------------------------------------------------------------- checks -- */

/* Descriptor field checks. `field` names it in the message ("desc.kv_len"). */
bk_status bk_check_extent(const char *op, const char *field, int64_t value, int64_t min_value);
bk_status bk_check_finite(const char *op, const char *field, double value);
/* UNSUPPORTED unless `dtype` is in `mask` (a BK_DT bit set). */
bk_status bk_check_dtype_in(const char *op, const char *field, bk_dtype dtype, uint32_t mask);
/* GQA: INVALID_PROBLEM unless q_heads is a multiple of kv_heads (both already >= 1).
 * `kv_field` names kv_heads in the message ("desc.kv_heads"). */
bk_status bk_check_gqa(const char *op, int32_t q_heads, int32_t kv_heads, const char *kv_field);
/* Non-NULL pointer check for descriptors, args, plans and outputs. */
bk_status bk_check_ptr(const char *op, const char *name, const void *ptr);

/* Layout rules a tensor spec can ask for (bit flags). */
enum {
    BK_LAYOUT_ANY = 0,
    BK_LAYOUT_CONTIGUOUS = 1u << 0, /* row-major contiguous */
    BK_LAYOUT_INNER_UNIT = 1u << 1, /* innermost stride 1 (outer strides arbitrary) */
    BK_LAYOUT_OUTPUT = 1u << 2      /* written: no two positions may alias */
};
/* Allow stride 0 on axis `axis` (GQA broadcast of kv heads). */
#define BK_LAYOUT_BROADCAST_AXIS(axis) (1u << (8 + (axis)))

/* What a tensor must look like. `dims` names the expected extents, comma separated,
 * for the messages: "batch,kv_heads,kv_len,head_dim". */
typedef struct bk_tensor_spec {
    const char *name;
    bk_dtype dtype;
    int32_t rank;
    int64_t shape[BK_MAX_RANK];
    const char *dims;
    uint32_t layout;
} bk_tensor_spec;

/* Checks `t` against `spec`, in this order, with the first failure's status:
 *   t NULL, dtype, rank, each extent                   INVALID_PROBLEM
 *   a negative extent, an element count or byte size
 *   beyond int64                                       INVALID_PROBLEM
 *   a negative capacity                                INVALID_PROBLEM
 *   data NULL while the view has elements              INVALID_PROBLEM
 *   an empty view: a negative stride, or strides that
 *   reach past int64 bytes with its empty axes taken
 *   as extent 1 (kernels form its rows' offsets)       INVALID_PROBLEM, else SUCCESS
 *   a negative stride                                  INVALID_PROBLEM
 *   a reach (1 + largest offset) beyond int64 elements
 *   or bytes                                           INVALID_PROBLEM
 *   stride 0 on an axis of extent > 1 that the spec does not allow to broadcast:
 *     on an output                                     INVALID_PROBLEM
 *     on an input                                      UNSUPPORTED
 *   two positions of an output at one address          INVALID_PROBLEM
 *   not contiguous / inner stride not 1 when required  UNSUPPORTED
 *   capacity below the elements the view reaches       BUFFER_TOO_SMALL */
bk_status bk_check_tensor(const char *op, const bk_tensor *t, const bk_tensor_spec *spec);

/* An optional tensor (NULL = absent) that must be present exactly when its option is on:
 * `on` false and t non-NULL, or `on` true and t NULL -> INVALID_PROBLEM naming the tensor
 * and `field` (the descriptor field that turns it on: "desc.has_z"); else, when on,
 * bk_check_tensor. */
bk_status bk_check_optional_tensor(const char *op, const bk_tensor *t, bool on, const char *field,
                                   const bk_tensor_spec *spec);

/* 1 + the largest element offset the view reaches (0 for an empty view); -1 when a
 * stride is negative or the reach does not fit in int64. */
int64_t bk_tensor_span(const bk_tensor *t);

/* Element offset of index (i0, i1, ...) in t: sum of idx[k] * strides[k]. */
static inline int64_t bk_offset2(const bk_tensor *t, int64_t i0, int64_t i1)
{
    return i0 * t->strides[0] + i1 * t->strides[1];
}
static inline int64_t bk_offset3(const bk_tensor *t, int64_t i0, int64_t i1, int64_t i2)
{
    return i0 * t->strides[0] + i1 * t->strides[1] + i2 * t->strides[2];
}
static inline int64_t bk_offset4(const bk_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return i0 * t->strides[0] + i1 * t->strides[1] + i2 * t->strides[2] + i3 * t->strides[3];
}

/* ---------------------------------------------------------- selection -- */

/* One kernel an op can run. Tables list kernels fastest first; the last entry for a
 * target is its simplest (the reference path). */
typedef struct bk_kernel_entry {
    int32_t id;                /* op-local kernel id stored in bk_plan_info.kernel */
    bk_target_kind target;     /* CPU or CUDA */
    int32_t min_cc;            /* CUDA: lowest compute capability (major*10+minor) */
    int32_t max_cc;            /* CUDA: highest, 0 = no upper bound */
    bk_arch arch;              /* the arch reported in the SKU */
    uint32_t dtypes;           /* BK_DT mask of supported element dtypes */
    bk_backend backend;
    bk_precision precision;
    /* Optional: NULL if the kernel runs this descriptor, else a short reason
     * ("head_dim 96 is not in {64, 128, 256}"). */
    const char *(*rejects)(const void *desc);
} bk_kernel_entry;

/* The one selection routine: walks `table` and fills `info` with the first entry that
 * matches the target (kind and compute capability), the dtype, the preference
 * (DETERMINISTIC keeps only deterministic kernels; REFERENCE takes the last match; a
 * BK_MATH_TF32 kernel only under ALLOW_TF32, so a table lists its exact f32 kernel after it)
 * and whose `rejects` accepts `desc`. UNSUPPORTED with a sentence when none does. */
bk_status bk_select_kernel(const char *op, bk_category category, bk_op op_id,
                           const bk_kernel_entry *table, int32_t count, const void *desc,
                           bk_dtype dtype, bk_target target, bk_preference preference,
                           bk_plan_info *info);

/* The guarantee of every CPU reference kernel: f64 arithmetic whatever the element
 * type, each output computed by one thread in a fixed order. */
#define BK_PRECISION_CPU_REFERENCE ((bk_precision){BK_MATH_F64, BK_DTYPE_F64, true, true})

/* INVALID_PROBLEM unless `info` is non-NULL and was filled by the select of `op_id`. */
bk_status bk_check_plan(const char *op, const bk_plan_info *info, bk_op op_id);

/* Checks a target value and a preference value passed to select. */
bk_status bk_check_target(const char *op, bk_target target, bk_preference preference);

/* ---------------------------------------------------------- workspace -- */

#define BK_WS_ALIGN 256

/* Carves one caller buffer into aligned pieces. With base == NULL it only measures:
 * run the same layout function once to size the workspace and once to carve it. */
typedef struct bk_carver {
    char *base;
    size_t offset;
} bk_carver;

static inline bk_carver bk_carver_start(void *base)
{
    bk_carver c = {(char *)base, 0};
    return c;
}
/* Next `bytes` bytes, aligned to BK_WS_ALIGN (NULL while measuring). Saturating: once a
 * piece is SIZE_MAX bytes (bk_bytes' overflow) or the total passes size_t, the offset
 * stays SIZE_MAX, so a layout function returns SIZE_MAX for a size that does not fit. */
void *bk_carve(bk_carver *c, size_t bytes);

/* WORKSPACE_TOO_SMALL (or INVALID_PROBLEM for a NULL buffer) unless ws holds `need`;
 * INVALID_PROBLEM when `need` is SIZE_MAX (a workspace_size that overflowed). */
bk_status bk_check_workspace(const char *op, const bk_workspace *ws, size_t need);

/* ---------------------------------------------------------- cuda glue -- */

/* Implemented in src/cuda/device.cu when CUDA is built, else in src/core/target.c. */
bk_status bk_cuda_device_cc(int32_t device, int32_t *cc_major, int32_t *cc_minor);

#ifdef __cplusplus
}
#endif

#endif /* BK_CORE_H */
