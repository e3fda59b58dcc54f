/*
 * baracuda.h - the core of the baracuda C API.
 *
 * baracuda is a library of attention and sequence-mixing kernels (flash attention,
 * paged KV prefill/decode, KV-cache append, ALiBi, Mamba-2 SSD) behind one plan-based
 * API. Every op follows the same five steps:
 *
 *   1. descriptor   a plain struct of the problem's extents, dtype and options;
 *   2. select       bk_<op>_select(&desc, target, preference, &plan) validates the
 *                   descriptor and picks a kernel for the target. No allocation, no
 *                   device work. The plan is a plain value: copy it, never destroy it;
 *   3. can_implement bk_<op>_can_implement(&plan, &args) checks the tensors (dtypes,
 *                   shapes, strides, capacities) against the plan;
 *   4. workspace_size bk_<op>_workspace_size(&plan): bytes of scratch the caller lends;
 *                   SIZE_MAX when the size does not fit in size_t (run then refuses
 *                   with INVALID_PROBLEM, whatever workspace it is given);
 *   5. run          bk_<op>_run(&plan, stream, workspace, &args): calls can_implement
 *                   first, then computes. On a CUDA target it is asynchronous on the
 *                   caller's stream, allocates nothing and never synchronises.
 *
 * Errors: every function returns a bk_status. On failure bk_last_error() holds one
 * sentence naming the op, the tensor, what was expected and what was got. A call
 * that fails writes no byte of any output. Extents are int32 but their products are
 * not: every element count, byte size and view reach is computed with checked int64
 * arithmetic, and one that does not fit is INVALID_PROBLEM with a sentence (never a
 * wrapped value; see bk_tensor).
 *
 * This header is C11 and includes the per-family headers at its end.
 */
#ifndef BARACUDA_H
#define BARACUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BK_VERSION_MAJOR 0
#define BK_VERSION_MINOR 1
#define BK_VERSION_PATCH 0

/* ---------------------------------------------------------------- status -- */

/* Result of every baracuda call. */
typedef enum bk_status {
    BK_STATUS_SUCCESS = 0,
    BK_STATUS_INVALID_PROBLEM = 1,     /* inconsistent extents or shapes, bad pointer,
                                          non-finite scale, malformed index data */
    BK_STATUS_UNSUPPORTED = 2,         /* valid problem this target does not implement */
    BK_STATUS_BUFFER_TOO_SMALL = 3,    /* a tensor's capacity is below what its view reaches */
    BK_STATUS_WORKSPACE_TOO_SMALL = 4, /* workspace bytes below bk_<op>_workspace_size */
    BK_STATUS_OUT_OF_RANGE = 5,        /* a data-dependent index or offset outside its buffer */
    BK_STATUS_DEVICE_ERROR = 6,        /* the CUDA runtime reported an error */
    BK_STATUS_NO_DEVICE = 7            /* no usable CUDA device (or built without CUDA) */
} bk_status;

/* The status' name, e.g. "BK_STATUS_UNSUPPORTED". Never NULL. */
const char *bk_status_name(bk_status status);

/* The sentence describing the last failure on this thread, e.g.
 * "sdpa_fwd: k.shape[2] is 100, expected kv_len = 128". "" when none.
 * The pointer stays valid until the next baracuda call on this thread. */
const char *bk_last_error(void);

/* ----------------------------------------------------------------- dtypes -- */

/* Element types. f16/bf16 are stored as 16-bit IEEE half / bfloat16. */
typedef enum bk_dtype {
    BK_DTYPE_F32 = 0,
    BK_DTYPE_F64 = 1,
    BK_DTYPE_F16 = 2,
    BK_DTYPE_BF16 = 3,
    BK_DTYPE_I32 = 4,
    BK_DTYPE_I64 = 5
} bk_dtype;

/* Bytes per element of `dtype` (0 for an unknown value). */
size_t bk_dtype_size(bk_dtype dtype);

/* Lower-case name: "f32", "f64", "f16", "bf16", "i32", "i64" ("?" if unknown). */
const char *bk_dtype_name(bk_dtype dtype);

/* Host conversions between f32 and the 16-bit formats (round to nearest even;
 * NaN stays NaN). For callers preparing data; the ops do their own. */
