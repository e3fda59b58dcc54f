/* fuzz_alibi.c - alibi_fwd, alibi_bwd and bk_alibi_slopes from fuzz bytes (see fuzz.h). */
#include "fuzz.h"

#include <stdlib.h>

static bk_alibi_fwd_desc read_desc(fz *f)
{
    bk_alibi_fwd_desc d;
    d.batch = fz_extent(f);
    d.heads = fz_extent(f);
    d.query_len = fz_extent(f);
    d.key_len = fz_extent(f);
    d.dtype = fz_dtype(f);
    return d;
}

static void fwd(fz *f)
{
    bk_alibi_fwd_desc d = read_desc(f);
    bk_alibi_fwd_plan plan;
    if (!FZ_SELECT(f, alibi_fwd, &d, &plan))
        return;
    int64_t sc[4] = {d.batch, d.heads, d.query_len, d.key_len}, sl[1] = {d.heads};
    bk_alibi_fwd_args a;
    a.scores = fz_tensor(f, d.dtype, 4, sc, FZ_IN);
    a.slopes = fz_tensor(f, d.dtype, 1, sl, FZ_IN);
    if (fz_u8(f) % 8 == 7) { /* in place: y is the very view of scores */
        a.y = a.scores;
        fz_in_place(f, &a.scores);
    } else {
        a.y = fz_tensor(f, d.dtype, 4, sc, FZ_OUT);
    }
    FZ_FINISH(f, alibi_fwd, &plan, &a, (double)d.batch * d.heads * d.query_len * d.key_len);
}

static void bwd(fz *f)
{
    bk_alibi_bwd_desc d = read_desc(f);
    bk_alibi_bwd_plan plan;
    if (!FZ_SELECT(f, alibi_bwd, &d, &plan))
        return;
    int64_t sc[4] = {d.batch, d.heads, d.query_len, d.key_len}, sl[1] = {d.heads};
    bk_alibi_bwd_args a;
    bk_tensor dscores, dslopes;
    a.dy = fz_tensor(f, d.dtype, 4, sc, FZ_IN);
    a.dscores = fz_optional(f, &dscores, d.dtype, 4, sc, FZ_OUT);
    a.dslopes = fz_optional(f, &dslopes, d.dtype, 1, sl, FZ_OUT);
    FZ_FINISH(f, alibi_bwd, &plan, &a, (double)d.batch * d.heads * d.query_len * d.key_len);
}

static void slopes(fz *f)
{
    int32_t n = fz_extent(f);
    double max_bias = fz_scalar(f);
    bool null_out = fz_null(f);
    double *out = n > 0 && n <= 4096 ? malloc((size_t)n * sizeof(double)) : NULL;
    bk_status s = bk_alibi_slopes(n, max_bias, null_out || !out ? NULL : out);
    f->op = "alibi_slopes";
    if (s != BK_STATUS_SUCCESS && s != BK_STATUS_INVALID_PROBLEM)
        fz_status(f, "alibi_slopes", FZ_SELECT, BK_STATUS_DEVICE_ERROR); /* reports it */
    if (s != BK_STATUS_SUCCESS)
        fz_status(f, "alibi_slopes", FZ_SELECT, s);
    free(out);
}

void fz_body(fz *f)
{
    switch (fz_u8(f) % 3) {
    case 0: fwd(f); break;
    case 1: bwd(f); break;
    default: slopes(f); break;
    }
}
