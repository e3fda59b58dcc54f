/*
 * fuzz.h - what every fuzz target (fuzz/fuzz_<family>.c) shares: one byte reader, the
 * tensor views built in guarded buffers from those bytes, and the assertions.
 *
 * A target defines `void fz_body(fz *f)`: it reads a descriptor from the bytes, calls
 * select, builds the tensors with fz_tensor (extents usually the descriptor's, sometimes
 * mutated; strides contiguous, padded, random, 0 or huge; capacities exact, one short,
 * unknown (only where the buffer really holds the view), negative or tiny; data NULL at
 * times), then can_implement, workspace_size and, when the work is small (fz_cheap),
 * run on the CPU. fuzz.c provides LLVMFuzzerTestOneInput around it and, built with
 * FZ_REPLAY_MAIN, a main() that replays corpus files or folders (the CTest mode).
 *
 * What is asserted (fz_status, fz_after_run, fz_end; a violation prints and aborts):
 *   - every status is one the call may return (select: SUCCESS, INVALID_PROBLEM,
 *     UNSUPPORTED; can_implement adds BUFFER_TOO_SMALL and OUT_OF_RANGE; run adds
 *     WORKSPACE_TOO_SMALL); a failure leaves a sentence starting with "<op>:";
 *   - a call given a view whose capacity is below what it reaches does not succeed;
 *   - a failed select leaves *plan untouched;
 *   - input buffers never change; an output buffer is unchanged on failure, and on
 *     success only bytes of elements its view addresses may change;
 *   - the canary bytes before and after every buffer (and the workspace) never change.
 * Sanitizers (address, undefined) report the rest.
 */
#ifndef BK_FUZZ_H
#define BK_FUZZ_H

#include "baracuda/baracuda.h"

#include <stddef.h>
#include <stdint.h>

#define FZ_MAX_BUFS 40

/* What a tensor is to the call, for the checks after run. */
typedef enum fz_role { FZ_IN = 0, FZ_OUT = 1 } fz_role;

typedef struct fz_buf {
    unsigned char *mem;    /* canary | elements | canary */
    size_t bytes;          /* element bytes (between the canaries) */
    unsigned char *before; /* snapshot of the element bytes (fz_snapshot) */
    bk_tensor view;        /* the view built over it (outputs: for the position check) */
    fz_role role;
} fz_buf;

typedef struct fz {
    const uint8_t *p;
    size_t n;
    fz_buf bufs[FZ_MAX_BUFS];
    int nbufs;
    size_t total_bytes;
    int short_views; /* views given to the current call that it must refuse (capacity below
                        the reach, NULL data, negative capacity, reach beyond int64) */
    bool ws_short;   /* the workspace is below workspace_size (run must refuse it) */
    struct fz_sel_args {
        bk_target target;
        bk_preference preference;
        bool null_desc, null_plan;
    } sel;           /* the current select call's arguments (fz_select_begin) */
    const char *op;
} fz;

/* Implemented by each target. */
void fz_body(fz *f);

/* ---- bytes (zeros once the input is used up) ---- */
uint8_t fz_u8(fz *f);
uint32_t fz_u32(fz *f);
bool fz_bool(fz *f);
/* An extent for a descriptor: mostly 0..8, sometimes 16..257 or a dim the kernels
 * like, rarely an edge (-1, INT32_MIN, 2^16, 2^30, INT32_MAX - 1, INT32_MAX). */
int32_t fz_extent(fz *f);
/* One of the n values. */
int32_t fz_pick(fz *f, const int32_t *values, int n);
/* A dtype value: mostly one of f32, f64, f16, bf16, rarely i32, i64 or not an enum value. */
bk_dtype fz_dtype(fz *f);
/* A scalar: mostly an ordinary value, sometimes 0, negative, huge, inf or NaN. */
double fz_scalar(fz *f);
/* The CPU target mostly, sometimes a CUDA one (by compute capability) or a bad value. */
bk_target fz_target(fz *f);
/* A preference value (rarely not an enum value). */
bk_preference fz_preference(fz *f);
/* p, or NULL once in 32 draws. */
void *fz_maybe_null(fz *f, void *p);

/* ---- tensors ---- */
/* A view of `shape` (usually as given, sometimes mutated) in a fresh guarded buffer;
 * float data is filled with values in [-1, 1] (or specials), integer data with 0..7. */
bk_tensor fz_tensor(fz *f, bk_dtype dtype, int32_t rank, const int64_t *shape, fz_role role);
/* Makes the input view `in` also the output of an in-place call (alibi_fwd's y may be
 * scores): its buffer is then checked as an output through that view. */
void fz_in_place(fz *f, const bk_tensor *in);
/* An optional tensor argument: &slot = fz_tensor(...) or NULL. */
const bk_tensor *fz_optional(fz *f, bk_tensor *slot, bk_dtype dtype, int32_t rank, const int64_t *shape,
                             fz_role role);

