/* Plain device allocations: cuMemAlloc_v2, cuMemAllocPitch_v2, cuMemAllocManaged, cuMemFree_v2
 * (which also frees pool allocations, back into their pool). */
#include "charges.h"
#include "hooks.h"
#include "pools.h"

#define PITCH_ALIGNMENT 512 /* a first guess; the charge follows the pitch the driver returns */

GPUQ_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    __typeof__(&cuMemAlloc_v2) real = GPUQ_REAL(cuMemAlloc_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, bytesize);
    if (result != CUDA_SUCCESS)
        return result;
    result = real(dptr, bytesize);
    gpuq_charge_end(&charge, result, GPUQ_KIND_POINTER, result == CUDA_SUCCESS ? *dptr : 0);
    return result;
}

GPUQ_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    __typeof__(&cuMemAllocManaged) real = GPUQ_REAL(cuMemAllocManaged);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    /* Managed memory may live on any device; it is counted where it is allocated. */
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, bytesize);
    if (result != CUDA_SUCCESS)
        return result;
    result = real(dptr, bytesize, flags);
    gpuq_charge_end(&charge, result, GPUQ_KIND_POINTER, result == CUDA_SUCCESS ? *dptr : 0);
    return result;
}

static uint64_t pitched_bytes(size_t pitch, size_t height)
{
    uint64_t bytes;
    return __builtin_mul_overflow((uint64_t)pitch, (uint64_t)height, &bytes) ? UINT64_MAX : bytes;
}

GPUQ_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width_bytes,
                                        size_t height, unsigned int element_bytes)
{
    __typeof__(&cuMemAllocPitch_v2) real = GPUQ_REAL(cuMemAllocPitch_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    size_t guess = width_bytes > SIZE_MAX - PITCH_ALIGNMENT
                       ? SIZE_MAX
                       : (width_bytes + PITCH_ALIGNMENT - 1) / PITCH_ALIGNMENT * PITCH_ALIGNMENT;
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, pitched_bytes(guess, height));
    if (result != CUDA_SUCCESS)
        return result;
    result = real(dptr, pitch, width_bytes, height, element_bytes);
    if (result == CUDA_SUCCESS && gpuq_charge_resize(&charge, pitched_bytes(*pitch, height)) != 0) {
        __typeof__(&cuMemFree_v2) real_free = GPUQ_REAL(cuMemFree_v2);
        if (real_free != NULL && real_free(*dptr) == CUDA_SUCCESS)
            result = CUDA_ERROR_OUT_OF_MEMORY;
    }
    gpuq_charge_end(&charge, result, GPUQ_KIND_POINTER, result == CUDA_SUCCESS ? *dptr : 0);
    return result;
}

GPUQ_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    __typeof__(&cuMemFree_v2) real = GPUQ_REAL(cuMemFree_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    struct gpuq_pool_free pooled;
    int known = gpuq_charge_take(&charge, GPUQ_KIND_POINTER, dptr);
    int from_pool = !known && gpuq_pool_take(&pooled, dptr); /* it goes back to its pool */
    CUresult result = real(dptr);
    if (known)
        gpuq_charge_settle(&charge, result, GPUQ_KIND_POINTER, dptr);
    else if (from_pool)
        gpuq_pool_freed(&pooled, result, NULL, 0, 0);
    return result;
}
