/*
 * consumer.c - a program built against an INSTALLED baracuda, twice: through the CMake
 * package (find_package(baracuda), target baracuda::baracuda) and through pkg-config.
 * It plans and runs one small sdpa_fwd on the CPU and checks the answer: with a single
 * key, attention returns that key's value row.
 */
#include <baracuda/baracuda.h>

#include <stdio.h>

int main(void)
{
    bk_sdpa_fwd_desc desc = {.batch = 1, .q_heads = 2, .kv_heads = 1, .q_len = 3, .kv_len = 1,
                             .head_dim_qk = 4, .head_dim_v = 4, .scale = 0.5, .window_left = -1,
                             .dtype = BK_DTYPE_F32};
    bk_sdpa_fwd_plan plan;
    if (bk_sdpa_fwd_select(&desc, bk_target_cpu(), BK_PREFER_FASTEST, &plan) != BK_STATUS_SUCCESS) {
        fprintf(stderr, "consumer: select failed: %s\n", bk_last_error());
        return 1;
    }
    float q[2 * 3 * 4], k[4] = {1, 2, 3, 4}, v[4] = {5, 6, 7, 8}, y[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        q[i] = (float)i / 10.0f;
    int64_t qs[4] = {1, 2, 3, 4}, ks[4] = {1, 1, 1, 4};
    bk_sdpa_fwd_args args = {.q = bk_tensor_contiguous(q, BK_DTYPE_F32, 4, qs),
                             .k = bk_tensor_contiguous(k, BK_DTYPE_F32, 4, ks),
                             .v = bk_tensor_contiguous(v, BK_DTYPE_F32, 4, ks),
                             .y = bk_tensor_contiguous(y, BK_DTYPE_F32, 4, qs)};
    bk_workspace ws = {NULL, 0};
    bk_status s = bk_sdpa_fwd_run(&plan, NULL, ws, &args);
    if (s != BK_STATUS_SUCCESS) {
        fprintf(stderr, "consumer: run failed: %s: %s\n", bk_status_name(s), bk_last_error());
        return 1;
    }
    for (int i = 0; i < 24; i++)
        if (y[i] != v[i % 4]) {
            fprintf(stderr, "consumer: y[%d] is %g, expected %g\n", i, y[i], v[i % 4]);
            return 1;
        }
    char sku[96];
    bk_sku_name(&plan.info.sku, sku, sizeof sku);
    printf("consumer: baracuda %d.%d.%d, %s ok (CUDA backend: %s)\n", BK_VERSION_MAJOR, BK_VERSION_MINOR,
           BK_VERSION_PATCH, sku, bk_has_cuda() ? "yes" : "no");
    return 0;
}
