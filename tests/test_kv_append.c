/* test_kv_append.c - kv_append against a byte-level reference written here: every dtype,
 * odd sizes, ragged offsets, padded views, out-of-range offsets, bad inputs,
 * determinism and the CUDA section.
 *
 * The new rows and the caches are filled with random BYTES (every bit pattern, NaN
 * payloads included), so "bit-exact" means bit-exact: a copy through f64 would fail. The
 * whole cache allocation (padding included) is compared byte for byte with the expected
 * one: written rows carry the new bytes, everything else its prior bytes. */
#include "bk_test.h"

#include <stdlib.h>
#include <string.h>

static const bk_dtype k_dtypes[] = {BK_DTYPE_F32, BK_DTYPE_F64, BK_DTYPE_F16, BK_DTYPE_BF16};

typedef struct kv_shape {
    int32_t b, h, l, m, dk, dv; /* batch, heads, new_len, max_cache_len, head_dim_k, head_dim_v */
} kv_shape;

static const kv_shape k_shapes[] = {
    {1, 1, 1, 1, 1, 1},   /* smallest: the one row fills the cache */
    {2, 3, 7, 33, 5, 3},  /* D_k != D_v */
    {3, 2, 0, 9, 4, 4},   /* new_len 0: nothing written */
    {1, 4, 13, 13, 8, 16},/* new_len == max_cache_len: offset 0 only */
    {4, 1, 1, 130, 64, 32},/* decode step */
    {3, 5, 33, 70, 7, 1}, /* prefill chunk, D_v 1 */
    {2, 2, 5, 17, 0, 6},  /* D_k 0: only V is written */
    {0, 3, 4, 5, 6, 7},   /* empty batch */
    {5, 2, 3, 11, 3, 2},  /* many ragged offsets */
};

static void fill_bytes(void *p, size_t bytes)
{
    unsigned char *c = (unsigned char *)p;
    for (size_t i = 0; i < bytes; i++)
        c[i] = (unsigned char)(bkt_rand_u64() >> 56);
}

/* Byte offset of element (i0, i1, i2, i3) of a view. */
static size_t byte_at(const bk_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    int64_t e = i0 * t->strides[0] + i1 * t->strides[1] + i2 * t->strides[2] + i3 * t->strides[3];
    return (size_t)e * bk_dtype_size(t->dtype);
}

/* The reference: expected cache = prior bytes, then each new element's bytes at its slot.
 * Rows outside [0, max_cache_len) are skipped (the CUDA contract; on the CPU every row of
 * a successful call is in range). */
/* Row (b, l) lands at off + l; it is in range when 0 <= off + l < max_len. Written by
 * cases so that nothing overflows (off < 0: off + l cannot; off >= 0: compare against
 * max_len - off instead of forming off + l). */
static bool row_in_range(int64_t off, int64_t l, int64_t max_len)
{
    if (off < 0)
        return off + l >= 0 && off + l < max_len;
    return off < max_len && l < max_len - off;
}

static void ref_append(const bk_tensor *new_rows, const bk_tensor *cache, const int64_t *off, unsigned char *expect)
{
    size_t es = bk_dtype_size(cache->dtype);
    for (int64_t b = 0; b < new_rows->shape[0]; b++)
        for (int64_t h = 0; h < new_rows->shape[1]; h++)
            for (int64_t l = 0; l < new_rows->shape[2]; l++)
                for (int64_t d = 0; d < new_rows->shape[3]; d++)
                    if (row_in_range(off[b], l, cache->shape[2]))
                        memcpy(expect + byte_at(cache, b, h, off[b] + l, d),
                           (const unsigned char *)new_rows->data + byte_at(new_rows, b, h, l, d), es);
}

/* Compares two byte images; on a mismatch names the first differing element. */
static bool same_image(const char *what, const char *name, const void *got, const void *want, size_t bytes, size_t es)
{
    if (bytes == 0 || memcmp(got, want, bytes) == 0)
        return bkt_check(true, what, "ok");
    size_t i = 0;
    while (((const unsigned char *)got)[i] == ((const unsigned char *)want)[i])
        i++;
    return bkt_check(false, what, "%s differs from the expected bytes at element %zu of the buffer", name, i / es);
}

typedef struct kv_bufs {
    bk_tensor kn, vn, kc, vc, off;
    int64_t kc_n, vc_n, kn_n, vn_n; /* elements allocated */
    int64_t *offsets;
} kv_bufs;

