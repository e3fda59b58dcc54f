/* target.c - CPU and CUDA targets. The device query lives in src/cuda/device.cu when
 * the CUDA backend is built; without it every CUDA query answers NO_DEVICE. */
#include "core/core.h"

bk_target bk_target_cpu(void)
{
    bk_target t = {BK_TARGET_CPU, 0, 0, 0};
    return t;
}

bk_target bk_target_cuda_cc(int32_t device, int32_t cc_major, int32_t cc_minor)
{
    bk_target t = {BK_TARGET_CUDA, device, cc_major, cc_minor};
    return t;
}

bk_status bk_target_cuda(int32_t device, bk_target *out)
{
    bk_clear_error();
    BK_TRY(bk_check_ptr("target_cuda", "out", out));
    int32_t major = 0, minor = 0;
    BK_TRY(bk_cuda_device_cc(device, &major, &minor));
    *out = bk_target_cuda_cc(device, major, minor);
    return BK_STATUS_SUCCESS;
}

#ifndef BK_WITH_CUDA
bool bk_has_cuda(void)
{
    return false;
}

bk_status bk_cuda_device_cc(int32_t device, int32_t *cc_major, int32_t *cc_minor)
{
    (void)device;
    (void)cc_major;
    (void)cc_minor;
    return bk_fail(BK_STATUS_NO_DEVICE, "target_cuda: baracuda was built without its CUDA backend");
}
#endif