uint16_t bk_f32_to_f16(float x);
float bk_f16_to_f32(uint16_t h);
uint16_t bk_f32_to_bf16(float x);
float bk_bf16_to_f32(uint16_t h);

/* ---------------------------------------------------------------- tensors -- */

#define BK_MAX_RANK 6

/* A non-owning view of a strided tensor (DLPack's conventions).
 *   data      first element (host memory for a CPU plan, device memory for CUDA);
 *   dtype     element type;
 *   rank      number of axes, 0..BK_MAX_RANK;
 *   shape     extents, shape[0] outermost;
 *   strides   in ELEMENTS, not bytes; must be >= 0. A stride of 0 broadcasts
 *             (allowed only where an op says so, e.g. the kv-head axis for GQA);
 *   capacity  number of elements addressable from `data`, 0 = unknown (skip the check);
 *             negative is INVALID_PROBLEM.
 * Every op's can_implement refuses (INVALID_PROBLEM, with a sentence) a view whose element
 * count, byte size or reach (1 + its largest offset) does not fit in int64: extents
 * that multiply past int64 never wrap. An empty view (an extent 0) needs strides >= 0
 * that reach within int64 bytes as if its empty axes had extent 1.
 * Inputs are only read through the view; outputs are written only at the positions
 * the view addresses. */
typedef struct bk_tensor {
    void *data;
    bk_dtype dtype;
    int32_t rank;
    int64_t shape[BK_MAX_RANK];
    int64_t strides[BK_MAX_RANK];
    int64_t capacity;
} bk_tensor;

/* A contiguous row-major view of `rank` axes with the given shape; capacity is set to
 * the element count (0, unknown, when an extent is negative or the count overflows
 * int64; strides saturate at INT64_MAX). rank is clamped to [0, BK_MAX_RANK]. */
bk_tensor bk_tensor_contiguous(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape);

/* Number of elements the view describes (product of the shape; 1 for rank 0); -1 when
 * an extent is negative, the rank is outside [0, BK_MAX_RANK] or the product does not
 * fit in int64. */
int64_t bk_tensor_numel(const bk_tensor *t);

/* True when the strides are the row-major strides of the shape (axes of extent 1 are
 * ignored). */
bool bk_tensor_is_contiguous(const bk_tensor *t);

/* ---------------------------------------------------------------- targets -- */

typedef enum bk_target_kind {
    BK_TARGET_CPU = 0,
    BK_TARGET_CUDA = 1
} bk_target_kind;

/* Where a plan runs. For CUDA: the device ordinal and its compute capability
 * (e.g. 9.0 for an H100). */
typedef struct bk_target {
    bk_target_kind kind;
    int32_t device;
    int32_t cc_major;
    int32_t cc_minor;
} bk_target;

/* The host CPU. */
bk_target bk_target_cpu(void);

/* A CUDA device, with its compute capability read from the runtime.
 * Errors: BK_STATUS_NO_DEVICE if the library was built without CUDA, no device is
 * present or `device` is out of range. */
bk_status bk_target_cuda(int32_t device, bk_target *out);

/* A CUDA target for a given compute capability without touching any device (for
 * planning ahead, tests and tools). */
bk_target bk_target_cuda_cc(int32_t device, int32_t cc_major, int32_t cc_minor);

/* True when the library was built with its CUDA backend. */
bool bk_has_cuda(void);

/* ------------------------------------------------------------ preferences -- */

/* What select should favour when several kernels can run a problem. No preference but
 * BK_PREFER_ALLOW_TF32 selects a kernel whose precision.math is BK_MATH_TF32: f32 problems
 * get f32 arithmetic unless the caller opts in (as torch's allow_tf32, off by default). */
typedef enum bk_preference {
    BK_PREFER_FASTEST = 0,       /* the fastest kernel for the target */
    BK_PREFER_DETERMINISTIC = 1, /* only kernels whose output is bit-identical on rerun */
    BK_PREFER_REFERENCE = 2,     /* the simplest, most exact kernel (the reference path) */
    BK_PREFER_ALLOW_TF32 = 3     /* as FASTEST, and f32 data may run on tensor cores in TF32
                                    (operands rounded to 10-bit mantissas, f32 accumulate;
                                    the plan's precision.math says BK_MATH_TF32). Ops and
                                    targets without a TF32 kernel (today all but ssd_fwd and
                                    ssd_bwd on CUDA) select as BK_PREFER_FASTEST */
} bk_preference;

