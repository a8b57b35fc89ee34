/* The fake libcuda.so.1: simulated device memory (per process), the plain allocation calls and
 * arrays. Device pointers are made-up addresses (never dereferenced), one 16 TiB range per device;
 * the last freed block is handed out again for the same size, as a real allocator would. Pools and
 * streams are in fake_cuda_streams.c, VMM in fake_cuda_vmm.c. */
#include <pthread.h>
#include <stdlib.h>

#include "fake_cuda.h"

#define ALIGNMENT 512u

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t used[FAKE_MAX_DEVICES], next_offset[FAKE_MAX_DEVICES];
static uint64_t reusable[FAKE_MAX_DEVICES], reusable_size[FAKE_MAX_DEVICES];
static uint64_t next_handle = 1;
static unsigned long allocation_calls;

static int fail_this_call(void)
{
    static long nth = -1;
    if (nth < 0) {
        const char *value = getenv("FAKE_FAIL_ALLOC_NTH");
        nth = value != NULL ? atol(value) : 0;
    }
    return nth > 0 && ++allocation_calls == (unsigned long)nth;
}

static uint64_t address(int device, uint64_t bytes)
{
    uint64_t size = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    if (reusable[device] != 0 && reusable_size[device] == size) {
        uint64_t reused = reusable[device];
        reusable[device] = 0;
        return reused;
    }
    uint64_t found = ((uint64_t)(device + 1) << 44) + next_offset[device];
    next_offset[device] += size;
    return found;
}

CUresult fake_memory_take(const char *call, int device, uint64_t bytes, enum gpuq_kind kind,
                          unsigned long long *key)
{
    CUresult result = fake_cuda_ready();
    if (result == CUDA_SUCCESS && (device < 0 || device >= fake_gpu_count))
        result = CUDA_ERROR_INVALID_DEVICE;
    if (result == CUDA_SUCCESS && (bytes == 0 || key == NULL))
        result = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    if (result == CUDA_SUCCESS &&
        (fail_this_call() || bytes > fake_gpus[device].memory - used[device]))
        result = CUDA_ERROR_OUT_OF_MEMORY;
    if (result == CUDA_SUCCESS) {
        *key = kind == GPUQ_KIND_POINTER ? address(device, bytes) : next_handle++ * 16;
        struct gpuq_record record = {device, bytes};
        if (gpuq_map_put(kind, *key, record) != 0)
            abort();
        used[device] += bytes;
    }
    pthread_mutex_unlock(&lock);
    fake_trace("%s device=%d bytes=%llu rc=%d", call, device, (unsigned long long)bytes, result);
    return result;
}

CUresult fake_memory_give(const char *call, enum gpuq_kind kind, uint64_t key)
{
    CUresult result = fake_cuda_ready();
    struct gpuq_record record = {-1, 0};
    pthread_mutex_lock(&lock);
    if (result == CUDA_SUCCESS && !gpuq_map_take(kind, key, &record))
        result = kind == GPUQ_KIND_POINTER ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_HANDLE;
    if (result == CUDA_SUCCESS) {
        used[record.dev] -= record.bytes;
        if (kind == GPUQ_KIND_POINTER) {
            reusable[record.dev] = key;
            reusable_size[record.dev] = (record.bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        }
    }
    pthread_mutex_unlock(&lock);
    fake_trace("%s device=%d bytes=%llu rc=%d", call, record.dev,
               (unsigned long long)record.bytes, result);
    return result;
}

uint64_t fake_memory_used(int device)
{
    pthread_mutex_lock(&lock);
    uint64_t bytes = used[device];
    pthread_mutex_unlock(&lock);
    return bytes;
}

CUresult fake_memory_reserve(const char *call, int device, uint64_t bytes)
{
    CUresult result = fake_cuda_ready();
    if (result == CUDA_SUCCESS && (device < 0 || device >= fake_gpu_count))
        result = CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&lock);
    if (result == CUDA_SUCCESS &&
        (fail_this_call() || bytes > fake_gpus[device].memory - used[device]))
        result = CUDA_ERROR_OUT_OF_MEMORY;
    if (result == CUDA_SUCCESS)
        used[device] += bytes;
    pthread_mutex_unlock(&lock);
    fake_trace("reserve for %s device=%d bytes=%llu rc=%d", call, device,
               (unsigned long long)bytes, result);
    return result;
}

void fake_memory_unreserve(int device, uint64_t bytes)
{
    pthread_mutex_lock(&lock);
    used[device] -= bytes;
    pthread_mutex_unlock(&lock);
}

