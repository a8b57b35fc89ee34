/* Stream-ordered allocations: cuMemAllocAsync, cuMemAllocFromPoolAsync, cuMemFreeAsync, each in
 * the legacy and the per-thread-default-stream (_ptsz) variant, which stay distinct all the way
 * to the driver. Counted on the current context's device (the driver API gives no cheap way to
 * ask a stream or pool for its device), and released when the free is enqueued. */
#include "charges.h"
#include "hooks.h"

static CUresult freed(CUresult (*real)(CUdeviceptr, CUstream), CUdeviceptr dptr, CUstream stream)
{
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    int known = gpuq_charge_take(&charge, GPUQ_KIND_POINTER, dptr);
    CUresult result = real(dptr, stream);
    if (known)
        gpuq_charge_settle(&charge, result, GPUQ_KIND_POINTER, dptr);
    return result;
}

static CUresult from_pool(CUresult (*real)(CUdeviceptr *, size_t, CUmemoryPool, CUstream),
                          CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream stream)
{
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, bytesize);
    if (result != CUDA_SUCCESS)
        return result;
    result = real(dptr, bytesize, pool, stream);
    gpuq_charge_end(&charge, result, GPUQ_KIND_POINTER, result == CUDA_SUCCESS ? *dptr : 0);
    return result;
}

static CUresult allocated(CUresult (*real)(CUdeviceptr *, size_t, CUstream), CUdeviceptr *dptr,
                          size_t bytesize, CUstream stream)
{
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, bytesize);
    if (result != CUDA_SUCCESS)
        return result;
    result = real(dptr, bytesize, stream);
    gpuq_charge_end(&charge, result, GPUQ_KIND_POINTER, result == CUDA_SUCCESS ? *dptr : 0);
    return result;
}

GPUQ_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    return allocated(GPUQ_REAL(cuMemAllocAsync), dptr, bytesize, stream);
}

GPUQ_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    return allocated(GPUQ_REAL(cuMemAllocAsync_ptsz), dptr, bytesize, stream);
}

GPUQ_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize,
                                             CUmemoryPool pool, CUstream stream)
{
    return from_pool(GPUQ_REAL(cuMemAllocFromPoolAsync), dptr, bytesize, pool, stream);
}

GPUQ_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                                  CUmemoryPool pool, CUstream stream)
{
    return from_pool(GPUQ_REAL(cuMemAllocFromPoolAsync_ptsz), dptr, bytesize, pool, stream);
}

GPUQ_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream)
{
    return freed(GPUQ_REAL(cuMemFreeAsync), dptr, stream);
}

GPUQ_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream)
{
    return freed(GPUQ_REAL(cuMemFreeAsync_ptsz), dptr, stream);
}
