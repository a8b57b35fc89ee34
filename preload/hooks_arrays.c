/* CUDA arrays and mipmapped arrays: their layout is opaque, so the charge is an upper estimate:
 * each row padded to 512 bytes, the whole (each level of a mipmapped array) rounded up to 64 KiB;
 * unknown formats count 16 bytes per channel. */
#include "charges.h"
#include "hooks.h"

#define ROW_ALIGNMENT 512u
#define ARRAY_ALIGNMENT 65536u

static uint64_t format_bytes(int format)
{
    switch (format) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
        return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
        return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
        return 4;
    default:
        return 16;
    }
}

static uint64_t round_up(uint64_t value, uint64_t unit, int *overflow)
{
    uint64_t up;
    *overflow |= __builtin_add_overflow(value, unit - 1, &up);
    return up / unit * unit;
}

static uint64_t array_bytes(size_t width, size_t height, size_t depth, int format,
                            unsigned channels)
{
    int overflow = 0;
    uint64_t row, bytes;
    overflow |= __builtin_mul_overflow((uint64_t)width, format_bytes(format) * (channels ? channels : 1),
                                       &row);
    row = round_up(row, ROW_ALIGNMENT, &overflow);
    overflow |= __builtin_mul_overflow(row, (uint64_t)(height ? height : 1), &bytes);
    overflow |= __builtin_mul_overflow(bytes, (uint64_t)(depth ? depth : 1), &bytes);
    bytes = round_up(bytes, ARRAY_ALIGNMENT, &overflow);
    return overflow ? UINT64_MAX : bytes;
}

GPUQ_EXPORT CUresult cuArrayCreate_v2(CUarray *array, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    __typeof__(&cuArrayCreate_v2) real = GPUQ_REAL(cuArrayCreate_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    if (desc == NULL)
        return real(array, desc);
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(
        &charge, GPUQ_CURRENT_DEVICE,
        array_bytes(desc->Width, desc->Height, 1, desc->Format, desc->NumChannels));
    if (result != CUDA_SUCCESS)
        return result;
    result = real(array, desc);
    gpuq_charge_end(&charge, result, GPUQ_KIND_ARRAY,
                    result == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*array : 0);
    return result;
}

GPUQ_EXPORT CUresult cuArray3DCreate_v2(CUarray *array, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    __typeof__(&cuArray3DCreate_v2) real = GPUQ_REAL(cuArray3DCreate_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    if (desc == NULL)
        return real(array, desc);
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(
        &charge, GPUQ_CURRENT_DEVICE,
        array_bytes(desc->Width, desc->Height, desc->Depth, desc->Format, desc->NumChannels));
    if (result != CUDA_SUCCESS)
        return result;
    result = real(array, desc);
    gpuq_charge_end(&charge, result, GPUQ_KIND_ARRAY,
                    result == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*array : 0);
    return result;
}

GPUQ_EXPORT CUresult cuArrayDestroy(CUarray array)
{
    __typeof__(&cuArrayDestroy) real = GPUQ_REAL(cuArrayDestroy);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    uint64_t key = (uint64_t)(uintptr_t)array;
    int known = gpuq_charge_take(&charge, GPUQ_KIND_ARRAY, key);
    CUresult result = real(array);
    if (known)
        gpuq_charge_settle(&charge, result, GPUQ_KIND_ARRAY, key);
    return result;
}

/* A mipmap level's extent: halved per level, at least 1; 0 (an absent dimension) stays 0. */
static size_t level_extent(size_t extent, unsigned level)
{
    if (extent == 0)
        return 0;
    return level >= 8 * sizeof extent || (extent >> level) == 0 ? 1 : extent >> level;
}

static uint64_t mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR *desc, unsigned levels)
{
    uint64_t total = 0;
    for (unsigned level = 0; level < (levels ? levels : 1); level++) {
        uint64_t bytes = array_bytes(level_extent(desc->Width, level),
                                     level_extent(desc->Height, level),
                                     level_extent(desc->Depth, level), desc->Format,
                                     desc->NumChannels);
        if (__builtin_add_overflow(total, bytes, &total))
            return UINT64_MAX;
        if (level_extent(desc->Width, level) <= 1 && level_extent(desc->Height, level) <= 1 &&
            level_extent(desc->Depth, level) <= 1)
            break; /* the driver stops at 1x1x1 too */
    }
    return total;
}

GPUQ_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *array,
                                            const CUDA_ARRAY3D_DESCRIPTOR *desc,
                                            unsigned int levels)
{
    __typeof__(&cuMipmappedArrayCreate) real = GPUQ_REAL(cuMipmappedArrayCreate);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    if (desc == NULL)
        return real(array, desc, levels);
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, mipmap_bytes(desc, levels));
    if (result != CUDA_SUCCESS)
        return result;
    result = real(array, desc, levels);
    gpuq_charge_end(&charge, result, GPUQ_KIND_ARRAY,
                    result == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*array : 0);
    return result;
}

GPUQ_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray array)
{
    __typeof__(&cuMipmappedArrayDestroy) real = GPUQ_REAL(cuMipmappedArrayDestroy);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    struct gpuq_charge charge;
    uint64_t key = (uint64_t)(uintptr_t)array;
    int known = gpuq_charge_take(&charge, GPUQ_KIND_ARRAY, key);
    CUresult result = real(array);
    if (known)
        gpuq_charge_settle(&charge, result, GPUQ_KIND_ARRAY, key);
    return result;
}
