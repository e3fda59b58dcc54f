/* test_attention_merge.c - attention_merge against a naive f64 logsumexp merge: every
 * dtype, parts 1..5, parts with lse -inf (their o poisoned with NaN: never read), rows
 * whose parts are all -inf (o = 0, lse = -inf), head_dim above 256, padded views, lse
 * absent; the split-KV identity (paged_decode over three page ranges of each request,
 * merged, equals paged_decode over all of them); bad inputs (exact status, outputs
 * untouched); determinism (1 thread and all threads). */
#include "bk_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const bk_dtype k_dtypes[] = {BK_DTYPE_F32, BK_DTYPE_F64, BK_DTYPE_F16, BK_DTYPE_BF16};

typedef struct merge_case {
    bk_dtype dt;
    int32_t rows, parts, heads, head_dim;
    bool padded, with_lse;
} merge_case;

/* Runs the plan on its target: on CUDA the buffers travel through bkt_dev (a
 * non-default stream), outputs copied back. */
static bk_status merge_run(const bk_attention_merge_plan *plan, const bk_attention_merge_args *host, size_t op_bytes,
                           size_t lp_bytes, size_t o_bytes, size_t l_bytes)
{
    bk_attention_merge_args a = *host;
    bk_tensor lse = host->lse ? *host->lse : (bk_tensor){0};
    bkt_dev dev = bkt_dev_begin(plan->info.target);
    a.o_parts.data = bkt_dev_in(&dev, a.o_parts.data, op_bytes);
    a.lse_parts.data = bkt_dev_in(&dev, a.lse_parts.data, lp_bytes);
    a.o.data = bkt_dev_out(&dev, a.o.data, o_bytes);
    if (host->lse) {
        lse.data = bkt_dev_out(&dev, lse.data, l_bytes);
        a.lse = &lse;
    }
    bk_status st = bk_attention_merge_run(plan, bkt_dev_stream(&dev), (bk_workspace){0}, &a);
    return bkt_dev_end(&dev) ? st : BK_STATUS_DEVICE_ERROR;
}

