/* Virtual memory management. Physical memory made by cuMemCreate on a device is charged there
 * (its location says which) and stays charged as long as the driver keeps it: while a handle to
 * it is unreleased (cuMemCreate, cuMemRetainAllocationHandle, an import of our own export) or a
 * mapping of it remains (cuMemMap until cuMemUnmap). Once exported (cuMemExportToShareableHandle),
 * it stays charged until this process exits, since we cannot see when every copy of the
 * shareable handle is closed. An import of another process's memory is charged to this process
 * too, on the device the handle's properties name, for as much of it as is mapped (the driver
 * does not tell an imported allocation's size). Host allocations pass through.
 *
 * The bookkeeping, an array of allocations with their counts and the handle, mapping and export
 * keys in the allocation map, is under one mutex, held across the driver's call so that both
 * change together. */
#include <pthread.h>
#include <stdlib.h>

#include "charges.h"
#include "hooks.h"
#include "logging.h"
#include "process.h"
#include "quota.h"

struct allocation {
    int in_use, dev;
    uint64_t bytes;
    unsigned handles, mappings;
    int exported, foreign;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct allocation *allocations;
static unsigned count, capacity, next_free; /* slots below next_free may be free: scan from 0 */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void fork_child(void) /* the parent's memory is not the child's to count */
{
    free(allocations);
    allocations = NULL;
    count = capacity = next_free = 0;
    pthread_mutex_unlock(&lock);
}

static void register_fork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static int add_allocation(int dev, uint64_t bytes, int foreign)
{
    while (next_free < count && allocations[next_free].in_use)
        next_free++;
    if (next_free == count) {
        if (count == capacity) {
            unsigned more = capacity ? capacity * 2 : 64;
            struct allocation *grown = realloc(allocations, more * sizeof *grown);
            if (grown == NULL)
                return -1;
            allocations = grown;
            capacity = more;
        }
        count++;
    }
    pthread_once(&fork_once, register_fork);
    allocations[next_free] = (struct allocation){1, dev, bytes, 1, 0, 0, foreign};
    return (int)next_free;
}

static struct allocation *allocation_at(int index)
{
    return index >= 0 && (unsigned)index < count && allocations[index].in_use ? &allocations[index]
                                                                              : NULL;
}

/* Releases the allocation's charge once nothing keeps the memory alive. */
static void drop_if_unused(int index)
{
    struct allocation *allocation = &allocations[index];
    if (allocation->handles > 0 || allocation->mappings > 0 || allocation->exported)
        return;
    if (allocation->bytes > 0)
        gpuq_quota_release((unsigned)allocation->dev, allocation->bytes);
    allocation->in_use = 0;
    if ((unsigned)index < next_free)
        next_free = (unsigned)index;
}

/* The allocation a handle refers to (the map's record: dev = index, bytes = references). */
static int handle_allocation(CUmemGenericAllocationHandle handle, uint64_t *references)
{
    struct gpuq_record record;
    if (!gpuq_map_take(GPUQ_KIND_VMM, handle, &record))
        return -1;
    gpuq_map_put(GPUQ_KIND_VMM, handle, record);
    if (references != NULL)
        *references = record.bytes;
    return allocation_at(record.dev) != NULL ? record.dev : -1;
}

static void add_handle(CUmemGenericAllocationHandle handle, int index)
{
    static int lost_once;
    uint64_t references = 0;
    if (handle_allocation(handle, &references) != index)
        references = 0;
    struct gpuq_record record = {index, references + 1};
    allocations[index].handles++;
    if (gpuq_map_put(GPUQ_KIND_VMM, handle, record) != 0) {
        allocations[index].exported = 1; /* cannot follow it: keep it charged */
        gpuq_log_once(&lost_once, GPUQ_LOG_WARN,
                      "cannot record a memory handle (out of memory); its memory stays counted "
                      "until this process exits");
    }
}

GPUQ_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                 const CUmemAllocationProp *prop, unsigned long long flags)
{
    static int lost_once;
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
    if (result != CUDA_SUCCESS || charge.dev < 0) {
        gpuq_charge_end(&charge, result, GPUQ_KIND_VMM, 0);
        return result;
    }
    pthread_mutex_lock(&lock);
    int index = add_allocation(charge.dev, charge.bytes, 0);
    if (index >= 0) {
        allocations[index].handles = 0;
        add_handle(*handle, index);
    }
    pthread_mutex_unlock(&lock);
    if (index < 0) /* stays charged until the process exits */
        gpuq_log_once(&lost_once, GPUQ_LOG_WARN,
                      "cannot record a memory allocation (out of memory); it stays counted "
                      "until this process exits");
    return result;
}

GPUQ_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    __typeof__(&cuMemRelease) real = GPUQ_REAL(cuMemRelease);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&lock);
    CUresult result = real(handle);
    struct gpuq_record record;
    if (result == CUDA_SUCCESS && gpuq_map_take(GPUQ_KIND_VMM, handle, &record)) {
        if (record.bytes > 1) {
            record.bytes--;
            gpuq_map_put(GPUQ_KIND_VMM, handle, record);
        }
        struct allocation *allocation = allocation_at(record.dev);
        if (allocation != NULL && allocation->handles > 0) {
            allocation->handles--;
            drop_if_unused(record.dev);
        }
    }
    pthread_mutex_unlock(&lock);
    return result;
}

