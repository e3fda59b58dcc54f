/* ssd_check.c - descriptor, dimension limit and tensor specs shared by ssd_fwd and
 * ssd_bwd (see ssd_check.h). Everything goes through the core helpers of check.c. */
#include "core/ssd_check.h"

#include <stdio.h>

bk_status bk_ssd_check_desc(const char *op, const bk_ssd_desc *d)
{
    BK_TRY(bk_check_ptr(op, "desc", d));
    BK_TRY(bk_check_extent(op, "desc.batch", d->batch, 0));
    BK_TRY(bk_check_extent(op, "desc.seq_len", d->seq_len, 0));
    BK_TRY(bk_check_extent(op, "desc.heads", d->heads, 0));
    BK_TRY(bk_check_extent(op, "desc.head_dim", d->head_dim, 0));
    BK_TRY(bk_check_extent(op, "desc.state_dim", d->state_dim, 0));
    BK_TRY(bk_check_extent(op, "desc.chunk_size", d->chunk_size, 1));
    return bk_check_dtype_in(op, "desc.dtype", d->dtype, BK_DT_FLOATS);
}

const char *bk_ssd_rejects_dims(const void *desc)
{
    static _Thread_local char why[96];
    const bk_ssd_desc *d = (const bk_ssd_desc *)desc;
    if (d->head_dim > BK_SSD_MAX_DIM) {
        snprintf(why, sizeof why, "head_dim is %d, expected <= %d", (int)d->head_dim, BK_SSD_MAX_DIM);
        return why;
    }
    if (d->state_dim > BK_SSD_MAX_DIM) {
        snprintf(why, sizeof why, "state_dim is %d, expected <= %d", (int)d->state_dim, BK_SSD_MAX_DIM);
        return why;
    }
    return NULL;
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
        s.shape[3] = d->state_dim;
        s.dims = "batch,seq_len,heads,state_dim";
        break;
    }
    return s;
}

bk_status bk_ssd_check_inputs(const char *op, const bk_ssd_desc *d, const bk_tensor *x, const bk_tensor *dt,
                              const bk_tensor *a, const bk_tensor *b, const bk_tensor *c)
{
    bk_tensor_spec s_x = bk_ssd_spec(d, BK_SSD_ROLE_X, "x", false);
    bk_tensor_spec s_dt = bk_ssd_spec(d, BK_SSD_ROLE_DT, "dt", false);
    bk_tensor_spec s_a = bk_ssd_spec(d, BK_SSD_ROLE_A, "a", false);
    bk_tensor_spec s_b = bk_ssd_spec(d, BK_SSD_ROLE_BC, "b", false);
    bk_tensor_spec s_c = bk_ssd_spec(d, BK_SSD_ROLE_BC, "c", false);
    BK_TRY(bk_check_tensor(op, x, &s_x));
    BK_TRY(bk_check_tensor(op, dt, &s_dt));
    BK_TRY(bk_check_tensor(op, a, &s_a));
    BK_TRY(bk_check_tensor(op, b, &s_b));
    return bk_check_tensor(op, c, &s_c);
}
