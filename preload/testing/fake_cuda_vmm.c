/* The fake libcuda.so.1: virtual memory management, behaving like the driver where the quota
 * library's accounting depends on it: physical memory (cuMemCreate) stays allocated while any
 * handle to it is unreleased, any mapping of it remains, or a shareable handle exported from it
 * is still open in this process. Handles are counted references: cuMemCreate and
 * cuMemRetainAllocationHandle (which returns the creating handle's value again) and imports of
 * our own exports each take one, cuMemRelease gives one back.
 *
 * Exports are POSIX file descriptors of a memfd holding {magic, device, bytes}, so that another
 * process can import them: it gets physical memory of its own (fake memory is per process) of
 * the same device and size. Addresses come from cuMemAddressReserve (a bump allocator). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_cuda.h"

#define MAX_PHYSICAL 4096
#define MAX_MAPPINGS 8192
#define MAX_HANDLES 8192
#define EXPORT_MAGIC 0x46414b45564d4dull /* "FAKEVMM" */

struct physical {
    int in_use, device;
    uint64_t bytes;
    unsigned references, mappings;
    int export_fd; /* -1: none */
    ino_t export_inode;
};

struct mapping {
    CUdeviceptr ptr;
    uint64_t size;
    int physical; /* -1: free entry */
};

struct handle {
    CUmemGenericAllocationHandle value;
    int physical; /* -1: free entry */
};