GPUQ_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                              CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    static int lost_once;
    __typeof__(&cuMemMap) real = GPUQ_REAL(cuMemMap);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&lock);
    int index = handle_allocation(handle, NULL);
    uint64_t grow = 0, end;
    struct allocation *allocation = allocation_at(index);
    if (allocation != NULL && allocation->foreign) { /* an import: charge as much as is mapped */
        end = __builtin_add_overflow((uint64_t)offset, (uint64_t)size, &end) ? UINT64_MAX : end;
        end = gpuq_charge_rounded(end);
        grow = end > allocation->bytes ? end - allocation->bytes : 0;
        if (grow > 0 && gpuq_charge_bytes((unsigned)allocation->dev, grow) != 0) {
            pthread_mutex_unlock(&lock);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        allocation->bytes += grow;
    }
    CUresult result = real(ptr, size, offset, handle, flags);
    allocation = allocation_at(index);
    if (allocation != NULL && result != CUDA_SUCCESS && grow > 0) {
        allocation->bytes -= grow;
        gpuq_quota_release((unsigned)allocation->dev, grow);
    } else if (allocation != NULL && result == CUDA_SUCCESS) {
        allocation->mappings++;
        if (gpuq_map_put(GPUQ_KIND_VMM_MAPPING, ptr, (struct gpuq_record){index, size}) != 0) {
            allocation->exported = 1; /* cannot follow the mapping: keep it charged */
            gpuq_log_once(&lost_once, GPUQ_LOG_WARN,
                          "cannot record a memory mapping (out of memory); its memory stays "
                          "counted until this process exits");
        }
    }
    pthread_mutex_unlock(&lock);
    return result;
}

GPUQ_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    __typeof__(&cuMemUnmap) real = GPUQ_REAL(cuMemUnmap);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&lock);
    CUresult result = real(ptr, size);
    /* The range covers whole mappings, one after another. */
    struct gpuq_record record;
    for (CUdeviceptr at = ptr; result == CUDA_SUCCESS && at - ptr < size &&
                               gpuq_map_take(GPUQ_KIND_VMM_MAPPING, at, &record);
         at += record.bytes) {
        struct allocation *allocation = allocation_at(record.dev);
        if (allocation != NULL && allocation->mappings > 0) {
            allocation->mappings--;
            drop_if_unused(record.dev);
        }
        if (record.bytes == 0)
            break;
    }
    pthread_mutex_unlock(&lock);
    return result;
}

GPUQ_EXPORT CUresult cuMemExportToShareableHandle(void *shareable,
                                                  CUmemGenericAllocationHandle handle,
                                                  int handle_type, unsigned long long flags)
{
    __typeof__(&cuMemExportToShareableHandle) real = GPUQ_REAL(cuMemExportToShareableHandle);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&lock);
    CUresult result = real(shareable, handle, handle_type, flags);
    int index = result == CUDA_SUCCESS ? handle_allocation(handle, NULL) : -1;
    if (index >= 0) {
        allocations[index].exported = 1;
        if (handle_type == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
            gpuq_map_put(GPUQ_KIND_VMM_EXPORT, (uint64_t)*(int *)shareable + 1,
                         (struct gpuq_record){index, 0});
    }
    pthread_mutex_unlock(&lock);
    return result;
}

/* The CUDA device an imported handle's memory is on, or GPUQ_NO_DEVICE. */
static int imported_ordinal(CUmemGenericAllocationHandle handle)
{
    __typeof__(&cuMemGetAllocationPropertiesFromHandle) properties =
        GPUQ_REAL(cuMemGetAllocationPropertiesFromHandle);
    CUmemAllocationProp prop = {0};
    if (properties == NULL || properties(&prop, handle) != CUDA_SUCCESS)
        return GPUQ_CURRENT_DEVICE; /* cannot tell: the current context's */
    return prop.location.type == CU_MEM_LOCATION_TYPE_DEVICE ? prop.location.id : GPUQ_NO_DEVICE;
}

GPUQ_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle,
                                                    void *os_handle, int handle_type)
{
    __typeof__(&cuMemImportFromShareableHandle) real = GPUQ_REAL(cuMemImportFromShareableHandle);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&lock);
    CUresult result = real(handle, os_handle, handle_type);
    struct gpuq_record record;
    int index = -1, refuse = 0;
    if (result == CUDA_SUCCESS && handle_type == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR &&
        gpuq_map_take(GPUQ_KIND_VMM_EXPORT, (uint64_t)(uintptr_t)os_handle + 1, &record)) {
        gpuq_map_put(GPUQ_KIND_VMM_EXPORT, (uint64_t)(uintptr_t)os_handle + 1, record);
        index = allocation_at(record.dev) != NULL ? record.dev : -1; /* our own export */
    } else if (result == CUDA_SUCCESS) {
        int dev = gpuq_charge_device(imported_ordinal(*handle), &refuse);
        if (dev >= 0) {
            index = add_allocation(dev, 0, 1);
            if (index >= 0)
                allocations[index].handles = 0;
            else
                refuse = 1;
        }
    }
    if (index >= 0)
        add_handle(*handle, index);
    pthread_mutex_unlock(&lock);
    if (refuse) { /* failed closed, or cannot follow it: do not let it be used */
        __typeof__(&cuMemRelease) release = GPUQ_REAL(cuMemRelease);
        if (release != NULL)
            release(*handle);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return result;
}

GPUQ_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    __typeof__(&cuMemRetainAllocationHandle) real = GPUQ_REAL(cuMemRetainAllocationHandle);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&lock);
    CUresult result = real(handle, addr);
    int index = result == CUDA_SUCCESS ? handle_allocation(*handle, NULL) : -1;
    if (index >= 0)
        add_handle(*handle, index);
    pthread_mutex_unlock(&lock);
    return result;
}
