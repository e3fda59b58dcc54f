/* ssd_check.h - the checks ssd_fwd and ssd_bwd share (src/core/ssd_check.c): the
 * descriptor, the head_dim/state_dim limit every kernel entry applies, and the tensor
 * specs of the tensors both ops read. Written once so the two ops cannot drift apart. */
#ifndef BK_CORE_SSD_CHECK_H
#define BK_CORE_SSD_CHECK_H
#include "core/core.h"

/* Which shape a tensor of the SSD ops has. */
typedef enum bk_ssd_role {
    BK_SSD_ROLE_X,  /* [batch, seq_len, heads, head_dim]: x, y, dy, dx */
    BK_SSD_ROLE_DT, /* [batch, seq_len, heads]: dt, ddt */
    BK_SSD_ROLE_A,  /* [heads]: a, da */
    BK_SSD_ROLE_BC  /* [batch, seq_len, heads, state_dim]: b, c, db, dc */
} bk_ssd_role;

/* NULL desc, negative extents, chunk_size < 1 -> INVALID_PROBLEM; dtype outside
 * {f32, f64, f16, bf16} -> UNSUPPORTED. (Kernel tables narrow the dtypes per target.) */
bk_status bk_ssd_check_desc(const char *op, const bk_ssd_desc *d);

/* Kernel-entry `rejects` hook: "head_dim is 257, expected <= 256" when head_dim or
 * state_dim is above BK_SSD_MAX_DIM, else NULL. The text lives in a thread-local buffer. */
const char *bk_ssd_rejects_dims(const void *desc);

/* The spec of a tensor of role `role`: element type desc.dtype, inner stride 1; an output
 * also may not overlap itself. */
bk_tensor_spec bk_ssd_spec(const bk_ssd_desc *d, bk_ssd_role role, const char *name, bool output);

/* Checks the five inputs both ops read, in the order x, dt, a, b, c. */
bk_status bk_ssd_check_inputs(const char *op, const bk_ssd_desc *d, const bk_tensor *x, const bk_tensor *dt,
                              const bk_tensor *a, const bk_tensor *b, const bk_tensor *c);

#endif
