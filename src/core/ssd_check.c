/* ssd_check.c - descriptors, options, dimension limits and tensor specs shared by ssd_fwd,
 * ssd_bwd and ssd_step (see ssd_check.h). Everything goes through the core helpers of
 * check.c. */
#include "core/ssd_check.h"

#include <math.h>
#include <stdio.h>

bk_ssd_opts bk_ssd_desc_opts(const bk_ssd_desc *d)
{
    bk_ssd_opts o = {d->heads,        d->head_dim,    d->ngroups > 0 ? d->ngroups : d->heads,
                     d->skip,         d->has_z,       d->has_dt_bias,
                     d->dt_softplus,  d->has_dt_limit, d->dt_min,
                     d->dt_max};
    return o;
}

bk_ssd_opts bk_ssd_step_opts(const bk_ssd_step_desc *d)
{
    bk_ssd_opts o = {d->heads,        d->head_dim,    d->ngroups > 0 ? d->ngroups : d->heads,
                     d->skip,         d->has_z,       d->has_dt_bias,
                     d->dt_softplus,  d->has_dt_limit, d->dt_min,
                     d->dt_max};
    return o;
}

bk_status bk_ssd_check_opts(const char *op, int32_t ngroups, const bk_ssd_opts *o)
{
    BK_TRY(bk_check_extent(op, "desc.ngroups", ngroups, 0));
    if (ngroups > 0 && o->heads % ngroups != 0)
        return bk_fail(BK_STATUS_INVALID_PROBLEM, "%s: desc.heads (%d) is not a multiple of desc.ngroups (%d)", op,
                       (int)o->heads, (int)ngroups);
    if ((unsigned)o->skip > (unsigned)BK_SSD_SKIP_PER_CHANNEL)
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: desc.skip is %d, expected BK_SSD_SKIP_NONE, _PER_HEAD or _PER_CHANNEL", op, (int)o->skip);
    if (o->has_dt_limit) {
        if (isnan(o->dt_min) || isnan(o->dt_max) || o->dt_min > o->dt_max)
            return bk_fail(BK_STATUS_INVALID_PROBLEM,
                           "%s: desc.dt_min, desc.dt_max are (%g, %g), expected dt_min <= dt_max (no NaN)", op,
                           o->dt_min, o->dt_max);
    }
    return BK_STATUS_SUCCESS;
}

bk_status bk_ssd_check_desc(const char *op, const bk_ssd_desc *d)
{
    BK_TRY(bk_check_ptr(op, "desc", d));
    BK_TRY(bk_check_extent(op, "desc.batch", d->batch, 0));
    BK_TRY(bk_check_extent(op, "desc.seq_len", d->seq_len, 0));
    BK_TRY(bk_check_extent(op, "desc.heads", d->heads, 0));
    BK_TRY(bk_check_extent(op, "desc.head_dim", d->head_dim, 0));
    BK_TRY(bk_check_extent(op, "desc.state_dim", d->state_dim, 0));
    BK_TRY(bk_check_extent(op, "desc.chunk_size", d->chunk_size, 1));
    const bk_ssd_opts o = bk_ssd_desc_opts(d);
    BK_TRY(bk_ssd_check_opts(op, d->ngroups, &o));
    BK_TRY(bk_check_extent(op, "desc.n_varlen_seqs", d->n_varlen_seqs, 0));
    if (d->n_varlen_seqs > 0 && d->batch != 1)
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: desc.batch is %d, expected 1 with varlen states (n_varlen_seqs %d)", op, (int)d->batch,
                       (int)d->n_varlen_seqs);
    return bk_check_dtype_in(op, "desc.dtype", d->dtype, BK_DT_FLOATS);
}

bk_status bk_ssd_check_step_desc(const char *op, const bk_ssd_step_desc *d)
{
    BK_TRY(bk_check_ptr(op, "desc", d));
    BK_TRY(bk_check_extent(op, "desc.batch", d->batch, 0));
    BK_TRY(bk_check_extent(op, "desc.pool", d->pool, 0));
    BK_TRY(bk_check_extent(op, "desc.heads", d->heads, 0));
    BK_TRY(bk_check_extent(op, "desc.head_dim", d->head_dim, 0));
    BK_TRY(bk_check_extent(op, "desc.state_dim", d->state_dim, 0));
    if (!d->has_state_indices && d->pool < d->batch)
        return bk_fail(BK_STATUS_INVALID_PROBLEM,
                       "%s: desc.pool is %d, expected >= batch = %d without state indices (request r uses state r)",
                       op, (int)d->pool, (int)d->batch);
    const bk_ssd_opts o = bk_ssd_step_opts(d);
    BK_TRY(bk_ssd_check_opts(op, d->ngroups, &o));
    return bk_check_dtype_in(op, "desc.dtype", d->dtype, BK_DT_FLOATS);
}

/* The dims limit of either descriptor, in `why`. */
static const char *dims_over(int32_t head_dim, int32_t state_dim, char *why, size_t size)
{
    if (head_dim > BK_SSD_MAX_DIM) {
        snprintf(why, size, "head_dim is %d, expected <= %d", (int)head_dim, BK_SSD_MAX_DIM);
        return why;
    }
    if (state_dim > BK_SSD_MAX_DIM) {
        snprintf(why, size, "state_dim is %d, expected <= %d", (int)state_dim, BK_SSD_MAX_DIM);
        return why;
    }
    return NULL;
}

static _Thread_local char g_why[128];

const char *bk_ssd_rejects_dims(const void *desc)
{
    const bk_ssd_desc *d = (const bk_ssd_desc *)desc;
    return dims_over(d->head_dim, d->state_dim, g_why, sizeof g_why);
}

