/* device.cu - CUDA runtime glue: device queries and error mapping.
 *
 * Built only when nvcc is found (BK_WITH_CUDA). The op kernels live beside it, one .cu
 * per op family; this file holds what they all share on the host side. */
#include "core/core.h"

#include <cuda_runtime.h>

extern "C" bool bk_has_cuda(void)
{
    return true;
}

extern "C" bk_status bk_cuda_device_cc(int32_t device, int32_t *cc_major, int32_t *cc_minor)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        (void)cudaGetLastError(); /* clear the sticky-free error state */
        return bk_fail(BK_STATUS_NO_DEVICE, "target_cuda: no CUDA device (%s)",
                       err == cudaSuccess ? "device count is 0" : cudaGetErrorString(err));
    }
    if (device < 0 || device >= count)
        return bk_fail(BK_STATUS_NO_DEVICE, "target_cuda: device is %d, expected 0..%d", (int)device, count - 1);
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "target_cuda: cannot read the compute capability of device %d: %s",
                       (int)device, cudaGetErrorString(cudaGetLastError()));
    *cc_major = major;
    *cc_minor = minor;
    return BK_STATUS_SUCCESS;
}
