/* test_paged_kv_append.c - paged_kv_append against a byte-level reference with its own
 * page arithmetic: f16/bf16/f32, page sizes 1, 3 and 16, shuffled pages, ragged appends
 * (some empty), a prefill followed by decode steps, bad index data, bad tensors and
 * the CUDA section.
 *
 * The new rows and the pool are random BYTES (every bit pattern), and the whole pool
 * is compared byte for byte after each call: written slots carry the new bytes, every
 * other byte keeps its prior value. The prefill/decode simulation also reads every
 * token of every request back through the test's own page lists. */
#include "bk_test.h"

#include <stdlib.h>
#include <string.h>

static const bk_dtype k_dtypes[] = {BK_DTYPE_F16, BK_DTYPE_BF16, BK_DTYPE_F32};

#define MAX_BATCH 8
#define MAX_PAGES_PER_REQ 256
#define JUNK_INDICES 3 /* entries past kv_indptr[batch] in kv_indices: never read */

static void fill_bytes(void *p, size_t bytes)
{
    unsigned char *c = (unsigned char *)p;
    for (size_t i = 0; i < bytes; i++)
        c[i] = (unsigned char)(bkt_rand_u64() >> 56);
}

/* The test's own model of a paged cache: the pool bytes, a shuffled free list and each
 * request's token count and page list. */
typedef struct req {
    int32_t len;
    int32_t npages;
    int32_t pages[MAX_PAGES_PER_REQ];
} req;

typedef struct cache {
    bk_dtype dt;
    int32_t num_pages, hkv, page_size, head_dim, batch;
    size_t es, pool_bytes;
    unsigned char *k, *v; /* the pool the library writes */
    int32_t *free_list;
    int32_t nfree;
    req r[MAX_BATCH];
    /* every token ever appended, per request: [token][hkv][head_dim] element bytes */
    unsigned char *hist_k[MAX_BATCH], *hist_v[MAX_BATCH];
    /* page table of the last step (valid for the library) */
    int32_t indptr[MAX_BATCH + 1], last[MAX_BATCH];
    int32_t *indices;
    int32_t nindices;
} cache;

static void cache_init(cache *c, bk_dtype dt, int32_t batch, int32_t num_pages, int32_t hkv, int32_t page_size,
                       int32_t head_dim)
{
    memset(c, 0, sizeof *c);
    c->dt = dt;
    c->batch = batch;
    c->num_pages = num_pages;
    c->hkv = hkv;
    c->page_size = page_size;
    c->head_dim = head_dim;
    c->es = bk_dtype_size(dt);
    c->pool_bytes = (size_t)num_pages * hkv * page_size * head_dim * c->es;
    c->k = bkt_alloc(dt, (int64_t)num_pages * hkv * page_size * head_dim);
    c->v = bkt_alloc(dt, (int64_t)num_pages * hkv * page_size * head_dim);
    fill_bytes(c->k, c->pool_bytes);
    fill_bytes(c->v, c->pool_bytes);
    c->free_list = malloc(sizeof(int32_t) * (size_t)num_pages);
    c->indices = malloc(sizeof(int32_t) * (size_t)(num_pages + JUNK_INDICES));
    /* Fisher-Yates: pages are handed out in a random order */
    for (int32_t i = 0; i < num_pages; i++)
        c->free_list[i] = i;
    for (int32_t i = num_pages - 1; i > 0; i--) {
        int32_t j = (int32_t)bkt_randint(0, i), t = c->free_list[i];
        c->free_list[i] = c->free_list[j];
        c->free_list[j] = t;
    }
    c->nfree = num_pages;
}

static void cache_free(cache *c)
{
    bkt_free(c->k);
    bkt_free(c->v);
    free(c->free_list);
    free(c->indices);
    for (int32_t b = 0; b < c->batch; b++) {
        free(c->hist_k[b]);
        free(c->hist_v[b]);
    }
}

static size_t row_bytes(const cache *c)
{
    return (size_t)c->hkv * c->head_dim * c->es;
}

/* Grows request b to `len` tokens (taking pages off the free list) and rebuilds the
 * page table. Returns false when the pool is exhausted (a test setup error). */
static bool cache_grow(cache *c, const int32_t *add)
{
    for (int32_t b = 0; b < c->batch; b++) {
        req *r = &c->r[b];
        int32_t len = r->len + add[b];
        while ((int64_t)r->npages * c->page_size < len) {
            if (c->nfree == 0 || r->npages == MAX_PAGES_PER_REQ)
                return false;
            r->pages[r->npages++] = c->free_list[--c->nfree];
        }
        size_t rb = row_bytes(c);
        c->hist_k[b] = realloc(c->hist_k[b], rb * (size_t)(len > 0 ? len : 1));
        c->hist_v[b] = realloc(c->hist_v[b], rb * (size_t)(len > 0 ? len : 1));
        r->len = len;
    }
    c->indptr[0] = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        const req *r = &c->r[b];
        for (int32_t p = 0; p < r->npages; p++)
            c->indices[c->indptr[b] + p] = r->pages[p];
        c->indptr[b + 1] = c->indptr[b] + r->npages;
        c->last[b] = r->len - (r->npages - 1) * c->page_size;
    }
    c->nindices = c->indptr[c->batch] + JUNK_INDICES;
    for (int32_t i = c->indptr[c->batch]; i < c->nindices; i++)
        c->indices[i] = -7; /* never read */
    return true;
}

