/* bk_ssd_test.h - the fixture shared by test_ssd_fwd.c, test_ssd_bwd.c and
 * test_ssd_step.c for the Mamba-2 options: a random problem (every tensor as a buffer, a
 * possibly padded view and its values in f64, row-major), its descriptor and argument
 * structs, and an independent f64 reference: the sequential recurrence, one step at a time,
 * written for the tests (never the library code). */
#ifndef BK_SSD_TEST_H
#define BK_SSD_TEST_H
#include "bk_test.h"

/* One tensor: host buffer, view (padded when pad > 0) and values as f64 (row-major). */
typedef struct bkt_buf {
    void *data;
    int64_t span; /* elements of the buffer */
    int64_t numel;
    bk_tensor view;
    double *val;
} bkt_buf;

/* The problem and its options, with the descriptors' meaning (ngroups 0 = heads). */
typedef struct bkt_ssd_opts {
    int64_t b, l, h, d, n;
    int32_t chunk;
    int32_t ngroups;
    bk_ssd_skip skip;
    bool z, bias, softplus, limit;
    double lo, hi;    /* the dt limit */
    bool init, final; /* initial states in, final states out */
    bool seq;         /* seq_idx: random boundaries (about one position in `seq_every`; 0:
                         the fixed ones of bkt_ssd_cut) */
    int32_t seq_every;
    int32_t nv; /* varlen sequences (b must be 1); seq_idx then follows cu_seqlens */
} bkt_ssd_opts;

typedef struct bkt_ssd_problem {
    bkt_ssd_opts o;
    bk_dtype dtype;
    int64_t g; /* groups, resolved */
    bkt_buf x, dt, a, b, c, skip, z, bias, init;
    int32_t *seq, *cu; /* i32 [B, L] and [nv + 1] (NULL when absent) */
    bk_tensor seq_view, cu_view;
} bkt_ssd_problem;

/* Each function is documented where it is defined, in bk_ssd_test.c. */
void bkt_buf_make(bkt_buf *t, bk_dtype dtype, int32_t rank, const int64_t *shape, int64_t pad, double lo, double hi);
void bkt_buf_free(bkt_buf *t);
bool bkt_ssd_cut(int64_t b, int64_t t);
void bkt_ssd_make(bkt_ssd_problem *p, const bkt_ssd_opts *o, bk_dtype dtype, int64_t pad);
void bkt_ssd_free(bkt_ssd_problem *p);
bk_ssd_desc bkt_ssd_desc(const bkt_ssd_problem *p);
bk_ssd_fwd_args bkt_ssd_fwd_inputs(const bkt_ssd_problem *p);
void bkt_ssd_ref(const bkt_ssd_problem *p, double *y, double *final, double *varlen);
void bkt_ssd_ref_sums(const bkt_ssd_problem *p, const double *dy, const double *dfinal, double *da, double *da_mag,
                      double *dbias, double *dbias_mag);
void bkt_ssd_opts_text(const bkt_ssd_opts *o, char *buf, size_t size);
bk_tensor bkt_buf_on(bkt_dev *dev, const bkt_buf *t, bool out);
const bk_tensor *bkt_opt_on(bkt_dev *dev, const bkt_buf *t, bool out, bk_tensor *slot);
bk_ssd_fwd_args bkt_ssd_fwd_inputs_on(bkt_dev *dev, const bkt_ssd_problem *p, bk_tensor slots[6]);
bk_tensor bkt_moved(bkt_dev *dev, bk_tensor view, void *buf, size_t bytes, bool out);
/* An op's select reduced to what bkt_ssd_tf32_select checks: the plan's info and workspace. */
typedef bk_status (*bkt_ssd_select_fn)(const bk_ssd_desc *d, bk_target t, bk_preference p, bk_plan_info *info,
                                       size_t *ws);
void bkt_ssd_tf32_select(const char *op, bkt_ssd_select_fn select);
/* Defines `static bk_status name(...)`, a bkt_ssd_select_fn over an op's select and
 * workspace_size (plan type plan_t). */
#define BKT_SSD_SELECT_INFO(name, plan_t, select, workspace_size)                                          \
    static bk_status name(const bk_ssd_desc *d, bk_target t, bk_preference p, bk_plan_info *info, size_t *ws) \
    {                                                                                                       \
        plan_t plan;                                                                                        \
        bk_status st = select(d, t, p, &plan);                                                              \
        if (st == BK_STATUS_SUCCESS) {                                                                      \
            *info = plan.info;                                                                              \
            *ws = workspace_size(&plan);                                                                    \
        }                                                                                                   \
        return st;                                                                                          \
    }

#endif
