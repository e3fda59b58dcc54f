/*
 * bk_test.h - the small test kit every tests/test_<op>.c uses.
 *
 *   random inputs   seeded from BK_TEST_SEED, else from the clock; the seed is printed
 *   host buffers    allocate, fill with uniform random values (rounded to the dtype),
 *                   poison with NaN, gather a strided view into f64 in row-major order
 *   views           contiguous or padded-stride views over a buffer
 *   checks          ||out - ref|| / ||ref|| against the dtype's tolerance, NaN = unwritten;
 *                   exact status plus "outputs untouched" for bad inputs
 *   summary         bkt_finish prints "N passed, N failed" and returns the exit code
 *
 * The references in the tests are naive f64 loops written for the test, never the
 * code under test. This kit only reads and writes elements (through the public
 * f16/bf16 converters, which test_core checks bit by bit).
 */
#ifndef BK_TEST_H
#define BK_TEST_H

#include "baracuda/baracuda.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Starts a test program: reads BK_TEST_SEED or draws a seed, prints it. */
void bkt_init(const char *program);
/* Prints "N passed, N failed" and returns 0 when nothing failed, 1 otherwise. */
int bkt_finish(void);

/* Records one check. On failure prints "FAIL <what>: <detail>". Returns cond. */
bool bkt_check(bool cond, const char *what, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prints a skip line for a case that cannot run here (e.g. no GPU). Skips are counted. */
void bkt_skip(const char *what, const char *why);
/* Whether the case named `what` runs: with BK_TEST_ONLY set, only names containing that
 * string do (to rerun one case); else every case. With BK_TEST_TRACE=1 it also prints
 * "case <seconds since the first case> <what>" to stderr (unbuffered) for each case that
 * runs, so the last line names the case a hang or a crash stopped in. */
bool bkt_case(const char *what);

/* ---- randomness ---- */
uint64_t bkt_rand_u64(void);
double bkt_uniform(double lo, double hi);
/* Uniform integer in [lo, hi]. */
int64_t bkt_randint(int64_t lo, int64_t hi);

/* ---- buffers ---- */
/* Zeroed host buffer of n elements (never NULL; aborts the test program if out of memory). */
void *bkt_alloc(bk_dtype dtype, int64_t n);
void bkt_free(void *p);
double bkt_get(const void *p, bk_dtype dtype, int64_t i);
void bkt_set(void *p, bk_dtype dtype, int64_t i, double v);
/* Fills n elements with uniform values in [lo, hi), rounded to the dtype. */
void bkt_fill(void *p, bk_dtype dtype, int64_t n, double lo, double hi);
/* Fills n elements with NaN (floats) or 0x7f.. patterns (ints). */
void bkt_poison(void *p, bk_dtype dtype, int64_t n);
/* Copy of n bytes (for "untouched" checks); free with bkt_free. */
void *bkt_snapshot(const void *p, size_t bytes);
bool bkt_same_bytes(const void *a, const void *b, size_t bytes);

/* ---- views ---- */
/* Contiguous view (capacity = numel). */
bk_tensor bkt_view(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape);
/* Row-major view whose axes are padded: each axis' stride is the next one's reach plus
 * `pad` elements (inner stride stays 1). Elements needed: bkt_view_span(). */
bk_tensor bkt_view_padded(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape, int64_t pad);
/* Elements a view reaches from its data pointer (1 + max offset). */
int64_t bkt_view_span(const bk_tensor *t);
/* All elements of the view, row-major, into dst[numel] as f64. */
void bkt_gather(const bk_tensor *t, double *dst);
/* Element at multi-index idx of the view. */
double bkt_at(const bk_tensor *t, const int64_t *idx);

/* True when every element of buf[0..n) (elements of t->dtype, from t->data) that the
 * view t does NOT address still holds its bytes of `before`: padding between the rows
 * of a strided output was not written. */
bool bkt_untouched_outside(const bk_tensor *t, const void *before, int64_t n);

/* ---- comparisons ---- */
/* Relative error ||out - ref||_2 / ||ref||_2 (absolute when ||ref|| == 0); +inf if any
 * out is NaN where ref is not. */
double bkt_rel_err(const double *out, const double *ref, int64_t n);
/* Tolerance for outputs stored as `dtype` from an exact computation: f64 1e-12, f32
 * 1e-5; f16/bf16: twice the error of the f64 reference rounded to the dtype (the error
 * of an ideal same-precision result), and at least half a unit roundoff. */
double bkt_tol(bk_dtype dtype, const double *ref, int64_t n);
/* Tolerance for f32 outputs of a TF32 plan (tensor-core operands rounded to 10-bit
 * mantissas): bkt_tol's rule with TF32 rounding (round to nearest, ties away, as
 * cvt.rna.tf32.f32) in place of the output's: twice the error of the f64 reference
 * rounded to TF32, and at least half its unit roundoff (2^-12). */
double bkt_tol_tf32(const double *ref, int64_t n);
/* Compares the view `out` against ref[numel] with bkt_tol (times `slack`, 1 normally). */
bool bkt_check_close(const char *what, const bk_tensor *out, const double *ref, double slack);
/* bkt_check_close with the relative tolerance `tol` given. */
bool bkt_check_close_tol(const char *what, const bk_tensor *out, const double *ref, double tol);

/* A table of calls that must fail, each a good call's args with one field changed:
 *     BKT_BAD_TABLE(bk_x_args, cases, 16);
 *     BKT_BAD(cases, good, "x.shape[0] != batch", x.shape[0], 3, BK_STATUS_INVALID_PROBLEM);
 *     for (int c = 0; c < cases_n; c++) ... cases[c].what, cases[c].args, cases[c].want */
#define BKT_BAD_TABLE(args_type, name, capacity) \
    struct {                                     \
        const char *what;                        \
        args_type args;                          \
        bk_status want;                          \
    } name[capacity];                            \
    int name##_n = 0
#define BKT_BAD(name, good, text, field, value, status) \
    do {                                                \
        name[name##_n].what = (text);                   \
        name[name##_n].args = (good);                   \
        name[name##_n].args.field = (value);            \
        name[name##_n++].want = (status);               \
    } while (0)

/* Expects exactly `want`; prints bk_last_error() on a mismatch. */
bool bkt_expect_status(bk_status got, bk_status want, const char *what);
/* Expects INVALID_PROBLEM with a sentence that starts with `op` and says the count or
 * reach does not fit ("... int64 ..."): an overflowing extent product, never wrapped. */
bool bkt_expect_overflow(bk_status got, const char *op, const char *what);
/* A view of `shape` over `data` for overflow tests: row-major strides saturating at
 * INT64_MAX (bk_tensor_contiguous), capacity 0 (unknown). No element is ever read. */
bk_tensor bkt_view_huge(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape);
/* The five tensors of a paged cache (paged.h) of desc `d` for `batch` requests as
 * bkt_view_huge views over `data` (one kv_indices entry): for overflow tests. */
bk_paged_kv bkt_paged_kv_huge(const bk_paged_kv_desc *d, int32_t batch, void *data);

/* ---- running one test body on any target ----
 * Tests keep every buffer on the host. To run on a target, wrap the run call:
 *     bkt_dev dev = bkt_dev_begin(target);
 *     args.q.data = bkt_dev_in(&dev, args.q.data, q_bytes);      input: copied up
 *     args.y.data = bkt_dev_out(&dev, args.y.data, y_bytes);     output: copied up (its poison
 *                                                                too) and back at the end
 *     status = bk_..._run(&plan, bkt_dev_stream(&dev), ws, &args);
 *     bkt_dev_end(&dev);                                          sync, copy outputs back, free
 * On the CPU target every call returns the host pointer unchanged and copies nothing. */
#define BKT_DEV_MAX 32
typedef struct bkt_dev {
    bk_target target;
    int count;
    void *host[BKT_DEV_MAX];
    void *device[BKT_DEV_MAX];
    size_t bytes[BKT_DEV_MAX];
    bool copy_back[BKT_DEV_MAX];
    void *stream;
} bkt_dev;
bkt_dev bkt_dev_begin(bk_target target);
void *bkt_dev_in(bkt_dev *dev, void *host, size_t bytes);
void *bkt_dev_out(bkt_dev *dev, void *host, size_t bytes);
/* The stream to pass to run (a non-default stream on CUDA, to catch hidden default-stream work). */
void *bkt_dev_stream(bkt_dev *dev);
/* Synchronises, copies outputs back, frees. Returns false (and records a failure) on a CUDA error. */
bool bkt_dev_end(bkt_dev *dev);

/* True when BK_TEST_QUICK=1 (sanitizer runs): tests may run a smaller sweep. */
bool bkt_quick(void);

/* ---- GPU ---- */
/* Fills *target with CUDA device 0 and returns true; otherwise prints a skip line for
 * `what` and returns false. With BK_REQUIRE_GPU=1 in the environment a missing
 * device is a failure, not a skip. */
bool bkt_cuda_target(const char *what, bk_target *target);

#endif