/* The tensors of the page table and pool, as the library sees them. */
static bk_paged_kv cache_tensors(cache *c)
{
    bk_paged_kv kv;
    int64_t pool[4] = {c->num_pages, c->hkv, c->page_size, c->head_dim};
    int64_t ni[1] = {c->nindices}, np[1] = {c->batch + 1}, nl[1] = {c->batch};
    kv.k_pages = bkt_view(c->k, c->dt, 4, pool);
    kv.v_pages = bkt_view(c->v, c->dt, 4, pool);
    kv.kv_indices = bkt_view(c->indices, BK_DTYPE_I32, 1, ni);
    kv.kv_indptr = bkt_view(c->indptr, BK_DTYPE_I32, 1, np);
    kv.last_page_len = bkt_view(c->last, BK_DTYPE_I32, 1, nl);
    return kv;
}

/* Byte offset in the pool of element d of token t, head h, of request b: the test's
 * own page arithmetic over its page list. */
static size_t slot_bytes(const cache *c, int32_t b, int64_t t, int64_t h, int64_t d)
{
    int64_t page = c->r[b].pages[t / c->page_size];
    return (size_t)((((page * c->hkv + h) * c->page_size) + t % c->page_size) * c->head_dim + d) * c->es;
}

static bool same_image(const char *what, const char *name, const void *got, const void *want, size_t bytes, size_t es)
{
    if (bytes == 0 || memcmp(got, want, bytes) == 0)
        return bkt_check(true, what, "ok");
    size_t i = 0;
    while (((const unsigned char *)got)[i] == ((const unsigned char *)want)[i])
        i++;
    return bkt_check(false, what, "%s differs from the expected bytes at pool element %zu", name, i / es);
}

/* The target the correctness cases run on (main loops over CPU, then CUDA when present). */
static bk_target g_target;

/* Runs the plan on its target: on CUDA every buffer travels through bkt_dev (a
 * non-default stream); the pools and dropped_rows come back. */
static bk_status pkv_run(const bk_paged_kv_append_plan *plan, const bk_paged_kv_append_args *host, const cache *c,
                         size_t new_bytes)
{
    bk_paged_kv_append_args a = *host;
    bk_tensor drop = host->dropped_rows ? *host->dropped_rows : (bk_tensor){0};
    bkt_dev dev = bkt_dev_begin(plan->info.target);
    a.k_new.data = bkt_dev_in(&dev, a.k_new.data, new_bytes);
    a.v_new.data = bkt_dev_in(&dev, a.v_new.data, new_bytes);
    a.append_indptr.data = bkt_dev_in(&dev, a.append_indptr.data, (size_t)a.append_indptr.shape[0] * 4);
    a.kv.k_pages.data = bkt_dev_out(&dev, a.kv.k_pages.data, c->pool_bytes);
    a.kv.v_pages.data = bkt_dev_out(&dev, a.kv.v_pages.data, c->pool_bytes);
    a.kv.kv_indices.data = bkt_dev_in(&dev, a.kv.kv_indices.data, (size_t)a.kv.kv_indices.shape[0] * 4);
    a.kv.kv_indptr.data = bkt_dev_in(&dev, a.kv.kv_indptr.data, (size_t)a.kv.kv_indptr.shape[0] * 4);
    a.kv.last_page_len.data = bkt_dev_in(&dev, a.kv.last_page_len.data, (size_t)a.kv.last_page_len.shape[0] * 4);
    if (host->dropped_rows) {
        drop.data = bkt_dev_out(&dev, drop.data, 8);
        a.dropped_rows = &drop;
    }
    bk_status st = bk_paged_kv_append_run(plan, bkt_dev_stream(&dev), (bk_workspace){0}, &a);
    return bkt_dev_end(&dev) ? st : BK_STATUS_DEVICE_ERROR;
}

/* One append call: request b appends add[b] random rows. Builds the new rows (padded
 * view when pad > 0), grows the page table, computes the expected pool, runs, compares.
 * Returns false if the library call failed. */
