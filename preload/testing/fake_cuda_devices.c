/* The fake libcuda.so.1: initialization, devices, UUIDs and contexts. */
#include <string.h>

#include "fake_cuda.h"

struct CUctx_st {
    int device;
};

static struct CUctx_st contexts[FAKE_MAX_DEVICES];
static int initialized;
static __thread CUcontext current;

CUresult fake_cuda_ready(void)
{
    return __atomic_load_n(&initialized, __ATOMIC_ACQUIRE) ? CUDA_SUCCESS
                                                           : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult fake_cuda_current(int *device)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (current == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    *device = current->device;
    return CUDA_SUCCESS;
}

static CUresult check_device(CUdevice dev)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    return dev >= 0 && dev < fake_gpu_count ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult cuInit(unsigned int flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (fake_gpus_load() != 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < FAKE_MAX_DEVICES; i++)
        contexts[i].device = i;
    __atomic_store_n(&initialized, 1, __ATOMIC_RELEASE);
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *version)
{
    if (version == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *version = 12040;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    *count = fake_gpu_count;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
    CUresult result = check_device(ordinal);
    if (result == CUDA_SUCCESS)
        *dev = ordinal;
    return result;
}

CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    CUresult result = check_device(dev);
    if (result == CUDA_SUCCESS)
        memcpy(uuid->bytes, fake_gpus[dev].uuid.bytes, sizeof uuid->bytes);
    return result;
}

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    return cuDeviceGetUuid_v2(uuid, dev);
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    CUresult result = check_device(dev);
    if (result == CUDA_SUCCESS)
        *bytes = (size_t)fake_gpus[dev].memory;
    return result;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev)
{
    CUresult result = check_device(dev);
    if (result == CUDA_SUCCESS)
        *ctx = &contexts[dev];
    return result;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    return check_device(dev);
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    current = ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *ctx)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    *ctx = current;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *dev)
{
    return fake_cuda_current(dev);
}
