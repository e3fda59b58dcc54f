/* fuzz_paged.c - paged_decode, paged_prefill and attention_merge from fuzz bytes (see
 * fuzz.h). */
#include "fuzz.h"

static bk_paged_kv_desc read_pool(fz *f)
{
    static const int32_t dims[] = {64, 128, 256, 64, 64, 32, 0, 65};
    bk_paged_kv_desc p;
    p.num_pages = fz_extent(f);
    p.kv_heads = fz_extent(f);
    p.page_size = fz_extent(f);
    p.head_dim = fz_bool(f) ? fz_pick(f, dims, 8) : fz_extent(f);
    p.dtype = fz_dtype(f);
    return p;
}

/* What paged_decode and paged_prefill share: q and o [rows, q_heads, head_dim] (with
 * `sub` > 0: [rows, sub, q_heads, head_dim], paged_decode's R axis), the paged cache of
 * `batch` requests, the optional lse [rows, (sub,) q_heads], and an upper bound of the
 * work (rows x sub x heads x head_dim x the keys the listed pages hold). */
typedef struct paged_io {
    bk_tensor q, o, lse_slot;
    bk_paged_kv kv;
    const bk_tensor *lse;
    double work;
} paged_io;

static void read_io(fz *f, const bk_paged_kv_desc *p, int32_t batch, int64_t rows, int32_t sub, int32_t q_heads,
                    paged_io *io)
{
    int64_t sq[4] = {rows, q_heads, p->head_dim}, sl[3] = {rows, q_heads};
    const int32_t r = sub > 0 ? 1 : 0; /* the R axis */
    if (r) {
        sq[1] = sl[1] = sub;
        sq[2] = sl[2] = q_heads;
        sq[3] = p->head_dim;
    }
    io->q = fz_tensor(f, p->dtype, 3 + r, sq, FZ_IN);
    io->kv = fz_paged_kv(f, p, batch, FZ_IN);
    io->o = fz_tensor(f, p->dtype, 3 + r, sq, FZ_OUT);
    io->lse = fz_optional(f, &io->lse_slot, BK_DTYPE_F32, 2 + r, sl, FZ_OUT);
    double pages = (double)io->kv.kv_indices.shape[0]; /* a mutated extent may be negative */
    io->work = (double)rows * (sub > 0 ? sub : 1) * q_heads * p->head_dim *
               ((pages < 0 ? -pages : pages) * p->page_size + 1.0);
}

static void decode(fz *f)
{
    bk_paged_decode_desc d;
    d.batch = fz_extent(f);
    d.q_heads = fz_extent(f);
    d.scale = fz_scalar(f);
    d.kv_splits = fz_bool(f) ? 0 : fz_extent(f);
    d.paged_kv = read_pool(f);
    d.q_rows_per_request = fz_bool(f) ? 0 : fz_extent(f);
    bk_paged_decode_plan plan;
    if (!FZ_SELECT(f, paged_decode, &d, &plan))
        return;
    /* the R axis when R > 1 (else sometimes: [batch, 1, q_heads, head_dim] is allowed) */
    const int32_t R = d.q_rows_per_request > 1 ? d.q_rows_per_request : 1;
    paged_io io;
    read_io(f, &d.paged_kv, d.batch, d.batch, R > 1 || fz_bool(f) ? R : 0, d.q_heads, &io);
    bk_paged_decode_args a = {io.q, io.kv, io.o, io.lse};
    FZ_FINISH(f, paged_decode, &plan, &a, io.work);
}

static void prefill(fz *f)
{
    bk_paged_prefill_desc d;
    d.batch = fz_extent(f);
    d.total_rows = fz_extent(f);
    d.q_heads = fz_extent(f);
    d.scale = fz_scalar(f);
    d.causal = fz_bool(f);
    d.enable_kv_split = fz_bool(f);
    d.paged_kv = read_pool(f);
    bk_paged_prefill_plan plan;
    if (!FZ_SELECT(f, paged_prefill, &d, &plan))
        return;
    int64_t sp[1] = {(int64_t)d.batch + 1};
    bk_tensor q_indptr = fz_tensor(f, BK_DTYPE_I32, 1, sp, FZ_IN);
    fz_fill_index(f, &q_indptr, FZ_IDX_PTR, d.total_rows);
    paged_io io;
    read_io(f, &d.paged_kv, d.batch, d.total_rows, 0, d.q_heads, &io);
    bk_paged_prefill_args a = {io.q, q_indptr, io.kv, io.o, io.lse};
    FZ_FINISH(f, paged_prefill, &plan, &a, io.work);
}

static void merge(fz *f)
{
    bk_attention_merge_desc d;
    d.rows = fz_extent(f);
    d.parts = fz_extent(f);
    d.heads = fz_extent(f);
    d.head_dim = fz_extent(f);
    d.dtype = fz_dtype(f);
    bk_attention_merge_plan plan;
    if (!FZ_SELECT(f, attention_merge, &d, &plan))
        return;
    int64_t sop[4] = {d.rows, d.parts, d.heads, d.head_dim}, slp[3] = {d.rows, d.parts, d.heads};
    int64_t so[3] = {d.rows, d.heads, d.head_dim}, sl[2] = {d.rows, d.heads};
    bk_attention_merge_args a;
    bk_tensor lse;
    a.o_parts = fz_tensor(f, d.dtype, 4, sop, FZ_IN);
    a.lse_parts = fz_tensor(f, BK_DTYPE_F32, 3, slp, FZ_IN);
    a.o = fz_tensor(f, d.dtype, 3, so, FZ_OUT);
    a.lse = fz_optional(f, &lse, BK_DTYPE_F32, 2, sl, FZ_OUT);
    FZ_FINISH(f, attention_merge, &plan, &a, (double)d.rows * d.parts * d.heads * d.head_dim);
}

void fz_body(fz *f)
{
    switch (fz_u8(f) % 3) {
    case 0: decode(f); break;
    case 1: prefill(f); break;
    default: merge(f); break;
    }
}
