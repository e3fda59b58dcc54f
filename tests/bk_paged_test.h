/* bk_paged_test.h - the paged-cache fixture shared by test_paged_decode.c and
 * test_paged_prefill.c: a pool with shuffled pages (unowned slots NaN), its tensors, an
 * element reader through the test's own page arithmetic, the naive f64 attention row
 * over one request. */
#ifndef BK_PAGED_TEST_H
#define BK_PAGED_TEST_H
#include "bk_test.h"

#define MAX_BATCH 8

typedef struct cache {
    bk_dtype dt;
    int32_t batch, kv_heads, page_size, head_dim, num_pages, n_indices;
    int64_t kv_len[MAX_BATCH];
    void *k, *v;
    int32_t *indices, *indptr, *last;
} cache;

/* Each function is documented where it is defined, in bk_paged_test.c. */
void cache_make(cache *c, bk_dtype dt, int32_t batch, const int64_t *kv_len, int32_t kv_heads, int32_t page_size,
                int32_t head_dim, int32_t spare_pages, int32_t spare_indices);
void cache_free(cache *c);
bk_paged_kv_desc cache_desc(const cache *c);
bk_paged_kv cache_tensors(const cache *c);
double cache_at(const cache *c, const void *pool, int32_t b, int32_t g, int64_t t, int32_t d);
void ref_row(const cache *c, int32_t b, int32_t g, const double *q, int64_t n, double scale, double *out,
             double *lse);

#endif
