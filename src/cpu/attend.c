/* attend.c - the CPU attention row (see attend.h). */
#include "cpu/attend.h"
#include "core/core.h"

#include <math.h>

double bk_cpu_attend_score(const double *q, const double *k, int64_t head_dim_qk, const bk_attend_mask *mask,
                           int64_t j)
{
    double s = 0.0;
    for (int64_t d = 0; d < head_dim_qk; d++)
        s += q[d] * k[d];
    s *= mask->scale;
    if (mask->softcap > 0.0)
        s = mask->softcap * tanh(s / mask->softcap);
    if (mask->alibi_slope != 0.0)
        s += mask->alibi_slope * (double)(j - mask->query_pos);
    return s;
}

void bk_cpu_attend_row(const double *q, const bk_attend_keys *keys, const bk_attend_mask *mask, double *out,
                       double *lse)
{
    double k[BK_CPU_MAX_HEAD_DIM], v[BK_CPU_MAX_HEAD_DIM];
    double m = -INFINITY, l = 0.0;
    for (int64_t d = 0; d < keys->head_dim_v; d++)
        out[d] = 0.0;
    for (int64_t j = mask->key_lo; j <= mask->key_hi; j++) {
        const char *kb = (const char *)keys->k_base;
        const char *vb = (const char *)keys->v_base;
        size_t es = bk_dtype_size(keys->dtype);
        bk_gather_f64(kb + (size_t)keys->k_offset(keys->ctx, j) * es, keys->dtype, 1, keys->head_dim_qk, k);
        double s = bk_cpu_attend_score(q, k, keys->head_dim_qk, mask, j);
        if (s == -INFINITY)
            continue;
        bk_gather_f64(vb + (size_t)keys->v_offset(keys->ctx, j) * es, keys->dtype, 1, keys->head_dim_v, v);
        if (s > m) { /* rescale what was accumulated under the old maximum */
            double c = exp(m - s);
            l *= c;
            for (int64_t d = 0; d < keys->head_dim_v; d++)
                out[d] *= c;
            m = s;
        }
        double p = exp(s - m);
        l += p;
        for (int64_t d = 0; d < keys->head_dim_v; d++)
            out[d] += p * v[d];
    }
    if (l == 0.0) {
        *lse = -INFINITY;
        return;
    }
    for (int64_t d = 0; d < keys->head_dim_v; d++)
        out[d] /= l;
    *lse = m + log(l);
}