static kv_bufs make_bufs(bk_dtype dt, kv_shape s, int64_t pad_new, int64_t pad_cache)
{
    kv_bufs k;
    int64_t skn[4] = {s.b, s.h, s.l, s.dk}, svn[4] = {s.b, s.h, s.l, s.dv};
    int64_t skc[4] = {s.b, s.h, s.m, s.dk}, svc[4] = {s.b, s.h, s.m, s.dv}, so[1] = {s.b};
    bk_tensor probe;
    probe = bkt_view_padded(NULL, dt, 4, skn, pad_new);
    k.kn_n = bkt_view_span(&probe) + pad_new + 1;
    probe = bkt_view_padded(NULL, dt, 4, svn, pad_new);
    k.vn_n = bkt_view_span(&probe) + pad_new + 1;
    probe = bkt_view_padded(NULL, dt, 4, skc, pad_cache);
    k.kc_n = bkt_view_span(&probe) + pad_cache + 1;
    probe = bkt_view_padded(NULL, dt, 4, svc, pad_cache);
    k.vc_n = bkt_view_span(&probe) + pad_cache + 1;
    void *kn = bkt_alloc(dt, k.kn_n), *vn = bkt_alloc(dt, k.vn_n), *kc = bkt_alloc(dt, k.kc_n),
         *vc = bkt_alloc(dt, k.vc_n);
    k.offsets = (int64_t *)bkt_alloc(BK_DTYPE_I64, s.b);
    fill_bytes(kn, (size_t)k.kn_n * bk_dtype_size(dt));
    fill_bytes(vn, (size_t)k.vn_n * bk_dtype_size(dt));
    fill_bytes(kc, (size_t)k.kc_n * bk_dtype_size(dt));
    fill_bytes(vc, (size_t)k.vc_n * bk_dtype_size(dt));
    k.kn = bkt_view_padded(kn, dt, 4, skn, pad_new);
    k.vn = bkt_view_padded(vn, dt, 4, svn, pad_new);
    k.kc = bkt_view_padded(kc, dt, 4, skc, pad_cache);
    k.vc = bkt_view_padded(vc, dt, 4, svc, pad_cache);
    k.off = bkt_view(k.offsets, BK_DTYPE_I64, 1, so);
    return k;
}

static void free_bufs(kv_bufs *k)
{
    bkt_free(k->kn.data);
    bkt_free(k->vn.data);
    bkt_free(k->kc.data);
    bkt_free(k->vc.data);
    bkt_free(k->offsets);
}

/* Runs the plan on its target: on CUDA every buffer travels through bkt_dev (a
 * non-default stream); the whole cache allocations and dropped_rows come back. */
static bk_status append_run(const bk_kv_append_plan *plan, const bk_kv_append_args *host, const kv_bufs *k)
{
    bk_kv_append_args a = *host;
    bk_tensor drop = host->dropped_rows ? *host->dropped_rows : (bk_tensor){0};
    size_t es = bk_dtype_size(k->kn.dtype);
    bkt_dev dev = bkt_dev_begin(plan->info.target);
    a.k_new.data = bkt_dev_in(&dev, a.k_new.data, (size_t)k->kn_n * es);
    a.v_new.data = bkt_dev_in(&dev, a.v_new.data, (size_t)k->vn_n * es);
    a.k_cache.data = bkt_dev_out(&dev, a.k_cache.data, (size_t)k->kc_n * es);
    a.v_cache.data = bkt_dev_out(&dev, a.v_cache.data, (size_t)k->vc_n * es);
    a.cache_offsets.data = bkt_dev_in(&dev, a.cache_offsets.data, (size_t)k->off.shape[0] * 8);
    if (host->dropped_rows) {
        drop.data = bkt_dev_out(&dev, drop.data, 8);
        a.dropped_rows = &drop;
    }
    bk_status st = bk_kv_append_run(plan, bkt_dev_stream(&dev), (bk_workspace){0}, &a);
    return bkt_dev_end(&dev) ? st : BK_STATUS_DEVICE_ERROR;
}