/* Index data written into an integer view's buffer (contiguous order):
 *   FZ_IDX_PTR     prefix sums 0 = p[0] <= ... <= p[n-1] = limit;
 *   FZ_IDX_STRICT  the same, strictly increasing (page tables' kv_indptr);
 *   FZ_IDX_ID      ids in [0, limit);
 *   FZ_IDX_LEN     lengths in [1, limit];
 *   FZ_IDX_OFFSET  offsets in [0, limit];
 * then, as the bytes say, one value broken: negative, past the end, INT32/64 extremes,
 * two values swapped. */
typedef enum fz_index_kind { FZ_IDX_PTR, FZ_IDX_STRICT, FZ_IDX_ID, FZ_IDX_LEN, FZ_IDX_OFFSET } fz_index_kind;
void fz_fill_index(fz *f, const bk_tensor *t, fz_index_kind kind, int64_t limit);
/* The first k values of an index view's buffer as i64 (0 past the allocation). */
int64_t fz_index_at(const fz *f, const bk_tensor *t, int64_t k);

/* The five tensors of a paged cache for `batch` requests (paged.h): the pool of `pool`
 * role, kv_indices of a length the bytes pick, kv_indptr strictly increasing up to it,
 * page ids below num_pages, last_page_len in [1, page_size], each possibly broken. */
bk_paged_kv fz_paged_kv(fz *f, const bk_paged_kv_desc *d, int32_t batch, fz_role pool);

/* ---- workspace ---- */
/* A guarded workspace for `need` bytes: exact, one short, NULL or {NULL, 0}, as the
 * bytes say. Nothing is allocated for need == SIZE_MAX or above the budget. */
bk_workspace fz_workspace(fz *f, size_t need);

/* ---- the plan life cycle ---- */
/* Reads f->sel (select's target, preference and NULL choices) from the bytes, in a fixed
 * order (never inside one expression: C leaves the order of arguments unspecified), and
 * poisons the plan (so fz_selected can see a write). */
void fz_select_begin(fz *f, void *plan, size_t bytes);
/* Checks select's status and that a failed select left the plan untouched. */
bk_status fz_selected(fz *f, const char *op, const void *plan, size_t bytes, bk_status s);
/* Whether can_implement / run get a NULL args pointer this time. */
bool fz_null(fz *f);

/* select for op `op` (bk_<op>_select) with desc and plan (NULL at times, as f->sel says):
 * true when it succeeded. */
#define FZ_SELECT(f, op, desc, plan)                                                                 \
    (fz_select_begin((f), (plan), sizeof *(plan)),                                                   \
     fz_selected((f), #op, (plan), sizeof *(plan),                                                   \
                 bk_##op##_select((f)->sel.null_desc ? NULL : (desc), (f)->sel.target,               \
                                  (f)->sel.preference, (f)->sel.null_plan ? NULL : (plan))) ==       \
         BK_STATUS_SUCCESS)

/* The rest of the life cycle of op `op` on a selected plan and built args: can_implement,
 * workspace_size, a workspace from the bytes, and when `work` is cheap, run between a
 * snapshot and the checks of fz_after_run. */
#define FZ_FINISH(f, op, plan, args, work)                                                         \
    do {                                                                                           \
        bool null_args_ = fz_null(f);                                                              \
        fz_status((f), #op, FZ_CAN_IMPLEMENT, bk_##op##_can_implement((plan), null_args_ ? NULL : (args))); \
        bk_workspace ws_ = fz_workspace((f), bk_##op##_workspace_size(plan));                     \
        if (fz_cheap(work)) {                                                                      \
            fz_snapshot(f);                                                                        \
            bk_status run_ = bk_##op##_run((plan), NULL, ws_, null_args_ ? NULL : (args));         \
            fz_status((f), #op, FZ_RUN, run_);                                                     \
            fz_after_run((f), run_);                                                               \
        }                                                                                          \
    } while (0)

/* ---- assertions ---- */
typedef enum fz_call { FZ_SELECT, FZ_CAN_IMPLEMENT, FZ_RUN } fz_call;
/* Checks `s` for the call (see the top of this file); returns s. */
bk_status fz_status(fz *f, const char *op, fz_call call, bk_status s);
/* True when the work of a run (elements times inner loop, an estimate) is small enough
 * to compute on the CPU under a sanitizer. */
bool fz_cheap(double work);
/* Snapshots every buffer before run. */
void fz_snapshot(fz *f);
/* After run: inputs unchanged; outputs unchanged on failure, else changed only at
 * positions their views address. */
void fz_after_run(fz *f, bk_status s);
/* Starts a new call: the short-view count back to 0. */
void fz_new_call(fz *f);

#endif
