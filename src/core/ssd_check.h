/* ssd_check.h - the checks the SSD ops share (src/core/ssd_check.c): the descriptors and
 * their options, the head_dim/state_dim limit every kernel entry applies, the "no option"
 * capability test of the CUDA chunk-scan kernels, and the tensor specs of the tensors the
 * ops read and write. Written once so ssd_fwd, ssd_bwd and ssd_step cannot drift apart. */
#ifndef BK_CORE_SSD_CHECK_H
#define BK_CORE_SSD_CHECK_H
#include "core/core.h"

/* Which shape a tensor of the chunk-scan ops has (G = ngroups resolved, S = n_varlen_seqs). */
typedef enum bk_ssd_role {
    BK_SSD_ROLE_X,      /* [batch, seq_len, heads, head_dim]: x, y, dy, dx, z, dz */
    BK_SSD_ROLE_DT,     /* [batch, seq_len, heads]: dt, ddt */
    BK_SSD_ROLE_A,      /* [heads]: a, da, dt_bias, ddt_bias */
    BK_SSD_ROLE_BC,     /* [batch, seq_len, G, state_dim]: b, c, db, dc */
    BK_SSD_ROLE_STATE,  /* [batch, heads, head_dim, state_dim]: initial/final states, grads */
    BK_SSD_ROLE_VARLEN, /* [S, heads, head_dim, state_dim]: varlen_states */
    BK_SSD_ROLE_SEQ_IDX /* i32 [batch, seq_len]: seq_idx */
} bk_ssd_role;

/* The per-token options both descriptors carry (bk_ssd_desc, bk_ssd_step_desc), with
 * ngroups resolved (heads when the descriptor says 0). The CPU kernels read them too. */
typedef struct bk_ssd_opts {
    int32_t heads, head_dim, groups;
    bk_ssd_skip skip;
    bool has_z, has_dt_bias, dt_softplus, has_dt_limit;
    double dt_min, dt_max;
} bk_ssd_opts;

bk_ssd_opts bk_ssd_desc_opts(const bk_ssd_desc *d);
bk_ssd_opts bk_ssd_step_opts(const bk_ssd_step_desc *d);

/* NULL desc, negative extents, chunk_size < 1, bad options (bk_ssd_check_opts),
 * n_varlen_seqs < 0 or > 0 with batch != 1 -> INVALID_PROBLEM; dtype outside
 * {f32, f64, f16, bf16} -> UNSUPPORTED. (Kernel tables narrow the dtypes per target.) */
bk_status bk_ssd_check_desc(const char *op, const bk_ssd_desc *d);

/* The step descriptor: NULL, negative extents, pool < batch without state indices, bad
 * options -> INVALID_PROBLEM; dtype -> UNSUPPORTED. */
bk_status bk_ssd_check_step_desc(const char *op, const bk_ssd_step_desc *d);

/* The options of either descriptor: `ngroups` as the descriptor holds it (< 0 or not
 * dividing heads), skip not a bk_ssd_skip value, a NaN dt limit or dt_min > dt_max ->
 * INVALID_PROBLEM. */
bk_status bk_ssd_check_opts(const char *op, int32_t ngroups, const bk_ssd_opts *o);

/* Kernel-entry `rejects` hook (desc is a bk_ssd_desc): "head_dim is 257, expected <= 256"
 * when head_dim or state_dim is above BK_SSD_MAX_DIM, else NULL. The text lives in a
 * thread-local buffer. */
const char *bk_ssd_rejects_dims(const void *desc);
/* bk_ssd_rejects_dims for a bk_ssd_step_desc. */
const char *bk_ssd_step_rejects_dims(const void *desc);

/* The spec of a chunk-scan tensor of role `role`: element type desc.dtype (i32 for
 * seq_idx), inner stride 1; an output also may not overlap itself. */
bk_tensor_spec bk_ssd_spec(const bk_ssd_desc *d, bk_ssd_role role, const char *name, bool output);

/* The spec of the skip tensor (or its gradient): [heads] or [heads, head_dim]. */
bk_tensor_spec bk_ssd_skip_spec(const bk_ssd_opts *o, bk_dtype dtype, const char *name, bool output);

/* Checks the inputs both chunk-scan ops read, in the order x, dt, a, b, c, skip, z,
 * dt_bias, initial_states, seq_idx (the optional ones against the descriptor). */
bk_status bk_ssd_check_inputs(const char *op, const bk_ssd_desc *d, const bk_tensor *x, const bk_tensor *dt,
                              const bk_tensor *a, const bk_tensor *b, const bk_tensor *c, const bk_tensor *skip,
                              const bk_tensor *z, const bk_tensor *dt_bias, const bk_tensor *initial_states,
                              const bk_tensor *seq_idx);

#endif