static bool append_step(cache *c, const int32_t *add, int64_t pad, const char *what_in)
{
    const bool gpu = g_target.kind == BK_TARGET_CUDA;
    char what[200];
    snprintf(what, sizeof what, "%s %s", gpu ? "cuda" : "cpu", what_in);
    int32_t prior[MAX_BATCH], start[MAX_BATCH + 1];
    start[0] = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        prior[b] = c->r[b].len;
        start[b + 1] = start[b] + add[b];
    }
    int32_t nnz = start[c->batch];
    if (!bkt_check(cache_grow(c, add), what, "test setup: pool of %d pages exhausted", c->num_pages))
        return false;

    int64_t shape[3] = {nnz, c->hkv, c->head_dim}, one[1] = {1}, np[1] = {c->batch + 1};
    bk_tensor probe = bkt_view_padded(NULL, c->dt, 3, shape, pad);
    int64_t n_alloc = bkt_view_span(&probe) + pad + 1;
    void *kn = bkt_alloc(c->dt, n_alloc), *vn = bkt_alloc(c->dt, n_alloc);
    fill_bytes(kn, (size_t)n_alloc * c->es);
    fill_bytes(vn, (size_t)n_alloc * c->es);
    bk_tensor tkn = bkt_view_padded(kn, c->dt, 3, shape, pad), tvn = bkt_view_padded(vn, c->dt, 3, shape, pad);

    /* reference: prior pool, then each new element at slot (b, prior[b] + r, h, d) */
    unsigned char *kwant = bkt_snapshot(c->k, c->pool_bytes), *vwant = bkt_snapshot(c->v, c->pool_bytes);
    void *kprior = bkt_snapshot(c->k, c->pool_bytes), *vprior = bkt_snapshot(c->v, c->pool_bytes);
    size_t rb = row_bytes(c);
    for (int32_t b = 0; b < c->batch; b++)
        for (int32_t r = 0; r < add[b]; r++) {
            int64_t t = prior[b] + r, row = start[b] + r;
            for (int64_t h = 0; h < c->hkv; h++)
                for (int64_t d = 0; d < c->head_dim; d++) {
                    size_t src = (size_t)(row * tkn.strides[0] + h * tkn.strides[1] + d) * c->es;
                    size_t hist = (size_t)t * rb + (size_t)(h * c->head_dim + d) * c->es;
                    memcpy(kwant + slot_bytes(c, b, t, h, d), (unsigned char *)kn + src, c->es);
                    memcpy(vwant + slot_bytes(c, b, t, h, d), (unsigned char *)vn + src, c->es);
                    memcpy(c->hist_k[b] + hist, (unsigned char *)kn + src, c->es);
                    memcpy(c->hist_v[b] + hist, (unsigned char *)vn + src, c->es);
                }
        }

    int64_t dropped = 0x1234;
    bk_tensor tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, one);
    bk_paged_kv_append_desc d = {c->batch, nnz, {c->num_pages, c->hkv, c->page_size, c->head_dim, c->dt}};
    bk_paged_kv_append_plan plan;
    bool ok = false;
    const size_t new_bytes = (size_t)n_alloc * c->es;
    if (bkt_expect_status(bk_paged_kv_append_select(&d, g_target, BK_PREFER_DETERMINISTIC, &plan),
                          BK_STATUS_SUCCESS, what)) {
        bkt_check(plan.info.precision.deterministic && plan.info.sku.op == BK_OP_PAGED_KV_APPEND &&
                      plan.info.sku.dtype == c->dt && bk_paged_kv_append_workspace_size(&plan) == 0 &&
                      plan.info.sku.arch == (gpu ? BK_ARCH_SM80 : BK_ARCH_CPU),
                  what, "plan info is not the %s paged_kv_append kernel", gpu ? "CUDA" : "CPU");
        bk_paged_kv_append_args args = {tkn, tvn, bkt_view(start, BK_DTYPE_I32, 1, np), cache_tensors(c), &tdrop};
        ok = bkt_expect_status(pkv_run(&plan, &args, c, new_bytes), BK_STATUS_SUCCESS, what);
        same_image(what, "k_pages", c->k, kwant, c->pool_bytes, c->es);
        same_image(what, "v_pages", c->v, vwant, c->pool_bytes, c->es);
        bkt_check(dropped == 0x1234, what, "dropped_rows changed though every row is in range");
        /* determinism: from the same prior pool, a rerun gives the bytes of the first run */
        void *kfirst = bkt_snapshot(c->k, c->pool_bytes), *vfirst = bkt_snapshot(c->v, c->pool_bytes);
        memcpy(c->k, kprior, c->pool_bytes);
        memcpy(c->v, vprior, c->pool_bytes);
        bkt_expect_status(pkv_run(&plan, &args, c, new_bytes), BK_STATUS_SUCCESS, what);
        bkt_check(bkt_same_bytes(c->k, kfirst, c->pool_bytes) && bkt_same_bytes(c->v, vfirst, c->pool_bytes), what,
                  "rerun is not bit-identical");
        bkt_free(kfirst);
        bkt_free(vfirst);
    }
    bkt_free(kwant);
    bkt_free(vwant);
    bkt_free(kprior);
    bkt_free(vprior);
    bkt_free(kn);
    bkt_free(vn);
    return ok;
}

/* Reads every token of every request back through the test's page lists and compares
 * it with the bytes appended for it. */
static void check_history(const cache *c, const char *what)
{
    size_t rb = row_bytes(c);
    int64_t bad = 0;
    for (int32_t b = 0; b < c->batch; b++)
        for (int64_t t = 0; t < c->r[b].len; t++)
            for (int64_t h = 0; h < c->hkv; h++) {
                size_t hist = (size_t)t * rb + (size_t)(h * c->head_dim) * c->es;
                size_t n = (size_t)c->head_dim * c->es;
                if (memcmp(c->k + slot_bytes(c, b, t, h, 0), c->hist_k[b] + hist, n) ||
                    memcmp(c->v + slot_bytes(c, b, t, h, 0), c->hist_v[b] + hist, n))
                    bad++;
            }
    bkt_check(bad == 0, what, "%lld (request, token, head) rows read back differ from what was appended",
              (long long)bad);
}

/* Requests with different prior lengths, each appending a different count (some 0). */
static void test_ragged(bk_dtype dt, int32_t page_size, int32_t hkv, int32_t head_dim, int64_t pad)
{
    static const int32_t prior[6] = {0, 7, 16, 33, 2, 1}, add[6] = {5, 0, 1, 13, 16, 0};
    char what[128];
    snprintf(what, sizeof what, "paged_kv_append %s P%d Hkv%d D%d pad%lld ragged", bk_dtype_name(dt), page_size, hkv,
             head_dim, (long long)pad);
    cache c;
    int32_t pages = 0;
    for (int b = 0; b < 6; b++)
        pages += (prior[b] + add[b] + page_size - 1) / page_size + 1;
    cache_init(&c, dt, 6, pages + 5, hkv, page_size, head_dim);
    if (bkt_check(cache_grow(&c, prior), what, "test setup"))
        append_step(&c, add, pad, what);
    cache_free(&c);
}