static void test_append(bk_target target, bk_dtype dt, kv_shape s, int64_t pad_new, int64_t pad_cache, bool with_dropped)
{
    const bool gpu = target.kind == BK_TARGET_CUDA;
    char what[160];
    snprintf(what, sizeof what, "kv_append %s %s B%d H%d L%d M%d Dk%d Dv%d pad %lld/%lld%s", gpu ? "cuda" : "cpu",
             bk_dtype_name(dt), s.b, s.h,
             s.l, s.m, s.dk, s.dv, (long long)pad_new, (long long)pad_cache, with_dropped ? " +dropped_rows" : "");
    kv_bufs k = make_bufs(dt, s, pad_new, pad_cache);
    /* ragged offsets: exactly at the limit, 0, and random in between */
    for (int32_t b = 0; b < s.b; b++)
        k.offsets[b] = b % 3 == 0 ? s.m - s.l : b % 3 == 1 ? 0 : bkt_randint(0, s.m - s.l);
    size_t es = bk_dtype_size(dt), kc_bytes = (size_t)k.kc_n * es, vc_bytes = (size_t)k.vc_n * es;
    unsigned char *kc_prior = bkt_snapshot(k.kc.data, kc_bytes), *vc_prior = bkt_snapshot(k.vc.data, vc_bytes);
    unsigned char *kc_want = bkt_snapshot(k.kc.data, kc_bytes), *vc_want = bkt_snapshot(k.vc.data, vc_bytes);
    ref_append(&k.kn, &k.kc, k.offsets, kc_want);
    ref_append(&k.vn, &k.vc, k.offsets, vc_want);
    int64_t dropped = 0x5a5a5a5a5a5a5a5all, one[1] = {1};
    bk_tensor tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, one);

    bk_kv_append_desc d = {s.b, s.h, s.l, s.m, s.dk, s.dv, dt};
    bk_kv_append_plan plan;
    if (!bkt_expect_status(bk_kv_append_select(&d, target, BK_PREFER_DETERMINISTIC, &plan), BK_STATUS_SUCCESS,
                           what))
        goto done;
    bkt_check(plan.info.precision.deterministic && plan.info.sku.op == BK_OP_KV_APPEND &&
                  plan.info.sku.dtype == dt && plan.info.sku.arch == (gpu ? BK_ARCH_SM80 : BK_ARCH_CPU),
              what, "plan info is not the %s kv_append kernel", gpu ? "CUDA" : "CPU");
    bkt_check(bk_kv_append_workspace_size(&plan) == 0, what, "workspace is not 0");
    bk_kv_append_args args = {k.kn, k.vn, k.off, k.kc, k.vc, with_dropped ? &tdrop : NULL};
    if (!bkt_expect_status(append_run(&plan, &args, &k), BK_STATUS_SUCCESS, what))
        goto done;
    same_image(what, "k_cache", k.kc.data, kc_want, kc_bytes, es);
    same_image(what, "v_cache", k.vc.data, vc_want, vc_bytes, es);
    bkt_check(dropped == 0x5a5a5a5a5a5a5a5all, what, "dropped_rows changed though every row is in range (%lld)",
              (long long)dropped);

    /* determinism: from the same prior state, a rerun gives the bytes of the first run */
    void *kc_first = bkt_snapshot(k.kc.data, kc_bytes), *vc_first = bkt_snapshot(k.vc.data, vc_bytes);
    memcpy(k.kc.data, kc_prior, kc_bytes);
    memcpy(k.vc.data, vc_prior, vc_bytes);
    bkt_expect_status(append_run(&plan, &args, &k), BK_STATUS_SUCCESS, what);
    bkt_check(bkt_same_bytes(k.kc.data, kc_first, kc_bytes) && bkt_same_bytes(k.vc.data, vc_first, vc_bytes), what,
              "rerun is not bit-identical");
    bkt_free(kc_first);
    bkt_free(vc_first);
done:
    bkt_free(kc_prior);
    bkt_free(vc_prior);
    bkt_free(kc_want);
    bkt_free(vc_want);
    free_bufs(&k);
}

