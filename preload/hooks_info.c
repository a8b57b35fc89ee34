/* What CUDA reports about memory: cuMemGetInfo_v2 (current context's device) and
 * cuDeviceTotalMem_v2, clamped to the claim's limit on limited devices, unchanged elsewhere. */
#include "charges.h"
#include "hooks.h"
#include "process.h"
#include "quota.h"

GPUQ_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    __typeof__(&cuMemGetInfo_v2) real = GPUQ_REAL(cuMemGetInfo_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(free_bytes, total_bytes);
    if (result != CUDA_SUCCESS || free_bytes == NULL || total_bytes == NULL)
        return result;
    enum gpuq_mode mode = gpuq_process_mode();
    if (mode == GPUQ_MODE_FAILED_CLOSED)
        *free_bytes = 0; /* consistent with allocations failing */
    if (mode != GPUQ_MODE_ENFORCING)
        return result;
    CUdevice ordinal;
    if (gpuq_current_device(&ordinal) != CUDA_SUCCESS)
        return result;
    int dev = gpuq_process_device_of(ordinal);
    if (dev >= 0) {
        uint64_t free64 = *free_bytes, total64 = *total_bytes;
        gpuq_quota_report((unsigned)dev, &free64, &total64, NULL);
        *free_bytes = (size_t)free64;
        *total_bytes = (size_t)total64;
    }
    return result;
}

GPUQ_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice ordinal)
{
    __typeof__(&cuDeviceTotalMem_v2) real = GPUQ_REAL(cuDeviceTotalMem_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(bytes, ordinal);
    if (result != CUDA_SUCCESS || bytes == NULL || gpuq_process_mode() != GPUQ_MODE_ENFORCING)
        return result;
    int dev = gpuq_process_device_of(ordinal);
    if (dev >= 0 && *bytes > gpuq_process.config.memory_bytes[dev])
        *bytes = (size_t)gpuq_process.config.memory_bytes[dev];
    return result;
}
