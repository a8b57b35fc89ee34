/* The fake libcuda.so.1: device memory a context holds besides allocations, held like the
 * driver holds it: context limits (cuCtxSetLimit: the stack for every resident thread, the malloc
 * heap, the printf buffer, each beyond its default), graph memory nodes (held from the node's
 * creation to the end of the process, as a graph memory pool that is never trimmed), and module
 * and library globals (a global named "g<size>", e.g. "g64M", takes that much device memory on the
 * current device from its first lookup until its module or library is unloaded). Devices have 108
 * multiprocessors of 2048 threads (cuDeviceGetAttribute). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cuda.h"

#define MULTIPROCESSORS 108
#define THREADS_PER_MULTIPROCESSOR 2048
#define MAX_GLOBALS 1024

struct CUmod_st {
    int loaded;
};
struct CUlib_st {
    int loaded;
};
struct CUgraph_st {
    int nodes;
};

struct global {
    const void *owner;
    char name[32];
    int device;
    uint64_t bytes;
    CUdeviceptr dptr; /* 0: free entry */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t limits[FAKE_MAX_DEVICES][3];
static uint64_t limits_held[FAKE_MAX_DEVICES][3];
static const size_t default_limits[3] = {1024, 1 << 20, 8 << 20};
static struct global globals[MAX_GLOBALS];

CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attribute, CUdevice dev)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (value == NULL || dev < 0 || dev >= fake_gpu_count)
        return CUDA_ERROR_INVALID_VALUE;
    if (attribute == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        *value = MULTIPROCESSORS;
    else if (attribute == CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR)
        *value = THREADS_PER_MULTIPROCESSOR;
    else
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

static uint64_t held_for(CUlimit limit, size_t value)
{
    uint64_t beyond = value > default_limits[limit] ? value - default_limits[limit] : 0;
    return limit == CU_LIMIT_STACK_SIZE
               ? beyond * MULTIPROCESSORS * THREADS_PER_MULTIPROCESSOR
               : beyond;
}

CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    int device;
    CUresult result = fake_cuda_current(&device);
    if (result != CUDA_SUCCESS)
        return result;
    if (limit < 0 || limit > CU_LIMIT_MALLOC_HEAP_SIZE)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    uint64_t wanted = held_for(limit, value), old = limits_held[device][limit];
    if (wanted > old)
        result = fake_memory_reserve("cuCtxSetLimit", device, wanted - old);
    else
        fake_memory_unreserve(device, old - wanted);
    if (result == CUDA_SUCCESS) {
        limits_held[device][limit] = wanted;
        limits[device][limit] = value;
    }
    pthread_mutex_unlock(&lock);
    return result;
}

CUresult cuCtxGetLimit(size_t *value, CUlimit limit)
{
    int device;
    CUresult result = fake_cuda_current(&device);
    if (result != CUDA_SUCCESS)
        return result;
    if (value == NULL || limit < 0 || limit > CU_LIMIT_MALLOC_HEAP_SIZE)
        return CUDA_ERROR_INVALID_VALUE;
    *value = limits[device][limit] ? limits[device][limit] : default_limits[limit];
    return CUDA_SUCCESS;
}

CUresult cuGraphCreate(CUgraph *graph, unsigned int flags)
{
    if (graph == NULL || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    *graph = calloc(1, sizeof **graph);
    return *graph != NULL ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult cuGraphDestroy(CUgraph graph)
{
    free(graph); /* its memory stays in the device's graph memory pool */
    return graph != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph graph, const CUgraphNode *dependencies,
                                size_t count, CUDA_MEM_ALLOC_NODE_PARAMS *params)
{
    (void)dependencies, (void)count;
    if (node == NULL || graph == NULL || params == NULL || params->bytesize == 0 ||
        params->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    int device = params->poolProps.location.id;
    CUresult result = fake_memory_reserve("cuGraphAddMemAllocNode", device, params->bytesize);
    if (result == CUDA_SUCCESS) {
        params->dptr = fake_memory_address(device, params->bytesize);
        *node = (CUgraphNode)(uintptr_t)(++graph->nodes);
    }
    return result;
}

CUresult cuModuleLoad(CUmodule *module, const char *path)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (module == NULL || path == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *module = calloc(1, sizeof **module);
    if (*module == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    (*module)->loaded = 1;
    return CUDA_SUCCESS;
}

CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *path, void *jit_options,
                               void **jit_values, unsigned int jit_count, void *library_options,
                               void **library_values, unsigned int library_count)
{
    (void)jit_options, (void)jit_values, (void)jit_count, (void)library_options,
        (void)library_values, (void)library_count;
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (library == NULL || path == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *library = calloc(1, sizeof **library);
    if (*library == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    (*library)->loaded = 1;
    return CUDA_SUCCESS;
}

static uint64_t size_in_name(const char *name)
{
    char *end;
    if (name[0] != 'g')
        return 0;
    uint64_t value = strtoull(name + 1, &end, 10);
    return *end == 'K' ? value << 10 : *end == 'M' ? value << 20 : value;
}

static CUresult get_global(const void *owner, CUdeviceptr *dptr, size_t *bytes, const char *name)
{
    int device;
    CUresult result = fake_cuda_current(&device);
    if (result != CUDA_SUCCESS)
        return result;
    uint64_t size = name != NULL ? size_in_name(name) : 0;
    if (size == 0 || strlen(name) >= sizeof globals[0].name)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&lock);
    struct global *found = NULL, *empty = NULL;
    for (int i = 0; i < MAX_GLOBALS && found == NULL; i++) {
        if (globals[i].dptr != 0 && globals[i].owner == owner && globals[i].device == device &&
            strcmp(globals[i].name, name) == 0)
            found = &globals[i];
        else if (globals[i].dptr == 0 && empty == NULL)
            empty = &globals[i];
    }
    if (found == NULL && empty == NULL)
        result = CUDA_ERROR_OUT_OF_MEMORY;
    if (found == NULL && result == CUDA_SUCCESS)
        result = fake_memory_reserve("global", device, size);
    if (found == NULL && result == CUDA_SUCCESS) {
        found = empty;
        *found = (struct global){owner, "", device, size, fake_memory_address(device, size)};
        strcpy(found->name, name);
    }
    if (result == CUDA_SUCCESS) {
        if (dptr != NULL)
            *dptr = found->dptr;
        if (bytes != NULL)
            *bytes = found->bytes;
    }
    pthread_mutex_unlock(&lock);
    return result;
}

static void unload(const void *owner)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_GLOBALS; i++)
        if (globals[i].dptr != 0 && globals[i].owner == owner) {
            fake_memory_unreserve(globals[i].device, globals[i].bytes);
            globals[i].dptr = 0;
        }
    pthread_mutex_unlock(&lock);
}

CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule module, const char *name)
{
    if (module == NULL || !module->loaded)
        return CUDA_ERROR_INVALID_HANDLE;
    return get_global(module, dptr, bytes, name);
}

CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    if (library == NULL || !library->loaded)
        return CUDA_ERROR_INVALID_HANDLE;
    return get_global(library, dptr, bytes, name);
}

CUresult cuModuleUnload(CUmodule module)
{
    if (module == NULL || !module->loaded)
        return CUDA_ERROR_INVALID_HANDLE;
    unload(module);
    free(module);
    return CUDA_SUCCESS;
}

CUresult cuLibraryUnload(CUlibrary library)
{
    if (library == NULL || !library->loaded)
        return CUDA_ERROR_INVALID_HANDLE;
    unload(library);
    free(library);
    return CUDA_SUCCESS;
}
