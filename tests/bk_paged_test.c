/* bk_paged_test.c - see bk_paged_test.h. */
#include "bk_paged_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------- the cache -- */


/* Pages in shuffled order; every slot no request owns holds NaN, so a read past a
 * request's tokens shows up in the output. `spare_pages` unused pages in the pool,
 * `spare_indices` trailing kv_indices entries (set to -1: never read). */
void cache_make(cache *c, bk_dtype dt, int32_t batch, const int64_t *kv_len, int32_t kv_heads,
                       int32_t page_size, int32_t head_dim, int32_t spare_pages, int32_t spare_indices)
{
    memset(c, 0, sizeof *c);
    c->dt = dt;
    c->batch = batch;
    c->kv_heads = kv_heads;
    c->page_size = page_size;
    c->head_dim = head_dim;
    int32_t used = 0;
    for (int32_t b = 0; b < batch; b++) {
        c->kv_len[b] = kv_len[b];
        used += (int32_t)((kv_len[b] + page_size - 1) / page_size);
    }
    c->num_pages = used + spare_pages;
    c->n_indices = used + spare_indices;
    int64_t pool = (int64_t)c->num_pages * kv_heads * page_size * head_dim;
    c->k = bkt_alloc(dt, pool);
    c->v = bkt_alloc(dt, pool);
    bkt_poison(c->k, dt, pool);
    bkt_poison(c->v, dt, pool);
    int32_t *perm = malloc((size_t)c->num_pages * sizeof(int32_t));
    for (int32_t i = 0; i < c->num_pages; i++)
        perm[i] = i;
    for (int32_t i = c->num_pages - 1; i > 0; i--) {
        int32_t j = (int32_t)bkt_randint(0, i), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    c->indices = malloc((size_t)(c->n_indices + 1) * sizeof(int32_t));
    c->indptr = malloc((size_t)(batch + 1) * sizeof(int32_t));
    c->last = malloc((size_t)batch * sizeof(int32_t));
    c->indptr[0] = 0;
    for (int32_t b = 0; b < batch; b++) {
        int32_t pages = (int32_t)((kv_len[b] + page_size - 1) / page_size);
        c->indptr[b + 1] = c->indptr[b] + pages;
        c->last[b] = (int32_t)(kv_len[b] - (int64_t)(pages - 1) * page_size);
    }
    for (int32_t i = 0; i < c->n_indices; i++)
        c->indices[i] = i < used ? perm[i] : -1;
    free(perm);
    /* the tokens: random values at each request's slots only */
    for (int32_t b = 0; b < batch; b++)
        for (int32_t g = 0; g < kv_heads; g++)
            for (int64_t t = 0; t < kv_len[b]; t++) {
                int64_t page = c->indices[c->indptr[b] + t / page_size];
                int64_t off = ((page * kv_heads + g) * page_size + t % page_size) * head_dim;
                for (int32_t d = 0; d < head_dim; d++) {
                    bkt_set(c->k, dt, off + d, bkt_uniform(-1.0, 1.0));
                    bkt_set(c->v, dt, off + d, bkt_uniform(-1.0, 1.0));
                }
            }
}

void cache_free(cache *c)
{
    bkt_free(c->k);
    bkt_free(c->v);
    free(c->indices);
    free(c->indptr);
    free(c->last);
}

bk_paged_kv_desc cache_desc(const cache *c)
{
    bk_paged_kv_desc d = {c->num_pages, c->kv_heads, c->page_size, c->head_dim, c->dt};
    return d;
}

bk_paged_kv cache_tensors(const cache *c)
{
    int64_t pool[4] = {c->num_pages, c->kv_heads, c->page_size, c->head_dim};
    int64_t n[1] = {c->n_indices}, bp1[1] = {c->batch + 1}, b1[1] = {c->batch};
    bk_paged_kv kv = {bkt_view(c->k, c->dt, 4, pool), bkt_view(c->v, c->dt, 4, pool),
                      bkt_view(c->indices, BK_DTYPE_I32, 1, n), bkt_view(c->indptr, BK_DTYPE_I32, 1, bp1),
                      bkt_view(c->last, BK_DTYPE_I32, 1, b1)};
    return kv;
}

/* Key/value element d of token t, kv head g, request b: the test's own page arithmetic. */
double cache_at(const cache *c, const void *pool, int32_t b, int32_t g, int64_t t, int32_t d)
{
    int64_t page = c->indices[c->indptr[b] + t / c->page_size];
    int64_t slot = t % c->page_size;
    return bkt_get(pool, c->dt, ((page * c->kv_heads + g) * c->page_size + slot) * c->head_dim + d);
}

/* Naive attention of q[D] over the first n tokens of request b, kv head g: scores
 * materialised, then max, exp, sum. n == 0 -> out 0, lse -inf. */
void ref_row(const cache *c, int32_t b, int32_t g, const double *q, int64_t n, double scale, double *out,
                    double *lse)
{
    const int32_t D = c->head_dim;
    for (int32_t d = 0; d < D; d++)
        out[d] = 0.0;
    if (n == 0) {
        *lse = -INFINITY;
        return;
    }
    double *s = malloc((size_t)n * sizeof(double)), m = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double dot = 0.0;
        for (int32_t d = 0; d < D; d++)
            dot += q[d] * cache_at(c, c->k, b, g, j, d);
        s[j] = scale * dot;
        if (s[j] > m)
            m = s[j];
    }
    for (int64_t j = 0; j < n; j++) {
        s[j] = exp(s[j] - m);
        sum += s[j];
    }
    for (int64_t j = 0; j < n; j++)
        for (int32_t d = 0; d < D; d++)
            out[d] += s[j] / sum * cache_at(c, c->v, b, g, j, d);
    *lse = m + log(sum);
    free(s);
}