/* ----------------------------------------------------- sku and precision -- */

typedef enum bk_category {
    BK_CATEGORY_ATTENTION = 0,
    BK_CATEGORY_SSM = 1
} bk_category;

typedef enum bk_op {
    BK_OP_SDPA_FWD = 0,
    BK_OP_SDPA_BWD,
    BK_OP_KV_APPEND,
    BK_OP_PAGED_KV_APPEND,
    BK_OP_PAGED_DECODE,
    BK_OP_PAGED_PREFILL,
    BK_OP_ATTENTION_MERGE,
    BK_OP_ALIBI_FWD,
    BK_OP_ALIBI_BWD,
    BK_OP_SSD_FWD,
    BK_OP_SSD_BWD,
    BK_OP_SSD_STEP,
    BK_OP_COUNT
} bk_op;

typedef enum bk_arch {
    BK_ARCH_CPU = 0,
    BK_ARCH_SM80 = 80,
    BK_ARCH_SM90 = 90
} bk_arch;

typedef enum bk_backend {
    BK_BACKEND_REFERENCE = 0, /* the simplest kernel of a target: plain loops (the CPU backend in
                                 f64; on CUDA the generic CUDA-core kernels that cover every option) */
    BK_BACKEND_BESPOKE = 1,   /* baracuda's own tuned kernels (tensor cores, pipelines) */
    BK_BACKEND_CUBLAS = 2     /* routed through cuBLAS */
} bk_backend;

/* Precision of the arithmetic inside a kernel. */
typedef enum bk_math_precision {
    BK_MATH_F64 = 0,
    BK_MATH_F32 = 1,
    BK_MATH_TF32 = 2,           /* f32 data, tensor-core products of TF32 operands (f32 rounded
                                   to a 10-bit mantissa), f32 accumulate; only with
                                   BK_PREFER_ALLOW_TF32 */
    BK_MATH_F16_BF16_TENSOR = 3 /* 16-bit operands on tensor cores, f32 accumulate */
} bk_math_precision;

/* What a plan guarantees numerically. `deterministic`: reruns on the same inputs give
 * bit-identical outputs. `bit_stable`: the same holds across runs of the process on
 * the same hardware (no dependence on scheduling or thread count). */
typedef struct bk_precision {
    bk_math_precision math;
    bk_dtype accumulator;
    bool deterministic;
    bool bit_stable;
} bk_precision;

/* A kernel's identity: telemetry and autotuner key. */
typedef struct bk_sku {
    bk_category category;
    bk_op op;
    bk_dtype dtype;
    bk_arch arch;
    bk_backend backend;
} bk_sku;

/* Names of the enum values ("sdpa_fwd", "attention", "sm90", "bespoke", ...). */
const char *bk_op_name(bk_op op);
const char *bk_category_name(bk_category category);
const char *bk_arch_name(bk_arch arch);
const char *bk_backend_name(bk_backend backend);

/* Writes "category/op/dtype/arch/backend", e.g. "attention/sdpa_fwd/bf16/sm90/bespoke",
 * into buf (always NUL-terminated when size > 0). Returns the length the full name
 * needs, excluding the NUL (like snprintf). */
size_t bk_sku_name(const bk_sku *sku, char *buf, size_t size);

/* -------------------------------------------------------------- workspace -- */

/* Scratch memory lent to run() by the caller, in the plan's memory space. A plan
 * whose workspace_size is 0 accepts {NULL, 0}. */
typedef struct bk_workspace {
    void *data;
    size_t bytes;
} bk_workspace;

/* ------------------------------------------------------------------ plans -- */

/* The part every plan shares, filled by select:
 *   target      where the plan runs;
 *   preference  what select was asked to favour;
 *   sku         the chosen kernel's identity;
 *   precision   its numerical guarantee;
 *   kernel      the op-internal id of the chosen kernel (opaque to callers). */
typedef struct bk_plan_info {
    bk_target target;
    bk_preference preference;
    bk_sku sku;
    bk_precision precision;
    int32_t kernel;
} bk_plan_info;

#ifdef __cplusplus
}
#endif

#include "baracuda/attention.h"
#include "baracuda/alibi.h"
#include "baracuda/paged.h"
#include "baracuda/kvcache.h"
#include "baracuda/ssd.h"

#endif /* BARACUDA_H */