static void test_merge(bk_target target, merge_case tc)
{
    const bk_dtype dt = tc.dt;
    const int64_t R = tc.rows, P = tc.parts, H = tc.heads, D = tc.head_dim;
    char what[160];
    snprintf(what, sizeof what, "attention_merge %s %s rows=%d parts=%d heads=%d D=%d%s%s",
             target.kind == BK_TARGET_CUDA ? "cuda" : "cpu", bk_dtype_name(dt),
             (int)R, (int)P, (int)H, (int)D, tc.padded ? " strided" : "", tc.with_lse ? " lse" : "");
    int64_t pad = tc.padded ? 2 : 0;
    int64_t ops[4] = {R, P, H, D}, lps[3] = {R, P, H}, os[3] = {R, H, D}, ls[2] = {R, H};
    bk_tensor p_op = bkt_view_padded(NULL, dt, 4, ops, pad), p_lp = bkt_view_padded(NULL, BK_DTYPE_F32, 3, lps, pad);
    bk_tensor p_o = bkt_view_padded(NULL, dt, 3, os, pad), p_l = bkt_view_padded(NULL, BK_DTYPE_F32, 2, ls, pad);
    int64_t n_op = bkt_view_span(&p_op) + 1, n_lp = bkt_view_span(&p_lp) + 1;
    int64_t n_o = bkt_view_span(&p_o) + 1, n_l = bkt_view_span(&p_l) + 1;
    void *o_parts = bkt_alloc(dt, n_op), *lse_parts = bkt_alloc(BK_DTYPE_F32, n_lp);
    void *o = bkt_alloc(dt, n_o), *lse = bkt_alloc(BK_DTYPE_F32, n_l);
    bkt_fill(o_parts, dt, n_op, -1.0, 1.0);
    bkt_fill(lse_parts, BK_DTYPE_F32, n_lp, -4.0, 4.0);
    bk_tensor top = bkt_view_padded(o_parts, dt, 4, ops, pad), tlp = bkt_view_padded(lse_parts, BK_DTYPE_F32, 3, lps, pad);
    bk_tensor to = bkt_view_padded(o, dt, 3, os, pad), tl = bkt_view_padded(lse, BK_DTYPE_F32, 2, ls, pad);
    /* empty parts: lse -inf and o NaN. Row 1 (when present) has every part empty; other
     * rows lose a part with probability 1/4, and some row of a multi-part case keeps
     * one part only. */
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t p = 0; p < P; p++) {
                bool empty = r == 1 || (P > 1 && bkt_randint(0, 3) == 0) || (r == 2 && p > 0);
                if (!empty)
                    continue;
                bkt_set(lse_parts, BK_DTYPE_F32, r * tlp.strides[0] + p * tlp.strides[1] + h * tlp.strides[2],
                        -INFINITY);
                for (int64_t d = 0; d < D; d++)
                    bkt_set(o_parts, dt, r * top.strides[0] + p * top.strides[1] + h * top.strides[2] + d, NAN);
            }
    bkt_poison(o, dt, n_o);
    bkt_poison(lse, BK_DTYPE_F32, n_l);
    void *l_before = bkt_snapshot(lse, (size_t)n_l * sizeof(float));

    /* reference: lse = log sum exp(lse_p), o = sum_p exp(lse_p - lse) o_p over non-empty parts */
    double *ref_o = calloc((size_t)(R * H * D + 1), sizeof(double)), *ref_l = malloc((size_t)(R * H + 1) * sizeof(double));
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            double l[8], m = -INFINITY, s = 0.0;
            for (int64_t p = 0; p < P; p++) {
                l[p] = bkt_at(&tlp, (int64_t[]){r, p, h});
                m = l[p] > m ? l[p] : m;
            }
            if (m == -INFINITY) {
                ref_l[r * H + h] = -INFINITY; /* o stays 0 */
                continue;
            }
            for (int64_t p = 0; p < P; p++)
                s += exp(l[p] - m);
            double total = m + log(s);
            ref_l[r * H + h] = total;
            for (int64_t p = 0; p < P; p++) {
                if (l[p] == -INFINITY)
                    continue;
                for (int64_t d = 0; d < D; d++)
                    ref_o[(r * H + h) * D + d] += exp(l[p] - total) * bkt_at(&top, (int64_t[]){r, p, h, d});
            }
        }

    bk_attention_merge_desc desc = {(int32_t)R, (int32_t)P, (int32_t)H, (int32_t)D, dt};
    bk_attention_merge_plan plan;
    bk_status st = bk_attention_merge_select(&desc, target, BK_PREFER_FASTEST, &plan);
    const size_t es = bk_dtype_size(dt), op_b = (size_t)n_op * es, lp_b = (size_t)n_lp * 4, o_b = (size_t)n_o * es,
                 l_b = (size_t)n_l * 4;
    if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
        bkt_check(plan.info.precision.deterministic && bk_attention_merge_workspace_size(&plan) == 0, what,
                  "plan is not deterministic or needs workspace");
        bkt_check(plan.info.sku.arch == (target.kind == BK_TARGET_CUDA ? BK_ARCH_SM80 : BK_ARCH_CPU), what,
                  "plan arch %s", bk_arch_name(plan.info.sku.arch));
        bk_attention_merge_args args = {top, tlp, to, tc.with_lse ? &tl : NULL};
        st = merge_run(&plan, &args, op_b, lp_b, o_b, l_b);
        if (bkt_expect_status(st, BK_STATUS_SUCCESS, what)) {
            bkt_check_close(what, &to, ref_o, 1.0);
            if (tc.with_lse)
                bkt_check_close(what, &tl, ref_l, 1.0);
            else
                bkt_check(bkt_same_bytes(l_before, lse, (size_t)n_l * sizeof(float)), what,
                          "lse written though not requested");
            if (R > 1) { /* the all-empty row: exactly 0 and -inf */
                bool exact = true;
                for (int64_t h = 0; h < H; h++) {
                    for (int64_t d = 0; d < D; d++)
                        exact = exact && bkt_at(&to, (int64_t[]){1, h, d}) == 0.0;
                    if (tc.with_lse)
                        exact = exact && bkt_at(&tl, (int64_t[]){1, h}) == -INFINITY;
                }
                bkt_check(exact, what, "the all -inf row is not exactly 0 / -inf");
            }
            void *first = bkt_snapshot(o, (size_t)n_o * bk_dtype_size(dt));
            for (int rerun = 0; rerun < 2; rerun++) {
#ifdef _OPENMP
                int threads = omp_get_max_threads();
                if (rerun == 0)
                    omp_set_num_threads(1);
#endif
                bkt_poison(o, dt, n_o);
                st = merge_run(&plan, &args, op_b, lp_b, o_b, l_b);
#ifdef _OPENMP
                omp_set_num_threads(threads);
#endif
                bkt_check(st == BK_STATUS_SUCCESS && bkt_same_bytes(first, o, (size_t)n_o * bk_dtype_size(dt)), what,
                          "rerun %d is not bit-identical", rerun);
            }
            bkt_free(first);
        }
    }
    free(ref_o);
    free(ref_l);
    bkt_free(l_before);
    bkt_free(o_parts);
    bkt_free(lse_parts);
    bkt_free(o);
    bkt_free(lse);
}