/* Random requests: batch, prior lengths and counts drawn at random. */
static void test_random(bk_dtype dt, int32_t page_size)
{
    int32_t batch = (int32_t)bkt_randint(1, MAX_BATCH), prior[MAX_BATCH], add[MAX_BATCH], pages = 0;
    int32_t hkv = (int32_t)bkt_randint(1, 4), head_dim = (int32_t)bkt_randint(1, 40);
    for (int32_t b = 0; b < batch; b++) {
        prior[b] = (int32_t)bkt_randint(0, 40);
        add[b] = (int32_t)bkt_randint(prior[b] == 0 ? 1 : 0, 20);
        pages += (prior[b] + add[b] + page_size - 1) / page_size + 1;
    }
    char what[128];
    snprintf(what, sizeof what, "paged_kv_append %s P%d Hkv%d D%d random batch %d", bk_dtype_name(dt), page_size, hkv,
             head_dim, batch);
    cache c;
    cache_init(&c, dt, batch, pages + (int32_t)bkt_randint(1, 9), hkv, page_size, head_dim);
    if (bkt_check(cache_grow(&c, prior), what, "test setup"))
        append_step(&c, add, bkt_randint(0, 2), what);
    cache_free(&c);
}

/* Edge cases: nothing appended (nnz 0), and a single request (batch 1) whose append
 * starts mid-page and fills several pages. */
static void test_edges(bk_dtype dt, int32_t page_size)
{
    char what[128];
    cache c;
    static const int32_t prior2[2] = {3, 1}, none[2] = {0, 0};
    snprintf(what, sizeof what, "paged_kv_append %s P%d nnz 0", bk_dtype_name(dt), page_size);
    cache_init(&c, dt, 2, 8, 2, page_size, 5);
    if (bkt_check(cache_grow(&c, prior2), what, "test setup"))
        append_step(&c, none, 0, what);
    cache_free(&c);

    static const int32_t prior1[1] = {2}, add1[1] = {37};
    snprintf(what, sizeof what, "paged_kv_append %s P%d batch 1", bk_dtype_name(dt), page_size);
    cache_init(&c, dt, 1, 45, 3, page_size, 9);
    if (bkt_check(cache_grow(&c, prior1), what, "test setup"))
        append_step(&c, add1, 2, what);
    cache_free(&c);
}

/* A prefill of each prompt, then decode steps of one token per request (one request
 * pauses now and then), then a second chunk; every token is read back at the end. */
static void test_prefill_decode(bk_dtype dt, int32_t page_size)
{
    enum { BATCH = 4, STEPS = 9 };
    static const int32_t prompt[BATCH] = {5, 17, 1, 16};
    char what[128];
    cache c;
    cache_init(&c, dt, BATCH, 150, 2, page_size, 64); /* 1-token pages: ~100 used */
    snprintf(what, sizeof what, "paged_kv_append %s P%d prefill", bk_dtype_name(dt), page_size);
    bool ok = append_step(&c, prompt, 0, what);
    for (int s = 0; ok && s < STEPS; s++) {
        int32_t add[BATCH] = {1, 1, 1, 1};
        add[s % BATCH] = s % 3 == 2 ? 0 : 1; /* request s % 4 sits out every third step */
        snprintf(what, sizeof what, "paged_kv_append %s P%d decode step %d", bk_dtype_name(dt), page_size, s);
        ok = append_step(&c, add, s % 2, what);
    }
    int32_t chunk[BATCH] = {3, 0, 20, 1};
    snprintf(what, sizeof what, "paged_kv_append %s P%d second chunk", bk_dtype_name(dt), page_size);
    if (ok)
        append_step(&c, chunk, 1, what);
    snprintf(what, sizeof what, "paged_kv_append %s P%d read back", bk_dtype_name(dt), page_size);
    check_history(&c, what);
    cache_free(&c);
}

/* ------------------------------------------------------------ bad inputs -- */