/* Every offset that puts a row outside the cache: OUT_OF_RANGE, nothing written. */
static void test_out_of_range(bk_dtype dt)
{
    kv_shape s = {3, 2, 4, 10, 5, 3};
    kv_bufs k = make_bufs(dt, s, 1, 2);
    size_t es = bk_dtype_size(dt), kc_bytes = (size_t)k.kc_n * es, vc_bytes = (size_t)k.vc_n * es;
    void *kc0 = bkt_snapshot(k.kc.data, kc_bytes), *vc0 = bkt_snapshot(k.vc.data, vc_bytes);
    int64_t dropped = 0, one[1] = {1};
    bk_tensor tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, one);
    bk_kv_append_desc d = {s.b, s.h, s.l, s.m, s.dk, s.dv, dt};
    bk_kv_append_plan plan;
    bkt_expect_status(bk_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "kv_append out-of-range select");
    bk_kv_append_args args = {k.kn, k.vn, k.off, k.kc, k.vc, &tdrop};
    const struct {
        const char *what;
        int32_t bad_b;
        int64_t bad_off;
    } cases[] = {
        {"offset one past the limit", 2, 7},
        {"offset far past the limit", 1, 1000},
        {"offset == max_cache_len", 0, 10},
        {"negative offset", 1, -1},
        {"very negative offset", 2, INT64_MIN},
        {"offset INT64_MAX (no overflow)", 0, INT64_MAX},
        {"offset INT64_MAX - 2 (no overflow)", 2, INT64_MAX - 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char what[128];
        snprintf(what, sizeof what, "kv_append %s %s", bk_dtype_name(dt), cases[c].what);
        for (int32_t b = 0; b < s.b; b++)
            k.offsets[b] = 6; /* the limit: in range */
        k.offsets[cases[c].bad_b] = cases[c].bad_off;
        dropped = 0;
        bkt_expect_status(bk_kv_append_run(&plan, NULL, (bk_workspace){0}, &args), BK_STATUS_OUT_OF_RANGE, what);
        char want[64];
        snprintf(want, sizeof want, "cache_offsets[%d] is %lld", (int)cases[c].bad_b, (long long)cases[c].bad_off);
        bkt_check(strstr(bk_last_error(), want) != NULL && strstr(bk_last_error(), "max_cache_len = 10") != NULL,
                  what, "error sentence \"%s\" does not name \"%s\" and the limit", bk_last_error(), want);
        bkt_check(bkt_same_bytes(kc0, k.kc.data, kc_bytes) && bkt_same_bytes(vc0, k.vc.data, vc_bytes), what,
                  "cache written on failure");
        bkt_check(dropped == 0, what, "dropped_rows written on the CPU (%lld)", (long long)dropped);
    }
    /* exactly at the limit everywhere: accepted */
    for (int32_t b = 0; b < s.b; b++)
        k.offsets[b] = 6;
    bkt_expect_status(bk_kv_append_run(&plan, NULL, (bk_workspace){0}, &args), BK_STATUS_SUCCESS,
                      "kv_append all offsets at the limit");
    bkt_check(dropped == 0, "kv_append all offsets at the limit", "dropped_rows written");

    /* new_len > max_cache_len: no offset fits */
    kv_shape big = {1, 1, 5, 4, 2, 2};
    kv_bufs g = make_bufs(dt, big, 0, 0);
    g.offsets[0] = 0;
    void *gk0 = bkt_snapshot(g.kc.data, (size_t)g.kc_n * es);
    bk_kv_append_desc gd = {1, 1, 5, 4, 2, 2, dt};
    bkt_expect_status(bk_kv_append_select(&gd, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "kv_append new_len > max_cache_len select");
    bk_kv_append_args gargs = {g.kn, g.vn, g.off, g.kc, g.vc, NULL};
    bkt_expect_status(bk_kv_append_run(&plan, NULL, (bk_workspace){0}, &gargs), BK_STATUS_OUT_OF_RANGE,
                      "kv_append new_len > max_cache_len");
    bkt_check(bkt_same_bytes(gk0, g.kc.data, (size_t)g.kc_n * es), "kv_append new_len > max_cache_len",
              "cache written on failure");
    bkt_free(gk0);
    free_bufs(&g);
    bkt_free(kc0);
    bkt_free(vc0);
    free_bufs(&k);
}

static void test_bad_desc(void)
{
    const bk_kv_append_desc good = {2, 3, 4, 9, 5, 6, BK_DTYPE_F32};
    bk_kv_append_plan plan;
    memset(&plan, 0x33, sizeof plan);
    bk_kv_append_plan plan0 = plan;
    const struct {
        const char *what;
        int field;
        int32_t value;
    } neg[] = {{"batch", 0, -1}, {"heads", 1, -1}, {"new_len", 2, -2}, {"max_cache_len", 3, -1},
               {"head_dim_k", 4, -1}, {"head_dim_v", 5, -7}};
    for (size_t c = 0; c < sizeof neg / sizeof neg[0]; c++) {
        bk_kv_append_desc d = good;
        int32_t *f[6] = {&d.batch, &d.heads, &d.new_len, &d.max_cache_len, &d.head_dim_k, &d.head_dim_v};
        *f[neg[c].field] = neg[c].value;
        char what[64];
        snprintf(what, sizeof what, "kv_append negative %s", neg[c].what);
        bkt_expect_status(bk_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan),
                          BK_STATUS_INVALID_PROBLEM, what);
        char want[64];
        snprintf(want, sizeof want, "kv_append: desc.%s is %d", neg[c].what, (int)neg[c].value);
        bkt_check(strstr(bk_last_error(), want) != NULL, what, "error sentence \"%s\"", bk_last_error());
        bkt_check(memcmp(&plan, &plan0, sizeof plan) == 0, what, "plan written on failure");
    }
    bk_kv_append_desc d = good;
    d.dtype = BK_DTYPE_I32;
    bkt_expect_status(bk_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_UNSUPPORTED,
                      "kv_append dtype i32");
    bkt_check(strstr(bk_last_error(), "desc.dtype is i32") != NULL, "kv_append dtype i32", "error sentence \"%s\"",
              bk_last_error());
    d.dtype = BK_DTYPE_I64;
    bkt_expect_status(bk_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_UNSUPPORTED,
                      "kv_append dtype i64");
    d.dtype = (bk_dtype)42;
    bkt_expect_status(bk_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "kv_append dtype not a bk_dtype");
    bkt_expect_status(bk_kv_append_select(NULL, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_INVALID_PROBLEM,
                      "kv_append NULL desc");
    bkt_expect_status(bk_kv_append_select(&good, bk_target_cpu(), BK_PREFER_FASTEST, NULL), BK_STATUS_INVALID_PROBLEM,
                      "kv_append NULL plan");
    bkt_expect_status(bk_kv_append_select(&good, bk_target_cpu(), (bk_preference)7, &plan),
                      BK_STATUS_INVALID_PROBLEM, "kv_append bad preference");
    bkt_expect_status(bk_kv_append_select(&good, bk_target_cuda_cc(0, 0, 0), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_INVALID_PROBLEM, "kv_append CUDA target without capability");
    bkt_expect_status(bk_kv_append_select(&good, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "kv_append on sm_75 (every CUDA kernel needs sm_80)");
    bkt_check(memcmp(&plan, &plan0, sizeof plan) == 0, "kv_append bad desc", "plan written on failure");
    for (int p = 0; p <= (int)BK_PREFER_ALLOW_TF32; p++)
        bkt_expect_status(bk_kv_append_select(&good, bk_target_cpu(), (bk_preference)p, &plan), BK_STATUS_SUCCESS,
                          "kv_append every preference");
}

/* Every bad tensor: exact status, caches and dropped_rows unchanged, a sentence. */
static void test_bad_args(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    kv_shape s = {2, 3, 4, 9, 5, 6};
    kv_bufs k = make_bufs(dt, s, 0, 0);
    for (int32_t b = 0; b < s.b; b++)
        k.offsets[b] = b;
    size_t kc_bytes = (size_t)k.kc_n * 4, vc_bytes = (size_t)k.vc_n * 4;
    void *kc0 = bkt_snapshot(k.kc.data, kc_bytes), *vc0 = bkt_snapshot(k.vc.data, vc_bytes);
    int64_t dropped = 77, one[1] = {1}, two[1] = {2};
    int32_t off32[2] = {0, 1};
    int64_t off_strided[4] = {0, -1, 1, -1};
    float big[4096];
    fill_bytes(big, sizeof big);
    void *big0 = bkt_snapshot(big, sizeof big);
    bk_tensor tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, one);
    bk_tensor drop_f32 = tdrop, drop_2 = bkt_view(big, BK_DTYPE_I64, 1, two), drop_null = tdrop;
    drop_f32.dtype = BK_DTYPE_F64;
    drop_null.data = NULL;
    int64_t so[1] = {2};

    bk_kv_append_desc d = {s.b, s.h, s.l, s.m, s.dk, s.dv, dt};
    bk_kv_append_plan plan;
    bkt_expect_status(bk_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "kv_append bad-args select");
    const bk_kv_append_args good = {k.kn, k.vn, k.off, k.kc, k.vc, &tdrop};
    struct {
        const char *what;
        bk_kv_append_args args;
        bk_status want;
        const char *msg; /* a piece of the expected sentence, or NULL */
    } cases[40];
    int nc = 0;
#define CASE(w, st, m) (cases[nc].what = (w), cases[nc].args = good, cases[nc].want = (st), cases[nc].msg = (m), &cases[nc++].args)
    CASE("k_new.shape[2] wrong", BK_STATUS_INVALID_PROBLEM, "kv_append: k_new.shape[2] is 5, expected new_len = 4")->k_new.shape[2] = 5;
    CASE("v_new head_dim_k instead of head_dim_v", BK_STATUS_INVALID_PROBLEM, "v_new.shape[3] is 5, expected head_dim_v = 6")->v_new.shape[3] = 5;
    CASE("k_cache.shape[2] wrong", BK_STATUS_INVALID_PROBLEM, "k_cache.shape[2] is 8, expected max_cache_len = 9")->k_cache.shape[2] = 8;
    CASE("v_cache.shape[0] wrong", BK_STATUS_INVALID_PROBLEM, "v_cache.shape[0]")->v_cache.shape[0] = 3;
    CASE("k_new dtype f64", BK_STATUS_INVALID_PROBLEM, "k_new.dtype is f64, expected f32")->k_new.dtype = BK_DTYPE_F64;
    CASE("v_cache dtype bf16", BK_STATUS_INVALID_PROBLEM, "v_cache.dtype is bf16")->v_cache.dtype = BK_DTYPE_BF16;
    CASE("k_cache rank 3", BK_STATUS_INVALID_PROBLEM, "k_cache.rank is 3")->k_cache.rank = 3;
    CASE("k_new NULL data", BK_STATUS_INVALID_PROBLEM, "k_new.data is NULL")->k_new.data = NULL;
    CASE("v_cache NULL data", BK_STATUS_INVALID_PROBLEM, "v_cache.data is NULL")->v_cache.data = NULL;
    CASE("cache_offsets NULL data", BK_STATUS_INVALID_PROBLEM, "cache_offsets.data is NULL")->cache_offsets.data = NULL;
    {
        bk_kv_append_args *a = CASE("cache_offsets i32 instead of i64", BK_STATUS_INVALID_PROBLEM,
                                    "cache_offsets.dtype is i32, expected i64");
        a->cache_offsets = bkt_view(off32, BK_DTYPE_I32, 1, so);
    }
    CASE("cache_offsets shape [batch+1]", BK_STATUS_INVALID_PROBLEM, "cache_offsets.shape[0] is 3, expected batch = 2")->cache_offsets.shape[0] = 3;
    {
        bk_kv_append_args *a = CASE("cache_offsets strided", BK_STATUS_UNSUPPORTED, "cache_offsets.strides are [2]");
        a->cache_offsets.data = off_strided;
        a->cache_offsets.strides[0] = 2;
        a->cache_offsets.capacity = 4;
    }
    CASE("cache_offsets rank 2", BK_STATUS_INVALID_PROBLEM, "cache_offsets.rank is 2, expected 1")->cache_offsets.rank = 2;
    CASE("cache_offsets too small", BK_STATUS_BUFFER_TOO_SMALL, "cache_offsets reaches 2 elements")->cache_offsets.capacity = 1;
    CASE("k_cache capacity too small", BK_STATUS_BUFFER_TOO_SMALL, "k_cache reaches")->k_cache.capacity = k.kc_n - 2;
    CASE("v_new capacity too small", BK_STATUS_BUFFER_TOO_SMALL, "v_new reaches")->v_new.capacity = 1;
    CASE("k_cache broadcast heads (output)", BK_STATUS_INVALID_PROBLEM, "an output cannot broadcast")->k_cache.strides[1] = 0;
    CASE("v_cache broadcast batch (output)", BK_STATUS_INVALID_PROBLEM, "an output cannot broadcast")->v_cache.strides[0] = 0;
    CASE("k_new broadcast heads (input)", BK_STATUS_UNSUPPORTED, "broadcast is not supported")->k_new.strides[1] = 0;
    CASE("v_cache overlapping rows", BK_STATUS_INVALID_PROBLEM, "overlap")->v_cache.strides[2] = 3;
    CASE("k_cache negative stride", BK_STATUS_INVALID_PROBLEM, "k_cache.strides[0] is -1")->k_cache.strides[0] = -1;
    {
        /* inner stride 2, otherwise a valid non-overlapping view */
        bk_kv_append_args *a = CASE("k_cache inner stride 2", BK_STATUS_UNSUPPORTED, "k_cache.strides[3] is 2, expected 1");
        a->k_cache.data = big;
        a->k_cache.strides[3] = 2;
        a->k_cache.strides[2] = 10;
        a->k_cache.strides[1] = 90;
        a->k_cache.strides[0] = 270;
        a->k_cache.capacity = 4096;
    }
    {
        bk_kv_append_args *a = CASE("v_new inner stride 2", BK_STATUS_UNSUPPORTED, "v_new.strides[3] is 2, expected 1");
        a->v_new.data = big;
        a->v_new.strides[3] = 2;
        a->v_new.strides[2] = 12;
        a->v_new.strides[1] = 48;
        a->v_new.strides[0] = 144;
        a->v_new.capacity = 4096;
    }
    {
        bk_kv_append_args *a = CASE("dropped_rows f64", BK_STATUS_INVALID_PROBLEM, "dropped_rows.dtype is f64");
        a->dropped_rows = &drop_f32;
    }
    {
        bk_kv_append_args *a = CASE("dropped_rows shape [2]", BK_STATUS_INVALID_PROBLEM, "dropped_rows.shape[0] is 2");
        a->dropped_rows = &drop_2;
    }
    {
        bk_kv_append_args *a = CASE("dropped_rows NULL data", BK_STATUS_INVALID_PROBLEM, "dropped_rows.data is NULL");
        a->dropped_rows = &drop_null;
    }
#undef CASE
    for (int c = 0; c < nc; c++) {
        char what[128];
        snprintf(what, sizeof what, "kv_append %s", cases[c].what);
        dropped = 77;
        bkt_expect_status(bk_kv_append_can_implement(&plan, &cases[c].args), cases[c].want, what);
        bkt_expect_status(bk_kv_append_run(&plan, NULL, (bk_workspace){0}, &cases[c].args), cases[c].want, what);
        bkt_check(bk_last_error()[0] != '\0', what, "no error sentence");
        if (cases[c].msg)
            bkt_check(strstr(bk_last_error(), cases[c].msg) != NULL, what, "error sentence \"%s\" lacks \"%s\"",
                      bk_last_error(), cases[c].msg);
        bkt_check(bkt_same_bytes(kc0, k.kc.data, kc_bytes) && bkt_same_bytes(vc0, k.vc.data, vc_bytes) &&
                      bkt_same_bytes(big0, big, sizeof big),
                  what, "cache written on failure");
        bkt_check(dropped == 77, what, "dropped_rows written on failure");
    }
    bkt_expect_status(bk_kv_append_run(NULL, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "kv_append NULL plan");
    bkt_expect_status(bk_kv_append_run(&plan, NULL, (bk_workspace){0}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "kv_append NULL args");
    bkt_expect_status(bk_kv_append_can_implement(&plan, NULL), BK_STATUS_INVALID_PROBLEM,
                      "kv_append can_implement NULL args");
    /* a plan of another op */
    bk_kv_append_plan other = plan;
    other.info.sku.op = BK_OP_PAGED_KV_APPEND;
    bkt_expect_status(bk_kv_append_run(&other, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "kv_append given another op's plan");
    bkt_check(strstr(bk_last_error(), "plan was made by paged_kv_append_select") != NULL, "kv_append other plan",
              "error sentence \"%s\"", bk_last_error());
    bk_kv_append_plan nokernel = plan;
    nokernel.info.kernel = 5;
    bkt_expect_status(bk_kv_append_run(&nokernel, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "kv_append unknown kernel id");
    bkt_check(bkt_same_bytes(kc0, k.kc.data, kc_bytes) && bkt_same_bytes(vc0, k.vc.data, vc_bytes) && dropped == 77,
              "kv_append bad plans", "outputs written on failure");
    /* the good call works, and a workspace that is lent anyway is accepted */
    char ws[16];
    bkt_expect_status(bk_kv_append_run(&plan, NULL, (bk_workspace){ws, sizeof ws}, &good), BK_STATUS_SUCCESS,
                      "kv_append good args after the bad ones");
    bkt_check(dropped == 77, "kv_append good args", "dropped_rows written on the CPU");
    bkt_free(kc0);
    bkt_free(vc0);
    bkt_free(big0);
    free_bufs(&k);
}

/* The CUDA contract for rows out of range, row by row: every (b, l) with
 * 0 <= offsets[b] + l < max_cache_len is written (a negative offset still writes its rows
 * l >= -offsets[b]), the others are skipped, dropped_rows[0] += the number of skipped
 * (b, l) rows (counted once for all heads and K and V together) on top of its starting
 * value, status SUCCESS. `offs` (n of them) are used cyclically over b; `want` >= 0 is
 * the count the caller worked out by hand (checked besides the reference's count). */
static void test_cuda_out_of_range(bk_target gpu, bk_dtype dt, kv_shape s, int64_t pad, const int64_t *offs, int n,
                                   int64_t want)
{
    char what[160];
    snprintf(what, sizeof what, "kv_append cuda %s out-of-range rows dropped B%d H%d L%d M%d Dk%d Dv%d off[0] %lld",
             bk_dtype_name(dt), s.b, s.h, s.l, s.m, s.dk, s.dv, (long long)offs[0]);
    kv_bufs k = make_bufs(dt, s, pad, pad);
    int64_t want_drop = 0;
    for (int32_t b = 0; b < s.b; b++) {
        k.offsets[b] = offs[b % n];
        for (int64_t l = 0; l < s.l; l++)
            want_drop += !row_in_range(k.offsets[b], l, s.m);
    }
    if (want >= 0)
        bkt_check(want_drop == want, what, "the reference drops %lld rows, worked out by hand %lld",
                  (long long)want_drop, (long long)want);
    size_t es = bk_dtype_size(dt), kc_bytes = (size_t)k.kc_n * es, vc_bytes = (size_t)k.vc_n * es;
    unsigned char *kc_want = bkt_snapshot(k.kc.data, kc_bytes), *vc_want = bkt_snapshot(k.vc.data, vc_bytes);
    ref_append(&k.kn, &k.kc, k.offsets, kc_want);
    ref_append(&k.vn, &k.vc, k.offsets, vc_want);
    bk_kv_append_desc d = {s.b, s.h, s.l, s.m, s.dk, s.dv, dt};
    bk_kv_append_plan plan;
    if (bkt_expect_status(bk_kv_append_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
        /* a zeroed counter and one that already holds a count (added to, never reset) */
        const int64_t starts[2] = {0, 5};
        for (int st = 0; st < 2; st++) {
            int64_t dropped = starts[st], one[1] = {1};
            bk_tensor tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, one);
            bk_kv_append_args args = {k.kn, k.vn, k.off, k.kc, k.vc, &tdrop};
            if (bkt_expect_status(append_run(&plan, &args, &k), BK_STATUS_SUCCESS, what)) {
                same_image(what, "k_cache", k.kc.data, kc_want, kc_bytes, es);
                same_image(what, "v_cache", k.vc.data, vc_want, vc_bytes, es);
                bkt_check(dropped == starts[st] + want_drop, what, "dropped_rows is %lld, expected %lld + %lld",
                          (long long)dropped, (long long)starts[st], (long long)want_drop);
            }
        }
        /* without dropped_rows: the same bytes, nothing else touched */
        bk_kv_append_args nodrop = {k.kn, k.vn, k.off, k.kc, k.vc, NULL};
        if (bkt_expect_status(append_run(&plan, &nodrop, &k), BK_STATUS_SUCCESS, what))
            same_image(what, "k_cache (no dropped_rows)", k.kc.data, kc_want, kc_bytes, es);
    }
    bkt_free(kc_want);
    bkt_free(vc_want);
    free_bufs(&k);
}

/* Every CUDA out-of-range case for one dtype: negative and past-the-end offsets mixed in
 * one call. */
static void test_cuda_out_of_range_all(bk_target gpu, bk_dtype dt)
{
    /* the bug report's call: request 0 drops l = 2..4, request 2 drops l = 0, 1 and writes
       l = 2..4 at rows 0..2: 5 dropped */
    const int64_t report[4] = {15, 0, -2, 12};
    test_cuda_out_of_range(gpu, dt, (kv_shape){4, 2, 5, 17, 64, 64}, 0, report, 4, 5);
    /* offset -1 at new_len 4: l = 0 dropped, l = 1..3 written at rows 0..2 */
    const int64_t minus1[3] = {-1, 3, -4};
    test_cuda_out_of_range(gpu, dt, (kv_shape){3, 3, 4, 9, 8, 16}, 1, minus1, 3, 1 + 0 + 4);
    /* per b: partly past the end, partly before the start, all in, far out both ways */
    kv_shape shapes[3] = {{7, 3, 5, 12, 64, 32}, {9, 2, 4, 9, 5, 3}, {3, 2, 6, 10, 0, 4} /* D_k 0 */};
    const int64_t pads[3] = {0, 3, 1};
    for (int i = 0; i < 3; i++) {
        kv_shape s = shapes[i];
        const int64_t offs[9] = {s.m - s.l + 2, -3, 0, INT64_MAX, INT64_MIN, s.m, s.m - s.l, -(int64_t)s.l + 1,
                                 INT64_MIN + 1};
        test_cuda_out_of_range(gpu, dt, s, pads[i], offs, 9, -1);
    }
    /* 256 requests, offsets drawn over [-new_len - 2, max_cache_len + 2] */
    int64_t many[256];
    for (int b = 0; b < 256; b++)
        many[b] = bkt_randint(-8, 22);
    test_cuda_out_of_range(gpu, dt, (kv_shape){256, 2, 6, 20, 16, 8}, 0, many, 256, -1);
}

/* Found by fuzz/fuzz_kvcache: zero-width rows (head_dim_k = head_dim_v = 0) with 2^31 - 1
 * heads walked every empty (b, h) pair on the CPU (a hang); nothing is copied, so run
 * returns at once. Then extents whose products pass int64: can_implement refuses them
 * with a sentence (never wraps) and writes nothing. */
static void test_empty_huge_and_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bk_kv_append_desc d = {1, INT32_MAX, 6, 16, 0, 0, dt};
    bk_kv_append_plan plan;
    int64_t sn[4] = {1, INT32_MAX, 6, 0}, sc[4] = {1, INT32_MAX, 16, 0}, so[1] = {1};
    int64_t off[1] = {3};
    float cache[8];
    bkt_poison(cache, dt, 8);
    void *cache0 = bkt_snapshot(cache, sizeof cache);
    bk_kv_append_args a = {bkt_view(NULL, dt, 4, sn), bkt_view(NULL, dt, 4, sn), bkt_view(off, BK_DTYPE_I64, 1, so),
                           bkt_view(NULL, dt, 4, sc), bkt_view(NULL, dt, 4, sc), NULL};
    if (bkt_expect_status(bk_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "kv_append zero-width select"))
        bkt_expect_status(bk_kv_append_run(&plan, NULL, (bk_workspace){0}, &a), BK_STATUS_SUCCESS,
                          "kv_append zero-width rows, 2^31-1 heads");

    bk_kv_append_desc h = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, 8, dt};
    int64_t hn[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX}, hv[4] = {INT32_MAX, INT32_MAX, INT32_MAX, 8};
    int64_t ho[1] = {INT32_MAX};
    if (bkt_expect_status(bk_kv_append_select(&h, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                          "kv_append overflow select")) {
        bk_kv_append_args b = {bkt_view_huge(cache, dt, 4, hn), bkt_view_huge(cache, dt, 4, hv),
                               bkt_view_huge(off, BK_DTYPE_I64, 1, ho), bkt_view_huge(cache, dt, 4, hn),
                               bkt_view_huge(cache, dt, 4, hv), NULL};
        bkt_expect_overflow(bk_kv_append_can_implement(&plan, &b), "kv_append", "kv_append 2^124 k_new");
        bkt_expect_overflow(bk_kv_append_run(&plan, NULL, (bk_workspace){0}, &b), "kv_append", "kv_append run 2^124");
        bkt_check(bk_kv_append_workspace_size(&plan) == 0, "kv_append overflow workspace", "not 0");
    }
    bkt_check(bkt_same_bytes(cache0, cache, sizeof cache), "kv_append overflow", "cache written on failure");
    bkt_free(cache0);
}

int main(void)
{
    bkt_init("test_kv_append");
    const int64_t pads[4][2] = {{0, 0}, {3, 0}, {0, 5}, {2, 7}};
    bk_target targets[2] = {bk_target_cpu()};
    int ntargets = 1 + bkt_cuda_target("kv_append cuda", &targets[1]);
    for (int g = 0; g < ntargets; g++)
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
            for (size_t s = 0; s < sizeof k_shapes / sizeof k_shapes[0]; s++)
                for (int p = 0; p < 4; p++)
                    test_append(targets[g], k_dtypes[t], k_shapes[s], pads[p][0], pads[p][1], p == 3);
    for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
        test_out_of_range(k_dtypes[t]);
    if (ntargets == 2) {
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++) {
            test_cuda_out_of_range_all(targets[1], k_dtypes[t]);
        }
        if (!bkt_quick()) /* a larger GPU-only shape: 16-byte units over many blocks */
            test_append(targets[1], BK_DTYPE_BF16, (kv_shape){8, 8, 64, 512, 128, 128}, 0, 0, true);
        /* rows of more units than a block has lanes (f32 D 256: 64 units, 32 lanes) */
        test_append(targets[1], BK_DTYPE_F32, (kv_shape){3, 2, 9, 20, 256, 200}, 0, 0, false);
        /* batch beyond the grid's 65535 z blocks: the kernel strides over b */
        test_append(targets[1], BK_DTYPE_F16, (kv_shape){65537 + 3, 1, 1, 2, 8, 4}, 0, 0, true);
        const int64_t mixed[4] = {-1, 3, 1, -2};
        test_cuda_out_of_range(targets[1], BK_DTYPE_BF16, (kv_shape){65537 + 3, 2, 2, 4, 8, 8}, 0, mixed, 4, -1);
    }
    test_bad_desc();
    test_bad_args();
    test_empty_huge_and_overflow();
    return bkt_finish();
}