/* ------------------------------------------------------ split-KV identity -- */

/* Each request's pages are cut at two page boundaries into three ranges; paged_decode
 * runs over each range as its own page table (last_page_len = page_size for the first
 * two), writing straight into part s of o_parts / lse_parts through strided views;
 * attention_merge of the three must equal paged_decode over the whole table. */
static void test_split_kv(bk_dtype dt)
{
    char what[96];
    snprintf(what, sizeof what, "attention_merge of 3 paged_decode splits %s", bk_dtype_name(dt));
    enum { B = 3, S = 3 };
    const int32_t Hq = 8, Hkv = 2, D = 64, PS = 4;
    const int64_t kv_len[B] = {9, 30, 130};
    int32_t pages[B], indptr[B + 1] = {0}, last[B];
    for (int b = 0; b < B; b++) {
        pages[b] = (int32_t)((kv_len[b] + PS - 1) / PS);
        indptr[b + 1] = indptr[b] + pages[b];
        last[b] = (int32_t)(kv_len[b] - (int64_t)(pages[b] - 1) * PS);
    }
    const int32_t num_pages = indptr[B] + 2;
    int32_t *indices = malloc((size_t)num_pages * sizeof(int32_t));
    for (int32_t i = 0; i < num_pages; i++)
        indices[i] = i;
    for (int32_t i = num_pages - 1; i > 0; i--) { /* shuffled page ids */
        int32_t j = (int32_t)bkt_randint(0, i), t = indices[i];
        indices[i] = indices[j];
        indices[j] = t;
    }
    int64_t pool_n = (int64_t)num_pages * Hkv * PS * D;
    void *k = bkt_alloc(dt, pool_n), *v = bkt_alloc(dt, pool_n);
    bkt_fill(k, dt, pool_n, -1, 1);
    bkt_fill(v, dt, pool_n, -1, 1);
    int64_t pool[4] = {num_pages, Hkv, PS, D}, bp1[1] = {B + 1}, b1[1] = {B};

    /* the three sub-tables */
    int32_t sub_indptr[S][B + 1], sub_last[S][B], *sub_indices[S];
    int32_t cut[B][S + 1];
    for (int b = 0; b < B; b++) {
        cut[b][0] = 0;
        cut[b][3] = pages[b];
        cut[b][1] = (int32_t)bkt_randint(1, pages[b] - 2);
        cut[b][2] = (int32_t)bkt_randint(cut[b][1] + 1, pages[b] - 1);
    }
    for (int s = 0; s < S; s++) {
        sub_indices[s] = malloc((size_t)indptr[B] * sizeof(int32_t));
        sub_indptr[s][0] = 0;
        for (int b = 0; b < B; b++) {
            int32_t np = cut[b][s + 1] - cut[b][s];
            for (int32_t i = 0; i < np; i++)
                sub_indices[s][sub_indptr[s][b] + i] = indices[indptr[b] + cut[b][s] + i];
            sub_indptr[s][b + 1] = sub_indptr[s][b] + np;
            sub_last[s][b] = s == S - 1 ? last[b] : PS;
        }
    }

    int64_t qs[3] = {B, Hq, D}, ops[4] = {B, S, Hq, D}, lps[3] = {B, S, Hq}, ls[2] = {B, Hq};
    void *q = bkt_alloc(dt, B * Hq * D), *o_full = bkt_alloc(dt, B * Hq * D), *l_full = bkt_alloc(BK_DTYPE_F32, B * Hq);
    void *o_parts = bkt_alloc(dt, B * S * Hq * D), *lse_parts = bkt_alloc(BK_DTYPE_F32, B * S * Hq);
    void *o = bkt_alloc(dt, B * Hq * D), *lse = bkt_alloc(BK_DTYPE_F32, B * Hq);
    bkt_fill(q, dt, B * Hq * D, -2, 2);
    bkt_poison(o_parts, dt, B * S * Hq * D);
    bkt_poison(lse_parts, BK_DTYPE_F32, B * S * Hq);
    bkt_poison(o, dt, B * Hq * D);
    bkt_poison(lse, BK_DTYPE_F32, B * Hq);

    bk_paged_decode_desc dd = {B, Hq, 0.125, 0, {num_pages, Hkv, PS, D, dt}, 1};
    bk_paged_decode_plan dp;
    bk_attention_merge_desc md = {B, S, Hq, D, dt};
    bk_attention_merge_plan mp;
    bool ok = bkt_expect_status(bk_paged_decode_select(&dd, bk_target_cpu(), BK_PREFER_FASTEST, &dp),
                                BK_STATUS_SUCCESS, what) &&
              bkt_expect_status(bk_attention_merge_select(&md, bk_target_cpu(), BK_PREFER_FASTEST, &mp),
                                BK_STATUS_SUCCESS, what);
    bk_tensor tq = bkt_view(q, dt, 3, qs);
    bk_tensor tof = bkt_view(o_full, dt, 3, qs), tlf = bkt_view(l_full, BK_DTYPE_F32, 2, ls);
    if (ok) {
        int64_t n_idx[1] = {indptr[B]};
        bk_paged_decode_args full = {tq,
                                     {bkt_view(k, dt, 4, pool), bkt_view(v, dt, 4, pool),
                                      bkt_view(indices, BK_DTYPE_I32, 1, n_idx), bkt_view(indptr, BK_DTYPE_I32, 1, bp1),
                                      bkt_view(last, BK_DTYPE_I32, 1, b1)},
                                     tof,
                                     &tlf};
        ok = bkt_expect_status(bk_paged_decode_run(&dp, NULL, (bk_workspace){0}, &full), BK_STATUS_SUCCESS, what);
        bk_tensor top = bkt_view(o_parts, dt, 4, ops), tlp = bkt_view(lse_parts, BK_DTYPE_F32, 3, lps);
        for (int s = 0; s < S && ok; s++) {
            /* part s of o_parts as a [B, Hq, D] view: strides (S*Hq*D, D, 1) */
            bk_tensor po = {(char *)o_parts + (size_t)s * Hq * D * bk_dtype_size(dt), dt, 3, {B, Hq, D},
                            {top.strides[0], top.strides[2], 1}, 0};
            bk_tensor pl = {(float *)lse_parts + s * Hq, BK_DTYPE_F32, 2, {B, Hq}, {tlp.strides[0], 1}, 0};
            int64_t sn[1] = {sub_indptr[s][B]};
            bk_paged_decode_args part = {tq,
                                         {bkt_view(k, dt, 4, pool), bkt_view(v, dt, 4, pool),
                                          bkt_view(sub_indices[s], BK_DTYPE_I32, 1, sn),
                                          bkt_view(sub_indptr[s], BK_DTYPE_I32, 1, bp1),
                                          bkt_view(sub_last[s], BK_DTYPE_I32, 1, b1)},
                                         po,
                                         &pl};
            ok = bkt_expect_status(bk_paged_decode_run(&dp, NULL, (bk_workspace){0}, &part), BK_STATUS_SUCCESS, what);
        }
        bk_tensor to = bkt_view(o, dt, 3, qs), tl = bkt_view(lse, BK_DTYPE_F32, 2, ls);
        bk_attention_merge_args ma = {top, tlp, to, &tl};
        if (ok && bkt_expect_status(bk_attention_merge_run(&mp, NULL, (bk_workspace){0}, &ma), BK_STATUS_SUCCESS,
                                    what)) {
            double *ref = malloc((size_t)B * Hq * D * sizeof(double)), *ref_l = malloc((size_t)B * Hq * sizeof(double));
            bkt_gather(&tof, ref);
            bkt_gather(&tlf, ref_l);
            /* the parts were rounded to dt before the merge: f32 within 4 ulps-ish,
             * 16-bit types within a few roundings of the whole */
            double slack = dt == BK_DTYPE_F32 ? 0.1 : 4.0;
            bkt_check_close(what, &to, ref, slack);
            bkt_check_close(what, &tl, ref_l, 0.1);
            free(ref);
            free(ref_l);
        }
    }
    for (int s = 0; s < S; s++)
        free(sub_indices[s]);
    free(indices);
    bkt_free(k);
    bkt_free(v);
    bkt_free(q);
    bkt_free(o_full);
    bkt_free(l_full);
    bkt_free(o_parts);
    bkt_free(lse_parts);
    bkt_free(o);
    bkt_free(lse);
}

