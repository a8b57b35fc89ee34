/* Stream-ordered allocations: cuMemAllocAsync, cuMemAllocFromPoolAsync, cuMemFreeAsync, each in
 * the legacy and the per-thread-default-stream (_ptsz) variant, which stay distinct all the way
 * to the driver. Charged to the pool they come from, on the pool's device (for cuMemAllocAsync the
 * current pool of the stream's device); a free leaves the memory charged to the pool until the
 * driver takes it back (pools.h). */
#include "charges.h"
#include "hooks.h"
#include "pools.h"

static CUresult allocated(CUresult result, CUdeviceptr *dptr, struct gpuq_pooled *pooled)
{
    gpuq_pooled_end(pooled, result, result == CUDA_SUCCESS ? *dptr : 0);
    return result;
}

static CUresult from_pool(CUresult (*real)(CUdeviceptr *, size_t, CUmemoryPool, CUstream),
                          int ptsz, CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                          CUstream stream)
{
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_pooled pooled;
    CUresult result = gpuq_pooled_begin(&pooled, pool, stream, ptsz, bytesize);
    if (result != CUDA_SUCCESS)
        return result;
    return allocated(real(dptr, bytesize, pool, stream), dptr, &pooled);
}

static CUresult from_current_pool(CUresult (*real)(CUdeviceptr *, size_t, CUstream), int ptsz,
                                  CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_pooled pooled;
    CUresult result = gpuq_pooled_begin(&pooled, NULL, stream, ptsz, bytesize);
    if (result != CUDA_SUCCESS)
        return result;
    return allocated(real(dptr, bytesize, stream), dptr, &pooled);
}

static CUresult freed(CUresult (*real)(CUdeviceptr, CUstream), int ptsz, CUdeviceptr dptr,
                      CUstream stream)
{
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge plain;
    struct gpuq_pool_free pooled;
    int is_plain = gpuq_charge_take(&plain, GPUQ_KIND_POINTER, dptr);
    int is_pooled = !is_plain && gpuq_pool_take(&pooled, dptr);
    CUresult result = real(dptr, stream);
    if (is_pooled)
        gpuq_pool_freed(&pooled, result, stream, ptsz, 1);
    else if (is_plain && result == CUDA_SUCCESS) /* released once the stream has run it */
        gpuq_pool_plain_freed(plain.dev, plain.bytes, stream, ptsz);
    else if (is_plain)
        gpuq_charge_settle(&plain, result, GPUQ_KIND_POINTER, dptr);
    return result;
}

GPUQ_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    return from_current_pool(GPUQ_REAL(cuMemAllocAsync), 0, dptr, bytesize, stream);
}

GPUQ_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    return from_current_pool(GPUQ_REAL(cuMemAllocAsync_ptsz), 1, dptr, bytesize, stream);
}

GPUQ_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize,
                                             CUmemoryPool pool, CUstream stream)
{
    return from_pool(GPUQ_REAL(cuMemAllocFromPoolAsync), 0, dptr, bytesize, pool, stream);
}

GPUQ_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                                  CUmemoryPool pool, CUstream stream)
{
    return from_pool(GPUQ_REAL(cuMemAllocFromPoolAsync_ptsz), 1, dptr, bytesize, pool, stream);
}

GPUQ_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream)
{
    return freed(GPUQ_REAL(cuMemFreeAsync), 0, dptr, stream);
}

GPUQ_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream)
{
    return freed(GPUQ_REAL(cuMemFreeAsync_ptsz), 1, dptr, stream);
}