static void test_bad_desc(void)
{
    const bk_paged_kv_append_desc good = {3, 6, {10, 2, 4, 3, BK_DTYPE_F16}};
    bk_paged_kv_append_plan plan;
    memset(&plan, 0x44, sizeof plan);
    bk_paged_kv_append_plan plan0 = plan;
    struct {
        const char *what;
        bk_paged_kv_append_desc d;
        bk_status want;
        const char *msg;
    } cases[16];
    int nc = 0;
#define CASE(w, st, m) (cases[nc].what = (w), cases[nc].d = good, cases[nc].want = (st), cases[nc].msg = (m), &cases[nc++].d)
    CASE("batch 0", BK_STATUS_INVALID_PROBLEM, "paged_kv_append: desc.batch is 0, expected >= 1")->batch = 0;
    CASE("nnz -1", BK_STATUS_INVALID_PROBLEM, "desc.nnz is -1")->nnz = -1;
    CASE("num_pages 0", BK_STATUS_INVALID_PROBLEM, "desc.paged_kv.num_pages is 0")->paged_kv.num_pages = 0;
    CASE("kv_heads 0", BK_STATUS_INVALID_PROBLEM, "desc.paged_kv.kv_heads is 0")->paged_kv.kv_heads = 0;
    CASE("page_size 0", BK_STATUS_INVALID_PROBLEM, "desc.paged_kv.page_size is 0")->paged_kv.page_size = 0;
    CASE("head_dim -3", BK_STATUS_INVALID_PROBLEM, "desc.paged_kv.head_dim is -3")->paged_kv.head_dim = -3;
    CASE("dtype f64", BK_STATUS_UNSUPPORTED, "desc.paged_kv.dtype is f64")->paged_kv.dtype = BK_DTYPE_F64;
    CASE("dtype i32", BK_STATUS_UNSUPPORTED, "desc.paged_kv.dtype is i32")->paged_kv.dtype = BK_DTYPE_I32;
    CASE("dtype 99", BK_STATUS_INVALID_PROBLEM, "not a bk_dtype")->paged_kv.dtype = (bk_dtype)99;
#undef CASE
    for (int i = 0; i < nc; i++) {
        char what[96];
        snprintf(what, sizeof what, "paged_kv_append %s", cases[i].what);
        bkt_expect_status(bk_paged_kv_append_select(&cases[i].d, bk_target_cpu(), BK_PREFER_FASTEST, &plan),
                          cases[i].want, what);
        bkt_check(strstr(bk_last_error(), cases[i].msg) != NULL, what, "error sentence \"%s\" lacks \"%s\"",
                  bk_last_error(), cases[i].msg);
        bkt_check(memcmp(&plan, &plan0, sizeof plan) == 0, what, "plan written on failure");
    }
    bkt_expect_status(bk_paged_kv_append_select(NULL, bk_target_cpu(), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_INVALID_PROBLEM, "paged_kv_append NULL desc");
    bkt_expect_status(bk_paged_kv_append_select(&good, bk_target_cpu(), BK_PREFER_FASTEST, NULL),
                      BK_STATUS_INVALID_PROBLEM, "paged_kv_append NULL plan");
    bkt_expect_status(bk_paged_kv_append_select(&good, bk_target_cpu(), (bk_preference)5, &plan),
                      BK_STATUS_INVALID_PROBLEM, "paged_kv_append bad preference");
    bkt_expect_status(bk_paged_kv_append_select(&good, bk_target_cuda_cc(0, 7, 5), BK_PREFER_FASTEST, &plan),
                      BK_STATUS_UNSUPPORTED, "paged_kv_append on sm_75 (every CUDA kernel needs sm_80)");
    bkt_check(memcmp(&plan, &plan0, sizeof plan) == 0, "paged_kv_append bad select", "plan written on failure");
    bk_paged_kv_append_desc nnz0 = good;
    nnz0.nnz = 0;
    bkt_expect_status(bk_paged_kv_append_select(&nnz0, bk_target_cpu(), BK_PREFER_REFERENCE, &plan),
                      BK_STATUS_SUCCESS, "paged_kv_append nnz 0 select");
}

/* A valid call (batch 3, page_size 4, f16), then one defect at a time: the exact
 * status, the pool and dropped_rows unchanged, a sentence. */
static void test_bad_args(void)
{
    const bk_dtype dt = BK_DTYPE_F16;
    const int32_t prior[3] = {3, 4, 0}, add[3] = {2, 1, 3};
    cache c;
    cache_init(&c, dt, 3, 9, 2, 4, 3);
    int32_t grown[3] = {prior[0] + add[0], prior[1] + add[1], prior[2] + add[2]};
    cache_grow(&c, grown); /* kv_len {5, 5, 3}: pages {2, 2, 1} */
    const int32_t nnz = 6;
    int32_t start[4] = {0, 2, 3, 6};
    int64_t shape[3] = {nnz, 2, 3}, np[1] = {4}, one[1] = {1}, two[1] = {2};
    uint16_t kn[36], vn[36], big[512];
    int64_t start64[4] = {0, 2, 3, 6};
    fill_bytes(kn, sizeof kn);
    fill_bytes(vn, sizeof vn);
    int64_t dropped = 99;
    bk_tensor tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, one), drop2 = bkt_view(big, BK_DTYPE_I64, 1, two);
    void *k0 = bkt_snapshot(c.k, c.pool_bytes), *v0 = bkt_snapshot(c.v, c.pool_bytes);

    bk_paged_kv_append_desc d = {3, nnz, {9, 2, 4, 3, dt}};
    bk_paged_kv_append_plan plan;
    bkt_expect_status(bk_paged_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS,
                      "paged_kv_append bad-args select");
    /* index arrays each case may edit: copies of the valid ones */
    int32_t indptr[4], last[3], indices[64], aptr[4];
    bk_paged_kv_append_args good = {bkt_view(kn, dt, 3, shape), bkt_view(vn, dt, 3, shape),
                                    bkt_view(aptr, BK_DTYPE_I32, 1, np), cache_tensors(&c), &tdrop};
    good.kv.kv_indptr.data = indptr;
    good.kv.last_page_len.data = last;
    good.kv.kv_indices.data = indices;

    struct {
        const char *what;
        bk_paged_kv_append_args args;
        bk_status want;
        const char *msg;
        int edit; /* which index value to break (0: none, the tensor is broken instead) */
    } cases[48];
    int nc = 0;
#define CASE(w, st, m, e)                                                                                     \
    (cases[nc].what = (w), cases[nc].args = good, cases[nc].want = (st), cases[nc].msg = (m), cases[nc].edit = (e), \
     &cases[nc++].args)
    /* index data (read by run on the CPU) */
    CASE("kv_indptr[0] = 1", BK_STATUS_INVALID_PROBLEM, "kv_indptr[0] is 1, expected 0", 1);
    CASE("kv_indptr not increasing", BK_STATUS_INVALID_PROBLEM, "kv_indptr[2] is 2 after kv_indptr[1] = 2", 2);
    CASE("last_page_len 0", BK_STATUS_INVALID_PROBLEM, "last_page_len[1] is 0, expected 1..page_size = 4", 3);
    CASE("last_page_len > page_size", BK_STATUS_INVALID_PROBLEM, "last_page_len[0] is 5", 4);
    CASE("page id == num_pages", BK_STATUS_OUT_OF_RANGE, "kv_indices[3] is 9, expected a page id in 0..8", 5);
    CASE("negative page id", BK_STATUS_OUT_OF_RANGE, "kv_indices[0] is -1", 6);
    CASE("kv_indptr[batch] beyond kv_indices", BK_STATUS_OUT_OF_RANGE, "kv_indptr[3] is 5, beyond kv_indices of 4", 7);
    CASE("n_b > kv_len[b]", BK_STATUS_OUT_OF_RANGE, "request 2 appends 3 rows (append_indptr), but its pages hold kv_len = 2", 8);
    CASE("append_indptr[batch] < nnz", BK_STATUS_OUT_OF_RANGE, "append_indptr[3] is 5, expected the row count 6", 9);
    CASE("append_indptr[batch] > nnz", BK_STATUS_OUT_OF_RANGE, "append_indptr[3] is 7", 10);
    CASE("append_indptr decreasing", BK_STATUS_INVALID_PROBLEM, "append_indptr[2] is 1 after append_indptr[1] = 2", 11);
    CASE("append_indptr[0] = 1", BK_STATUS_INVALID_PROBLEM, "append_indptr[0] is 1, expected 0", 12);
    CASE("n_b > kv_len[b] with a fresh request", BK_STATUS_OUT_OF_RANGE, "request 0 appends 6 rows", 13);
    /* tensors (can_implement) */
    CASE("k_new.shape[0] wrong", BK_STATUS_INVALID_PROBLEM, "k_new.shape[0] is 5, expected nnz = 6", 0)->k_new.shape[0] = 5;
    CASE("v_new.shape[2] wrong", BK_STATUS_INVALID_PROBLEM, "v_new.shape[2] is 4, expected head_dim = 3", 0)->v_new.shape[2] = 4;
    CASE("v_new dtype bf16", BK_STATUS_INVALID_PROBLEM, "v_new.dtype is bf16, expected f16", 0)->v_new.dtype = BK_DTYPE_BF16;
    CASE("k_new NULL data", BK_STATUS_INVALID_PROBLEM, "k_new.data is NULL", 0)->k_new.data = NULL;
    CASE("k_new broadcast heads", BK_STATUS_UNSUPPORTED, "broadcast is not supported", 0)->k_new.strides[1] = 0;
    {
        bk_paged_kv_append_args *a = CASE("k_new inner stride 2", BK_STATUS_UNSUPPORTED, "k_new.strides[2] is 2", 0);
        a->k_new.data = big;
        a->k_new.strides[0] = 12;
        a->k_new.strides[1] = 6;
        a->k_new.strides[2] = 2;
        a->k_new.capacity = 512;
    }
    CASE("k_new capacity too small", BK_STATUS_BUFFER_TOO_SMALL, "k_new reaches 36 elements", 0)->k_new.capacity = 35;
    CASE("append_indptr i64", BK_STATUS_INVALID_PROBLEM, "append_indptr.dtype is i64, expected i32", 0)->append_indptr =
        bkt_view(start64, BK_DTYPE_I64, 1, np);
    CASE("append_indptr shape [batch]", BK_STATUS_INVALID_PROBLEM, "append_indptr.shape[0] is 3, expected batch+1 = 4", 0)
        ->append_indptr.shape[0] = 3;
    {
        bk_paged_kv_append_args *a = CASE("append_indptr strided", BK_STATUS_UNSUPPORTED, "append_indptr.strides", 0);
        a->append_indptr.data = big;
        a->append_indptr.strides[0] = 2;
        a->append_indptr.capacity = 256;
    }
    CASE("k_pages shape wrong", BK_STATUS_INVALID_PROBLEM, "k_pages.shape[2] is 3, expected page_size = 4", 0)
        ->kv.k_pages.shape[2] = 3;
    CASE("v_pages dtype f32", BK_STATUS_INVALID_PROBLEM, "v_pages.dtype is f32", 0)->kv.v_pages.dtype = BK_DTYPE_F32;
    {
        bk_paged_kv_append_args *a = CASE("k_pages padded (not contiguous)", BK_STATUS_UNSUPPORTED,
                                          "k_pages.strides are", 0);
        a->kv.k_pages.strides[0] += 1;
        a->kv.k_pages.capacity = 0;
    }
    CASE("v_pages broadcast pages (output)", BK_STATUS_INVALID_PROBLEM, "an output cannot broadcast", 0)
        ->kv.v_pages.strides[0] = 0;
    CASE("k_pages overlapping", BK_STATUS_INVALID_PROBLEM, "overlap", 0)->kv.k_pages.strides[2] = 1;
    CASE("k_pages capacity too small", BK_STATUS_BUFFER_TOO_SMALL, "k_pages reaches", 0)->kv.k_pages.capacity -= 1;
    CASE("v_pages NULL data", BK_STATUS_INVALID_PROBLEM, "v_pages.data is NULL", 0)->kv.v_pages.data = NULL;
    CASE("kv_indptr i64", BK_STATUS_INVALID_PROBLEM, "kv_indptr.dtype is i64", 0)->kv.kv_indptr.dtype = BK_DTYPE_I64;
    CASE("last_page_len shape [batch+1]", BK_STATUS_INVALID_PROBLEM, "last_page_len.shape[0] is 4", 0)
        ->kv.last_page_len.shape[0] = 4;
    CASE("kv_indices rank 2", BK_STATUS_INVALID_PROBLEM, "kv_indices.rank is 2", 0)->kv.kv_indices.rank = 2;
    {
        bk_paged_kv_append_args *a = CASE("dropped_rows shape [2]", BK_STATUS_INVALID_PROBLEM, "dropped_rows.shape[0] is 2", 0);
        a->dropped_rows = &drop2;
    }
#undef CASE
    for (int i = 0; i < nc; i++) {
        char what[128];
        snprintf(what, sizeof what, "paged_kv_append %s", cases[i].what);
        memcpy(indptr, c.indptr, sizeof indptr);
        memcpy(last, c.last, sizeof last);
        memcpy(indices, c.indices, sizeof(int32_t) * (size_t)c.nindices);
        memcpy(aptr, start, sizeof aptr);
        bk_paged_kv_append_args *a = &cases[i].args;
        switch (cases[i].edit) {
        case 1: indptr[0] = 1; break;
        case 2: indptr[2] = indptr[1]; break;
        case 3: last[1] = 0; break;
        case 4: last[0] = 5; break;
        case 5: indices[3] = 9; break;
        case 6: indices[0] = -1; break;
        case 7: a->kv.kv_indices.shape[0] = indptr[3] - 1; break;
        case 8: last[2] = 2; break; /* request 2 then holds 2 tokens but appends 3 */
        case 9: aptr[3] = 5; break;
        case 10: aptr[3] = 7; break;
        case 11: aptr[2] = 1; break;
        case 12: aptr[0] = 1; break;
        case 13: aptr[1] = 6; aptr[2] = 6; break; /* request 0 (5 tokens) appends all 6 rows */
        }
        dropped = 99;
        if (cases[i].edit == 0)
            bkt_expect_status(bk_paged_kv_append_can_implement(&plan, a), cases[i].want, what);
        else
            bkt_expect_status(bk_paged_kv_append_can_implement(&plan, a), BK_STATUS_SUCCESS,
                              "paged_kv_append can_implement reads no index value");
        bkt_expect_status(bk_paged_kv_append_run(&plan, NULL, (bk_workspace){0}, a), cases[i].want, what);
        bkt_check(bk_last_error()[0] != '\0', what, "no error sentence");
        bkt_check(strstr(bk_last_error(), cases[i].msg) != NULL, what, "error sentence \"%s\" lacks \"%s\"",
                  bk_last_error(), cases[i].msg);
        bkt_check(bkt_same_bytes(k0, c.k, c.pool_bytes) && bkt_same_bytes(v0, c.v, c.pool_bytes), what,
                  "pool written on failure");
        bkt_check(dropped == 99, what, "dropped_rows written on failure");
    }
    bkt_expect_status(bk_paged_kv_append_run(NULL, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "paged_kv_append NULL plan");
    bkt_expect_status(bk_paged_kv_append_run(&plan, NULL, (bk_workspace){0}, NULL), BK_STATUS_INVALID_PROBLEM,
                      "paged_kv_append NULL args");
    bk_paged_kv_append_plan other = plan;
    other.info.sku.op = BK_OP_KV_APPEND;
    bkt_expect_status(bk_paged_kv_append_run(&other, NULL, (bk_workspace){0}, &good), BK_STATUS_INVALID_PROBLEM,
                      "paged_kv_append given another op's plan");
    bkt_check(bkt_same_bytes(k0, c.k, c.pool_bytes) && bkt_same_bytes(v0, c.v, c.pool_bytes) && dropped == 99,
              "paged_kv_append bad plans", "outputs written on failure");

    /* the untouched good call succeeds and writes exactly the 6 rows' slots */
    memcpy(indptr, c.indptr, sizeof indptr);
    memcpy(last, c.last, sizeof last);
    memcpy(indices, c.indices, sizeof(int32_t) * (size_t)c.nindices);
    memcpy(aptr, start, sizeof aptr);
    bkt_expect_status(bk_paged_kv_append_run(&plan, NULL, (bk_workspace){0}, &good), BK_STATUS_SUCCESS,
                      "paged_kv_append good args after the bad ones");
    size_t changed = 0;
    for (size_t i = 0; i < c.pool_bytes; i += c.es)
        changed += memcmp(c.k + i, (unsigned char *)k0 + i, c.es) != 0;
    /* 6 rows x 2 heads x 3 elements; a random 16-bit value equals its old one rarely */
    bkt_check(changed <= 36 && changed >= 30, "paged_kv_append good args", "%zu pool elements changed, expected ~36",
              changed);
    bkt_free(k0);
    bkt_free(v0);
    cache_free(&c);
}

/* The CUDA contract for rows that land outside the pool: they are skipped, the others
 * written, dropped_rows[0] += their count, status SUCCESS. Request 0's last page id is
 * set to num_pages (its rows there are dropped), request 1 claims 2 rows more than its
 * kv_len (the first 2 land before token 0), and nnz exceeds append_indptr[batch] by 2
 * (rows of no request). The reference places each row with the test's own page lists. */
static void test_cuda_drops(bk_target gpu, bk_dtype dt, int32_t page_size)
{
    char what[128];
    snprintf(what, sizeof what, "paged_kv_append cuda %s P%d out-of-range rows dropped", bk_dtype_name(dt), page_size);
    const int32_t B = 3, H = 2, D = 64;
    const int32_t prior[3] = {5, 0, 9}, add[3] = {7, 3, 2};
    cache c;
    cache_init(&c, dt, B, 40, H, page_size, D);
    int32_t grown[3] = {prior[0] + add[0], prior[1] + add[1], prior[2] + add[2]};
    if (!bkt_check(cache_grow(&c, grown), what, "test setup")) {
        cache_free(&c);
        return;
    }
    int32_t claim[3] = {add[0], add[1] + 2, add[2]}, start[4] = {0};
    for (int b = 0; b < B; b++)
        start[b + 1] = start[b] + claim[b];
    const int32_t nnz = start[B] + 2;
    const int32_t bad_page_pos = c.indptr[0] + c.r[0].npages - 1; /* request 0's last page */
    c.indices[bad_page_pos] = c.num_pages;
    int64_t shape[3] = {nnz, H, D}, np[1] = {B + 1}, one[1] = {1};
    int64_t n = (int64_t)nnz * H * D;
    void *kn = bkt_alloc(dt, n), *vn = bkt_alloc(dt, n);
    fill_bytes(kn, (size_t)n * c.es);
    fill_bytes(vn, (size_t)n * c.es);
    unsigned char *kwant = bkt_snapshot(c.k, c.pool_bytes), *vwant = bkt_snapshot(c.v, c.pool_bytes);
    int64_t want_drop = 2; /* the rows past append_indptr[batch] */
    for (int32_t b = 0; b < B; b++)
        for (int32_t r = 0; r < claim[b]; r++) {
            int64_t t = (int64_t)c.r[b].len - claim[b] + r;
            if (t < 0 || (b == 0 && t / page_size == c.r[0].npages - 1)) {
                want_drop++;
                continue;
            }
            size_t rowb = (size_t)(start[b] + r) * H * D * c.es;
            for (int64_t h = 0; h < H; h++) {
                memcpy(kwant + slot_bytes(&c, b, t, h, 0), (unsigned char *)kn + rowb + (size_t)h * D * c.es,
                       (size_t)D * c.es);
                memcpy(vwant + slot_bytes(&c, b, t, h, 0), (unsigned char *)vn + rowb + (size_t)h * D * c.es,
                       (size_t)D * c.es);
            }
        }
    int64_t dropped = 11;
    bk_tensor tdrop = bkt_view(&dropped, BK_DTYPE_I64, 1, one);
    bk_paged_kv_append_desc d = {B, nnz, {c.num_pages, H, page_size, D, dt}};
    bk_paged_kv_append_plan plan;
    if (bkt_expect_status(bk_paged_kv_append_select(&d, gpu, BK_PREFER_FASTEST, &plan), BK_STATUS_SUCCESS, what)) {
        bk_paged_kv_append_args args = {bkt_view(kn, dt, 3, shape), bkt_view(vn, dt, 3, shape),
                                        bkt_view(start, BK_DTYPE_I32, 1, np), cache_tensors(&c), &tdrop};
        if (bkt_expect_status(pkv_run(&plan, &args, &c, (size_t)n * c.es), BK_STATUS_SUCCESS, what)) {
            same_image(what, "k_pages", c.k, kwant, c.pool_bytes, c.es);
            same_image(what, "v_pages", c.v, vwant, c.pool_bytes, c.es);
            bkt_check(dropped == 11 + want_drop, what, "dropped_rows is %lld, expected 11 + %lld", (long long)dropped,
                      (long long)want_drop);
        }
    }
    bkt_free(kwant);
    bkt_free(vwant);
    bkt_free(kn);
    bkt_free(vn);
    cache_free(&c);
}

/* Extents whose products pass int64 (issue 13): can_implement refuses them with a
 * sentence naming the overflow and writes nothing. */
static void test_overflow(void)
{
    const bk_dtype dt = BK_DTYPE_F32;
    bk_paged_kv_append_desc d = {1, 4, {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, dt}};
    int64_t sn[3] = {4, INT32_MAX, INT32_MAX}, sp[1] = {2};
    int32_t indptr[2] = {0, 4};
    float in[16], pool[16];
    bkt_fill(in, dt, 16, -1, 1);
    bkt_poison(pool, dt, 16);
    void *pool0 = bkt_snapshot(pool, sizeof pool);
    bk_paged_kv_append_plan plan;
    if (bkt_expect_status(bk_paged_kv_append_select(&d, bk_target_cpu(), BK_PREFER_FASTEST, &plan),
                          BK_STATUS_SUCCESS, "paged_kv_append overflow select")) {
        bk_paged_kv_append_args a = {bkt_view_huge(in, dt, 3, sn), bkt_view_huge(in, dt, 3, sn),
                                     bkt_view(indptr, BK_DTYPE_I32, 1, sp), bkt_paged_kv_huge(&d.paged_kv, 1, pool),
                                     NULL};
        bkt_expect_overflow(bk_paged_kv_append_can_implement(&plan, &a), "paged_kv_append",
                            "paged_kv_append 2^64 k_new bytes");
        bkt_expect_overflow(bk_paged_kv_append_run(&plan, NULL, (bk_workspace){0}, &a), "paged_kv_append",
                            "paged_kv_append run 2^64 bytes");
        bkt_check(bk_paged_kv_append_workspace_size(&plan) == 0, "paged_kv_append overflow workspace", "not 0");
    }
    bkt_check(bkt_same_bytes(pool0, pool, sizeof pool), "paged_kv_append overflow", "pool written on failure");
    bkt_free(pool0);
}

int main(void)
{
    bkt_init("test_paged_kv_append");
    static const int32_t page_sizes[3] = {1, 3, 16};
    bk_target targets[2] = {bk_target_cpu()};
    int ntargets = 1 + bkt_cuda_target("paged_kv_append cuda", &targets[1]);
    for (int g = 0; g < ntargets; g++) {
        g_target = targets[g];
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
            for (int p = 0; p < 3; p++) {
                int32_t P = page_sizes[p];
                test_ragged(k_dtypes[t], P, 1, 64, 0);
                test_ragged(k_dtypes[t], P, 2, 7, 3);
                test_ragged(k_dtypes[t], P, 3, 1, 1);
                for (int r = 0; r < 4; r++)
                    test_random(k_dtypes[t], P);
                test_prefill_decode(k_dtypes[t], P);
                test_edges(k_dtypes[t], P);
            }
    }
    if (ntargets == 2)
        for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
            for (int p = 0; p < 3; p++)
                test_cuda_drops(targets[1], k_dtypes[t], page_sizes[p]);
    g_target = bk_target_cpu();
    test_bad_desc();
    test_bad_args();
    test_overflow();
    return bkt_finish();
}
