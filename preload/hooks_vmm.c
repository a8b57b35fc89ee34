/* Virtual memory management: cuMemCreate charges physical memory created on a device (its
 * location says which); cuMemRelease releases it. Host allocations pass through. */
#include "charges.h"
#include "hooks.h"

GPUQ_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                 const CUmemAllocationProp *prop, unsigned long long flags)
{
    __typeof__(&cuMemCreate) real = GPUQ_REAL(cuMemCreate);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    int ordinal = prop != NULL && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE
                      ? prop->location.id
                      : GPUQ_NO_DEVICE;
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, ordinal, size);
    if (result != CUDA_SUCCESS)
        return result;
    result = real(handle, size, prop, flags);
    gpuq_charge_end(&charge, result, GPUQ_KIND_VMM, result == CUDA_SUCCESS ? *handle : 0);
    return result;
}

GPUQ_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    __typeof__(&cuMemRelease) real = GPUQ_REAL(cuMemRelease);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    int known = gpuq_charge_take(&charge, GPUQ_KIND_VMM, handle);
    CUresult result = real(handle);
    if (known)
        gpuq_charge_settle(&charge, result, GPUQ_KIND_VMM, handle);
    return result;
}