uint64_t fake_memory_address(int device, uint64_t bytes)
{
    pthread_mutex_lock(&lock);
    uint64_t found = address(device, bytes);
    pthread_mutex_unlock(&lock);
    return found;
}

/* What a test asks the fake directly: the memory device `device` holds (fake only). */
__attribute__((visibility("default"))) uint64_t fake_cuda_held(int device)
{
    return device >= 0 && device < FAKE_MAX_DEVICES ? fake_memory_used(device) : 0;
}

static CUresult on_current(const char *call, CUdeviceptr *dptr, uint64_t bytes)
{
    int device;
    CUresult result = fake_cuda_current(&device);
    if (result != CUDA_SUCCESS)
        return result;
    return fake_memory_take(call, device, bytes, GPUQ_KIND_POINTER, dptr);
}

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    return on_current("cuMemAlloc_v2", dptr, bytesize);
}

CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    (void)flags;
    return on_current("cuMemAllocManaged", dptr, bytesize);
}

CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width_bytes, size_t height,
                            unsigned int element_bytes)
{
    if (pitch == NULL || element_bytes == 0 || element_bytes > 16)
        return CUDA_ERROR_INVALID_VALUE;
    size_t padded = (width_bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    CUresult result = on_current("cuMemAllocPitch_v2", dptr, (uint64_t)padded * height);
    if (result == CUDA_SUCCESS)
        *pitch = padded;
    return result;
}

CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    if (fake_pool_free_now(dptr))
        return CUDA_SUCCESS;
    return fake_memory_give("cuMemFree_v2", GPUQ_KIND_POINTER, dptr);
}

CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    int device;
    CUresult result = fake_cuda_current(&device);
    if (result != CUDA_SUCCESS)
        return result;
    *total_bytes = (size_t)fake_gpus[device].memory;
    *free_bytes = (size_t)(fake_gpus[device].memory - fake_memory_used(device));
    return CUDA_SUCCESS;
}

static uint64_t element_bytes(int format)
{
    switch (format) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
        return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
        return 2;
    default:
        return 4;
    }
}

static CUresult array(const char *call, CUarray *handle, uint64_t bytes)
{
    int device;
    unsigned long long key = 0;
    CUresult result = fake_cuda_current(&device);
    if (result == CUDA_SUCCESS)
        result = fake_memory_take(call, device, bytes, GPUQ_KIND_ARRAY, &key);
    if (result == CUDA_SUCCESS)
        *handle = (CUarray)(uintptr_t)key;
    return result;
}

CUresult cuArrayCreate_v2(CUarray *handle, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    if (handle == NULL || desc == NULL || desc->NumChannels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t rows = desc->Height ? desc->Height : 1;
    return array("cuArrayCreate_v2", handle,
                 desc->Width * rows * element_bytes(desc->Format) * desc->NumChannels);
}

CUresult cuArray3DCreate_v2(CUarray *handle, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    if (handle == NULL || desc == NULL || desc->NumChannels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t rows = (desc->Height ? desc->Height : 1) * (desc->Depth ? desc->Depth : 1);
    return array("cuArray3DCreate_v2", handle,
                 desc->Width * rows * element_bytes(desc->Format) * desc->NumChannels);
}

CUresult cuArrayDestroy(CUarray handle)
{
    return fake_memory_give("cuArrayDestroy", GPUQ_KIND_ARRAY, (uint64_t)(uintptr_t)handle);
}

/* Mipmapped arrays: every level, each half the last (at least 1), down to 1x1x1 or `levels`. */
CUresult cuMipmappedArrayCreate(CUmipmappedArray *handle, const CUDA_ARRAY3D_DESCRIPTOR *desc,
                                unsigned int levels)
{
    if (handle == NULL || desc == NULL || desc->NumChannels == 0 || levels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t total = 0, width = desc->Width, height = desc->Height, depth = desc->Depth;
    for (unsigned level = 0; level < levels; level++) {
        total += width * (height ? height : 1) * (depth ? depth : 1) *
                 element_bytes(desc->Format) * desc->NumChannels;
        if (width <= 1 && height <= 1 && depth <= 1)
            break;
        width = width > 1 ? width / 2 : 1;
        height = height > 1 ? height / 2 : height;
        depth = depth > 1 ? depth / 2 : depth;
    }
    return array("cuMipmappedArrayCreate", (CUarray *)handle, total);
}

CUresult cuMipmappedArrayDestroy(CUmipmappedArray handle)
{
    return fake_memory_give("cuMipmappedArrayDestroy", GPUQ_KIND_ARRAY,
                            (uint64_t)(uintptr_t)handle);
}