struct exported {
    uint64_t magic;
    int64_t device;
    uint64_t bytes;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct physical physical[MAX_PHYSICAL];
static struct mapping mappings[MAX_MAPPINGS];
static struct handle handles[MAX_HANDLES];
static unsigned nmappings, nhandles;
static uint64_t next_value = 1, next_address = 0x7e0000000000ull;

/* Whether the export's descriptor is still open here (the same file). */
static int export_open(const struct physical *p)
{
    struct stat status;
    return p->export_fd >= 0 && fstat(p->export_fd, &status) == 0 &&
           status.st_ino == p->export_inode;
}

static void free_if_unused(int index)
{
    struct physical *p = &physical[index];
    if (p->references > 0 || p->mappings > 0 || export_open(p))
        return;
    fake_memory_unreserve(p->device, p->bytes);
    fake_trace("vmm freed device=%d bytes=%llu", p->device, (unsigned long long)p->bytes);
    p->in_use = 0;
}

static int find_handle(CUmemGenericAllocationHandle value)
{
    for (unsigned i = 0; i < nhandles; i++)
        if (handles[i].physical >= 0 && handles[i].value == value)
            return (int)i;
    return -1;
}

static CUresult new_handle(int index, CUmemGenericAllocationHandle *value)
{
    unsigned slot = 0;
    while (slot < nhandles && handles[slot].physical >= 0)
        slot++;
    if (slot == MAX_HANDLES)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (slot == nhandles)
        nhandles++;
    handles[slot] = (struct handle){next_value++ * 16, index};
    physical[index].references++;
    *value = handles[slot].value;
    return CUDA_SUCCESS;
}

/* New physical memory of `bytes` on `device`, with one handle to it. */
static CUresult create(const char *call, int device, uint64_t bytes,
                       CUmemGenericAllocationHandle *value)
{
    int index = -1;
    for (int i = 0; i < MAX_PHYSICAL && index < 0; i++)
        if (!physical[i].in_use)
            index = i;
    if (index < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult result = fake_memory_reserve(call, device, bytes);
    if (result != CUDA_SUCCESS)
        return result;
    physical[index] = (struct physical){1, device, bytes, 0, 0, -1, 0};
    result = new_handle(index, value);
    if (result != CUDA_SUCCESS)
        free_if_unused(index);
    return result;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                     const CUmemAllocationProp *prop, unsigned long long flags)
{
    CUresult result = fake_cuda_ready();
    if (result != CUDA_SUCCESS)
        return result;
    if (handle == NULL || prop == NULL || flags != 0 || size == 0 ||
        prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    result = create("cuMemCreate", prop->location.id, size, handle);
    pthread_mutex_unlock(&lock);
    fake_trace("cuMemCreate device=%d bytes=%llu rc=%d", prop->location.id,
               (unsigned long long)size, result);
    return result;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle value)
{
    pthread_mutex_lock(&lock);
    int found = find_handle(value);
    if (found >= 0) {
        int index = handles[found].physical;
        handles[found].physical = -1;
        physical[index].references--;
        free_if_unused(index);
    }
    pthread_mutex_unlock(&lock);
    fake_trace("cuMemRelease rc=%d", found >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE);
    return found >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                             unsigned long long flags)
{
    (void)alignment, (void)addr, (void)flags;
    if (ptr == NULL || size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    *ptr = next_address;
    next_address += (size + (2u << 20) - 1) / (2u << 20) * (2u << 20);
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    return ptr == 0 || size == 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle value,
                  unsigned long long flags)
{
    CUresult result = CUDA_SUCCESS;
    pthread_mutex_lock(&lock);
    int found = find_handle(value);
    unsigned slot = 0;
    while (slot < nmappings && mappings[slot].physical >= 0)
        slot++;
    if (found < 0)
        result = CUDA_ERROR_INVALID_HANDLE;
    else if (flags != 0 || size == 0 || offset + size > physical[handles[found].physical].bytes)
        result = CUDA_ERROR_INVALID_VALUE;
    else if (slot == MAX_MAPPINGS)
        result = CUDA_ERROR_OUT_OF_MEMORY;
    if (result == CUDA_SUCCESS) {
        if (slot == nmappings)
            nmappings++;
        mappings[slot] = (struct mapping){ptr, size, handles[found].physical};
        physical[handles[found].physical].mappings++;
    }
    pthread_mutex_unlock(&lock);
    fake_trace("cuMemMap size=%llu rc=%d", (unsigned long long)size, result);
    return result;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    int unmapped = 0;
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < nmappings; i++) {
        struct mapping *m = &mappings[i];
        if (m->physical < 0 || m->ptr < ptr || m->ptr - ptr >= size)
            continue;
        int index = m->physical;
        m->physical = -1;
        physical[index].mappings--;
        free_if_unused(index);
        unmapped++;
    }
    pthread_mutex_unlock(&lock);
    fake_trace("cuMemUnmap mappings=%d", unmapped);
    return unmapped > 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    CUresult result = CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr at = (CUdeviceptr)(uintptr_t)addr;
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < nmappings && result != CUDA_SUCCESS; i++) {
        struct mapping *m = &mappings[i];
        if (m->physical < 0 || at < m->ptr || at - m->ptr >= m->size)
            continue;
        *handle = next_value++ * 16; /* unless a handle to it is still open: */
        for (unsigned h = 0; h < nhandles; h++) /* the creating handle's value, as the driver */
            if (handles[h].physical == m->physical) {
                *handle = handles[h].value;
                break;
            }
        unsigned slot = 0;
        while (slot < nhandles && handles[slot].physical >= 0)
            slot++;
        if (slot == MAX_HANDLES)
            break;
        if (slot == nhandles)
            nhandles++;
        handles[slot] = (struct handle){*handle, m->physical};
        physical[m->physical].references++;
        result = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&lock);
    return result;
}

CUresult cuMemExportToShareableHandle(void *shareable, CUmemGenericAllocationHandle value,
                                      int handle_type, unsigned long long flags)
{
    if (shareable == NULL || flags != 0 || handle_type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult result = CUDA_SUCCESS;
    pthread_mutex_lock(&lock);
    int found = find_handle(value);
    if (found < 0) {
        result = CUDA_ERROR_INVALID_HANDLE;
    } else {
        struct physical *p = &physical[handles[found].physical];
        int fd = memfd_create("fake-cuda-vmm", MFD_CLOEXEC);
        struct exported header = {EXPORT_MAGIC, p->device, p->bytes};
        struct stat status;
        if (fd < 0 || pwrite(fd, &header, sizeof header, 0) != sizeof header ||
            fstat(fd, &status) != 0) {
            if (fd >= 0)
                close(fd);
            result = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            p->export_fd = fd;
            p->export_inode = status.st_ino;
            *(int *)shareable = fd;
        }
    }
    pthread_mutex_unlock(&lock);
    return result;
}

CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *os_handle,
                                        int handle_type)
{
    CUresult result = fake_cuda_ready();
    if (result != CUDA_SUCCESS)
        return result;
    int fd = (int)(intptr_t)os_handle;
    struct exported header;
    struct stat status;
    if (handle == NULL || handle_type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR ||
        pread(fd, &header, sizeof header, 0) != sizeof header || header.magic != EXPORT_MAGIC ||
        fstat(fd, &status) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    int own = -1;
    for (int i = 0; i < MAX_PHYSICAL && own < 0; i++)
        if (physical[i].in_use && physical[i].export_fd >= 0 &&
            physical[i].export_inode == status.st_ino)
            own = i;
    result = own >= 0 ? new_handle(own, handle)
                      : create("cuMemImportFromShareableHandle", (int)header.device, header.bytes,
                               handle);
    pthread_mutex_unlock(&lock);
    return result;
}

CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                CUmemGenericAllocationHandle value)
{
    if (prop == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    int found = find_handle(value);
    if (found >= 0)
        *prop = (CUmemAllocationProp){
            .type = CU_MEM_ALLOCATION_TYPE_PINNED,
            .location = {CU_MEM_LOCATION_TYPE_DEVICE, physical[handles[found].physical].device}};
    pthread_mutex_unlock(&lock);
    return found >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}
