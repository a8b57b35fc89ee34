/* Where a pool's memory goes back to the driver, so that its charge can follow (pools.h):
 * cuMemPoolCreate (which device the pool is on), cuMemPoolTrimTo, cuMemPoolDestroy, and the
 * synchronizations after which enqueued frees have run and pools above their release threshold
 * have given memory back: cuStreamSynchronize[_ptsz], cuCtxSynchronize, cuEventSynchronize. */
#include "charges.h"
#include "hooks.h"
#include "pools.h"

GPUQ_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    __typeof__(&cuMemPoolCreate) real = GPUQ_REAL(cuMemPoolCreate);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(pool, props);
    if (result == CUDA_SUCCESS)
        gpuq_pool_created(*pool, props);
    return result;
}

GPUQ_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    __typeof__(&cuMemPoolDestroy) real = GPUQ_REAL(cuMemPoolDestroy);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(pool);
    if (result == CUDA_SUCCESS)
        gpuq_pool_destroyed(pool);
    return result;
}

GPUQ_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t min_bytes_to_keep)
{
    __typeof__(&cuMemPoolTrimTo) real = GPUQ_REAL(cuMemPoolTrimTo);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(pool, min_bytes_to_keep);
    if (result == CUDA_SUCCESS)
        gpuq_pool_settle(pool);
    return result;
}

static CUresult stream_synchronized(CUresult (*real)(CUstream), int ptsz, CUstream stream)
{
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(stream);
    if (result == CUDA_SUCCESS)
        gpuq_pools_synchronized(stream, ptsz, -1);
    return result;
}

GPUQ_EXPORT CUresult cuStreamSynchronize(CUstream stream)
{
    return stream_synchronized(GPUQ_REAL(cuStreamSynchronize), 0, stream);
}

GPUQ_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream stream)
{
    return stream_synchronized(GPUQ_REAL(cuStreamSynchronize_ptsz), 1, stream);
}

GPUQ_EXPORT CUresult cuCtxSynchronize(void)
{
    __typeof__(&cuCtxSynchronize) real = GPUQ_REAL(cuCtxSynchronize);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real();
    CUdevice ordinal;
    if (result == CUDA_SUCCESS && gpuq_current_device(&ordinal) == CUDA_SUCCESS)
        gpuq_pools_synchronized(NULL, 0, ordinal);
    return result;
}

GPUQ_EXPORT CUresult cuEventSynchronize(CUevent event)
{
    __typeof__(&cuEventSynchronize) real = GPUQ_REAL(cuEventSynchronize);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(event);
    if (result == CUDA_SUCCESS) /* which stream it followed is unknown: only ask the pools */
        gpuq_pools_settle();
    return result;
}