/* ------------------------------------------------------------- bad inputs -- */

static void test_bad_inputs(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    const int32_t R = 3, P = 2, H = 2, D = 5;
    bk_attention_merge_desc d = {R, P, H, D, dt};
    bk_attention_merge_plan plan;
    struct {
        const char *what;
        bk_attention_merge_desc d;
        bk_status want;
    } sel[] = {
        {"attention_merge rows -1", {-1, P, H, D, dt}, BK_STATUS_INVALID_PROBLEM},
        {"attention_merge parts 0", {R, 0, H, D, dt}, BK_STATUS_INVALID_PROBLEM},
        {"attention_merge heads 0", {R, P, 0, D, dt}, BK_STATUS_INVALID_PROBLEM},
        {"attention_merge head_dim 0", {R, P, H, 0, dt}, BK_STATUS_INVALID_PROBLEM},
        {"attention_merge i32", {R, P, H, D, BK_DTYPE_I32}, BK_STATUS_UNSUPPORTED},
        {"attention_merge dtype 42", {R, P, H, D, (bk_dtype)42}, BK_STATUS_INVALID_PROBLEM},
    };
    for (size_t i = 0; i < sizeof sel / sizeof sel[0]; i++) {
        bkt_expect_status(bk_attention_merge_select(&sel[i].d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), sel[i].want,
                          sel[i].what);
        bkt_check(bk_last_error()[0] != '\0', sel[i].what, "no error sentence");
    }
    bkt_check(strstr(bk_last_error(), "attention_merge: desc.dtype") != NULL, "attention_merge dtype message",
              "got \"%s\"", bk_last_error());
    bk_attention_merge_select(&sel[1].d, bk_target_cpu(), BK_PREFER_FASTEST, &plan);
    bkt_check(strcmp(bk_last_error(), "attention_merge: desc.parts is 0, expected >= 1") == 0,
              "attention_merge parts message", "got \"%s\"", bk_last_error());
    bkt_expect_status(bk_attention_merge_select(NULL, bk_target_cpu(), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_INVALID_PROBLEM, "attention_merge NULL desc");
    bkt_expect_status(bk_attention_merge_select(&d, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "attention_merge on sm_75 (every CUDA kernel needs sm_80)");
    if (!bkt_expect_status(bk_attention_merge_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan),
                           BK_STATUS_SUCCESS, "attention_merge bad-input select"))
        return;

    float op[3 * 2 * 2 * 5], lp[3 * 2 * 2], o[3 * 2 * 5], l[3 * 2];
    bkt_fill(op, dt, 60, -1, 1);
    bkt_fill(lp, dt, 12, -1, 1);
    bkt_poison(o, dt, 30);
    bkt_poison(l, dt, 6);
    void *o0 = bkt_snapshot(o, sizeof o), *l0 = bkt_snapshot(l, sizeof l);
    int64_t ops[4] = {R, P, H, D}, lps[3] = {R, P, H}, os[3] = {R, H, D}, ls[2] = {R, H};
    bk_tensor tl = bkt_view(l, dt, 2, ls), l2;
    bk_attention_merge_args good = {bkt_view(op, dt, 4, ops), bkt_view(lp, dt, 3, lps), bkt_view(o, dt, 3, os), &tl};
    struct {
        const char *what;
        bk_attention_merge_args a;
        bk_status want;
    } cases[16];
    int nc = 0;
#define CASE(text, status) (cases[nc].what = (text), cases[nc].want = (status), cases[nc].a = good, &cases[nc++].a)
    CASE("attention_merge o_parts.shape[1]", BK_STATUS_INVALID_PROBLEM)->o_parts.shape[1] = 3;
    CASE("attention_merge o_parts dtype", BK_STATUS_INVALID_PROBLEM)->o_parts.dtype = BK_DTYPE_F64;
    CASE("attention_merge lse_parts dtype f16", BK_STATUS_INVALID_PROBLEM)->lse_parts.dtype = BK_DTYPE_F16;
    CASE("attention_merge lse_parts rank", BK_STATUS_INVALID_PROBLEM)->lse_parts.rank = 2;
    CASE("attention_merge o shape", BK_STATUS_INVALID_PROBLEM)->o.shape[0] = 2;
    CASE("attention_merge o capacity", BK_STATUS_BUFFER_TOO_SMALL)->o.capacity = 29;
    CASE("attention_merge o_parts capacity", BK_STATUS_BUFFER_TOO_SMALL)->o_parts.capacity = 59;
    CASE("attention_merge o broadcast", BK_STATUS_INVALID_PROBLEM)->o.strides[0] = 0;
    CASE("attention_merge o NULL data", BK_STATUS_INVALID_PROBLEM)->o.data = NULL;
    CASE("attention_merge lse_parts negative stride", BK_STATUS_INVALID_PROBLEM)->lse_parts.strides[0] = -4;
    bk_attention_merge_args *a = CASE("attention_merge o_parts inner stride 2", BK_STATUS_UNSUPPORTED);
    a->o_parts.strides[3] = 2;
    a->o_parts.capacity = 0;
    a = CASE("attention_merge o overlapping rows", BK_STATUS_INVALID_PROBLEM);
    a->o.strides[0] = 5;
    for (int c = 0; c < nc; c++) {
        bkt_expect_status(bk_attention_merge_can_implement(&plan, &cases[c].a), cases[c].want, cases[c].what);
        bkt_expect_status(bk_attention_merge_run(&plan, NULL, (bk_workspace){0}, &cases[c].a), cases[c].want,
                          cases[c].what);
        bkt_check(bk_last_error()[0] != '\0', cases[c].what, "no error sentence");
        bkt_check(bkt_same_bytes(o0, o, sizeof o) && bkt_same_bytes(l0, l, sizeof l), cases[c].what,
                  "output written on failure");
    }
    bk_attention_merge_args bl = good;
    l2 = tl;
    l2.shape[1] = 3;
    bl.lse = &l2;
    bkt_expect_status(bk_attention_merge_run(&plan, NULL, (bk_workspace){0}, &bl), BK_STATUS_INVALID_PROBLEM,
                      "attention_merge lse shape");
    l2 = tl;
    l2.dtype = BK_DTYPE_F64;
    bkt_expect_status(bk_attention_merge_run(&plan, NULL, (bk_workspace){0}, &bl), BK_STATUS_INVALID_PROBLEM,
                      "attention_merge lse dtype");
    bkt_check(strstr(bk_last_error(), "attention_merge: lse.dtype is f64, expected f32") != NULL,
              "attention_merge lse message", "got \"%s\"", bk_last_error());
    bk_attention_merge_plan zero;
    memset(&zero, 0, sizeof zero);
    bkt_expect_status(bk_attention_merge_run(&zero, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "attention_merge plan not from select");
    bkt_expect_status(bk_attention_merge_run(&plan, NULL, (bk_workspace){0}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "attention_merge NULL args");
    bkt_check(bkt_same_bytes(o0, o, sizeof o) && bkt_same_bytes(l0, l, sizeof l), "attention_merge bad lse/plan",
              "output written on failure");
    bkt_expect_status(bk_attention_merge_run(&plan, NULL, (bk_workspace){0}, &good), BK_STATUS_SUCCESS,
                      "attention_merge good call after bad ones");
    bkt_free(o0);
    bkt_free(l0);
}


/* Extents whose products pass int64 (issue 13): can_implement refuses them with a
 * sentence naming the overflow and writes nothing. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bk_attention_merge_desc d = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, dt};
    int64_t sop[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX}, slp[3] = {INT32_MAX, INT32_MAX, INT32_MAX};
    int64_t so[3] = {INT32_MAX, INT32_MAX, INT32_MAX};
    float in[16], out[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(out, dt, 16);
    void *out0 = bkt_snapshot(out, sizeof out);
    bk_attention_merge_plan plan;
    if (bkt_expect_status(bk_attention_merge_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan),
                          BK_STATUS_SUCCESS, "attention_merge overflow select")) {
        bk_attention_merge_args a = {bkt_view_huge(in, dt, 4, sop), bkt_view_huge(in, BK_DTYPE_F32, 3, slp),
                                     bkt_view_huge(out, dt, 3, so), NULL};
        bkt_expect_overflow(bk_attention_merge_can_implement(&plan, &a), "attention_merge",
                            "attention_merge 2^124 o_parts");
        bkt_expect_overflow(bk_attention_merge_run(&plan, NULL, (bk_workspace){0}, &a), "attention_merge",
                            "attention_merge run 2^124");
        bkt_check(bk_attention_merge_workspace_size(&plan) == 0, "attention_merge overflow workspace", "not 0");
    }
    bkt_check(bkt_same_bytes(out0, out, sizeof out), "attention_merge overflow", "o written on failure");
    bkt_free(out0);
}

int main(void)
{
    bkt_init("test_attention_merge");
    bk_target targets[2] = {bk_target_cpu()};
    int ntargets = 1 + bkt_cuda_target("attention_merge cuda", &targets[1]);
    for (int g = 0; g < ntargets; g++) {
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
            for (int32_t parts = 1; parts <= 5; parts++) {
                test_merge(targets[g], (merge_case){k_dtypes[t], 7, parts, 3, 33, parts % 2 == 0, parts != 3});
                test_merge(targets[g], (merge_case){k_dtypes[t], 1, parts, 1, 1, false, true});
            }
        test_merge(targets[g], (merge_case){BK_DTYPE_F32, 5, 4, 2, 300, true, true}); /* head_dim above 256 */
        test_merge(targets[g], (merge_case){BK_DTYPE_BF16, 130, 2, 4, 64, false, true});
        test_merge(targets[g], (merge_case){BK_DTYPE_F16, 0, 3, 2, 8, false, true}); /* no rows */
    }
    if (ntargets == 2 && !bkt_quick()) /* larger GPU-only shapes: many parts, many rows */
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
            test_merge(targets[1], (merge_case){k_dtypes[t], 257, 8, 5, 128, t % 2 == 1, true});
    test_split_kv(BK_DTYPE_F32);
    test_split_kv(BK_DTYPE_F16);
    test_split_kv(BK_DTYPE_BF16);
    test_bad_inputs();
    test_overflow();
    return bkt_finish();
}