const char *bk_ssd_step_rejects_dims(const void *desc)
{
    const bk_ssd_step_desc *d = (const bk_ssd_step_desc *)desc;
    return dims_over(d->head_dim, d->state_dim, g_why, sizeof g_why);
}

bk_tensor_spec bk_ssd_spec(const bk_ssd_desc *d, bk_ssd_role role, const char *name, bool output)
{
    bk_tensor_spec s = {name, d->dtype, 4, {d->batch, d->seq_len, d->heads, d->head_dim},
                        "batch,seq_len,heads,head_dim",
                        BK_LAYOUT_INNER_UNIT | (output ? (uint32_t)BK_LAYOUT_OUTPUT : 0u)};
    switch (role) {
    case BK_SSD_ROLE_X: break;
    case BK_SSD_ROLE_DT:
        s.rank = 3;
        s.shape[3] = 0;
        s.dims = "batch,seq_len,heads";
        break;
    case BK_SSD_ROLE_A:
        s.rank = 1;
        s.shape[0] = d->heads;
        s.shape[1] = s.shape[2] = s.shape[3] = 0;
        s.dims = "heads";
        break;
    case BK_SSD_ROLE_BC:
        s.shape[2] = d->ngroups > 0 ? d->ngroups : d->heads;
        s.shape[3] = d->state_dim;
        s.dims = d->ngroups > 0 ? "batch,seq_len,ngroups,state_dim" : "batch,seq_len,heads,state_dim";
        break;
    case BK_SSD_ROLE_STATE:
    case BK_SSD_ROLE_VARLEN:
        s.shape[0] = role == BK_SSD_ROLE_STATE ? d->batch : d->n_varlen_seqs;
        s.shape[1] = d->heads;
        s.shape[2] = d->head_dim;
        s.shape[3] = d->state_dim;
        s.dims = role == BK_SSD_ROLE_STATE ? "batch,heads,head_dim,state_dim"
                                            : "n_varlen_seqs,heads,head_dim,state_dim";
        break;
    case BK_SSD_ROLE_SEQ_IDX:
        s.dtype = BK_DTYPE_I32;
        s.rank = 2;
        s.shape[2] = s.shape[3] = 0;
        s.dims = "batch,seq_len";
        break;
    }
    return s;
}

bk_tensor_spec bk_ssd_skip_spec(const bk_ssd_opts *o, bk_dtype dtype, const char *name, bool output)
{
    const bool channel = o->skip == BK_SSD_SKIP_PER_CHANNEL;
    bk_tensor_spec s = {name,
                        dtype,
                        channel ? 2 : 1,
                        {o->heads, channel ? o->head_dim : 0},
                        channel ? "heads,head_dim" : "heads",
                        BK_LAYOUT_INNER_UNIT | (output ? (uint32_t)BK_LAYOUT_OUTPUT : 0u)};
    return s;
}

bk_status bk_ssd_check_inputs(const char *op, const bk_ssd_desc *d, const bk_tensor *x, const bk_tensor *dt,
                              const bk_tensor *a, const bk_tensor *b, const bk_tensor *c, const bk_tensor *skip,
                              const bk_tensor *z, const bk_tensor *dt_bias, const bk_tensor *initial_states,
                              const bk_tensor *seq_idx)
{
    const bk_ssd_opts o = bk_ssd_desc_opts(d);
    bk_tensor_spec s_x = bk_ssd_spec(d, BK_SSD_ROLE_X, "x", false);
    bk_tensor_spec s_dt = bk_ssd_spec(d, BK_SSD_ROLE_DT, "dt", false);
    bk_tensor_spec s_a = bk_ssd_spec(d, BK_SSD_ROLE_A, "a", false);
    bk_tensor_spec s_b = bk_ssd_spec(d, BK_SSD_ROLE_BC, "b", false);
    bk_tensor_spec s_c = bk_ssd_spec(d, BK_SSD_ROLE_BC, "c", false);
    bk_tensor_spec s_skip = bk_ssd_skip_spec(&o, d->dtype, "skip", false);
    bk_tensor_spec s_z = bk_ssd_spec(d, BK_SSD_ROLE_X, "z", false);
    bk_tensor_spec s_bias = bk_ssd_spec(d, BK_SSD_ROLE_A, "dt_bias", false);
    bk_tensor_spec s_init = bk_ssd_spec(d, BK_SSD_ROLE_STATE, "initial_states", false);
    bk_tensor_spec s_seq = bk_ssd_spec(d, BK_SSD_ROLE_SEQ_IDX, "seq_idx", false);
    BK_TRY(bk_check_tensor(op, x, &s_x));
    BK_TRY(bk_check_tensor(op, dt, &s_dt));
    BK_TRY(bk_check_tensor(op, a, &s_a));
    BK_TRY(bk_check_tensor(op, b, &s_b));
    BK_TRY(bk_check_tensor(op, c, &s_c));
    BK_TRY(bk_check_optional_tensor(op, skip, d->skip != BK_SSD_SKIP_NONE, "desc.skip", &s_skip));
    BK_TRY(bk_check_optional_tensor(op, z, d->has_z, "desc.has_z", &s_z));
    BK_TRY(bk_check_optional_tensor(op, dt_bias, d->has_dt_bias, "desc.has_dt_bias", &s_bias));
    BK_TRY(bk_check_optional_tensor(op, initial_states, d->has_initial_states, "desc.has_initial_states", &s_init));
    return bk_check_optional_tensor(op, seq_idx, d->has_seq_idx, "desc.has_seq_idx", &s_seq);
}
