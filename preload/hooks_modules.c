/* Module globals: the __device__ variables of a loaded module (or library) are device memory the
 * driver allocates at load. The library charges each global the first time the program (or the
 * CUDA runtime, which looks up every variable it registered) asks for it with cuModuleGetGlobal_v2
 * or cuLibraryGetGlobal, on the current context's device, and releases it when its module or
 * library is unloaded. A lookup whose global does not fit is refused with
 * CUDA_ERROR_OUT_OF_MEMORY. Code and constant banks are not seen: they belong to the context
 * reserve. */
#include <pthread.h>
#include <stdlib.h>

#include "charges.h"
#include "hooks.h"
#include "logging.h"
#include "quota.h"

struct global {
    const void *owner; /* the CUmodule or CUlibrary */
    CUdeviceptr dptr;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct global *globals;
static size_t count, capacity;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void fork_child(void) /* the parent's modules are not the child's */
{
    count = 0;
    pthread_mutex_unlock(&lock);
}

static void register_fork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static CUresult charge_global(const void *owner, CUdeviceptr dptr, size_t bytes)
{
    static int lost_once;
    struct gpuq_record record;
    pthread_once(&fork_once, register_fork);
    pthread_mutex_lock(&lock);
    if (gpuq_map_take(GPUQ_KIND_GLOBAL, dptr, &record)) { /* charged already */
        gpuq_map_put(GPUQ_KIND_GLOBAL, dptr, record);
        pthread_mutex_unlock(&lock);
        return CUDA_SUCCESS;
    }
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, bytes);
    if (result == CUDA_SUCCESS && charge.dev >= 0) {
        if (count == capacity) {
            size_t more = capacity ? capacity * 2 : 64;
            struct global *grown = realloc(globals, more * sizeof *grown);
            if (grown != NULL) {
                globals = grown;
                capacity = more;
            }
        }
        if (count < capacity) {
            globals[count++] = (struct global){owner, dptr};
            gpuq_charge_end(&charge, CUDA_SUCCESS, GPUQ_KIND_GLOBAL, dptr);
        } else { /* stays charged until the process exits */
            gpuq_log_once(&lost_once, GPUQ_LOG_WARN,
                          "cannot record a module global (out of memory); it stays counted "
                          "until this process exits");
        }
    }
    pthread_mutex_unlock(&lock);
    return result;
}

static void unloaded(const void *owner)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < count;) {
        if (globals[i].owner != owner) {
            i++;
            continue;
        }
        struct gpuq_charge charge;
        if (gpuq_charge_take(&charge, GPUQ_KIND_GLOBAL, globals[i].dptr))
            gpuq_charge_settle(&charge, CUDA_SUCCESS, GPUQ_KIND_GLOBAL, globals[i].dptr);
        globals[i] = globals[--count];
    }
    pthread_mutex_unlock(&lock);
}

static CUresult looked_up(CUresult result, const void *owner, CUdeviceptr found, size_t bytes,
                          CUdeviceptr *dptr, size_t *size)
{
    if (result != CUDA_SUCCESS)
        return result;
    result = charge_global(owner, found, bytes);
    if (result != CUDA_SUCCESS)
        return result;
    if (dptr != NULL)
        *dptr = found;
    if (size != NULL)
        *size = bytes;
    return CUDA_SUCCESS;
}

GPUQ_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule module,
                                          const char *name)
{
    __typeof__(&cuModuleGetGlobal_v2) real = GPUQ_REAL(cuModuleGetGlobal_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUdeviceptr found = 0;
    size_t size = 0;
    CUresult result = real(&found, &size, module, name);
    return looked_up(result, module, found, size, dptr, bytes);
}

GPUQ_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                                        const char *name)
{
    __typeof__(&cuLibraryGetGlobal) real = GPUQ_REAL(cuLibraryGetGlobal);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUdeviceptr found = 0;
    size_t size = 0;
    CUresult result = real(&found, &size, library, name);
    return looked_up(result, library, found, size, dptr, bytes);
}

GPUQ_EXPORT CUresult cuModuleUnload(CUmodule module)
{
    __typeof__(&cuModuleUnload) real = GPUQ_REAL(cuModuleUnload);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(module);
    if (result == CUDA_SUCCESS)
        unloaded(module);
    return result;
}

GPUQ_EXPORT CUresult cuLibraryUnload(CUlibrary library)
{
    __typeof__(&cuLibraryUnload) real = GPUQ_REAL(cuLibraryUnload);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(library);
    if (result == CUDA_SUCCESS)
        unloaded(library);
    return result;
}
