/* Every function the library interposes, in one table: its exported name, the library it comes
 * from, and (CUDA only) the name cuGetProcAddress is asked for, the cudaVersion from which that
 * name means this variant, and whether it is the per-thread-default-stream (_ptsz) variant.
 * dlsym.c redirects lookups of these names, procaddress.c swaps them into cuGetProcAddress
 * answers, and real.c finds the driver's own function behind each. tests/preload checks that the
 * library exports exactly these names. */
#ifndef GPUQ_HOOKS_H
#define GPUQ_HOOKS_H

#include "cuda_abi.h"
#include "nvml_abi.h"

#define GPUQ_EXPORT __attribute__((visibility("default")))

enum gpuq_lib { GPUQ_LIB_CUDA = 0, GPUQ_LIB_NVML = 1 };

/* X(name, lib, getproc name, since cudaVersion, ptsz) */
#define GPUQ_HOOKS(X)                                                                             \
    X(cuInit, CUDA, "cuInit", 2000, 0)                                                            \
    X(cuMemAlloc_v2, CUDA, "cuMemAlloc", 3020, 0)                                                 \
    X(cuMemFree_v2, CUDA, "cuMemFree", 3020, 0)                                                   \
    X(cuMemAllocPitch_v2, CUDA, "cuMemAllocPitch", 3020, 0)                                       \
    X(cuMemAllocManaged, CUDA, "cuMemAllocManaged", 6000, 0)                                      \
    X(cuMemCreate, CUDA, "cuMemCreate", 10020, 0)                                                 \
    X(cuMemRelease, CUDA, "cuMemRelease", 10020, 0)                                               \
    X(cuMemAllocAsync, CUDA, "cuMemAllocAsync", 11020, 0)                                         \
    X(cuMemAllocAsync_ptsz, CUDA, "cuMemAllocAsync", 11020, 1)                                    \
    X(cuMemFreeAsync, CUDA, "cuMemFreeAsync", 11020, 0)                                           \
    X(cuMemFreeAsync_ptsz, CUDA, "cuMemFreeAsync", 11020, 1)                                      \
    X(cuMemAllocFromPoolAsync, CUDA, "cuMemAllocFromPoolAsync", 11020, 0)                         \
    X(cuMemAllocFromPoolAsync_ptsz, CUDA, "cuMemAllocFromPoolAsync", 11020, 1)                    \
    X(cuArrayCreate_v2, CUDA, "cuArrayCreate", 3020, 0)                                           \
    X(cuArray3DCreate_v2, CUDA, "cuArray3DCreate", 3020, 0)                                       \
    X(cuArrayDestroy, CUDA, "cuArrayDestroy", 2000, 0)                                            \
    X(cuMemGetInfo_v2, CUDA, "cuMemGetInfo", 3020, 0)                                             \
    X(cuDeviceTotalMem_v2, CUDA, "cuDeviceTotalMem", 3020, 0)                                     \
    X(cuMemMap, CUDA, "cuMemMap", 10020, 0)                                                       \
    X(cuMemUnmap, CUDA, "cuMemUnmap", 10020, 0)                                                   \
    X(cuMemExportToShareableHandle, CUDA, "cuMemExportToShareableHandle", 10020, 0)               \
    X(cuMemImportFromShareableHandle, CUDA, "cuMemImportFromShareableHandle", 10020, 0)           \
    X(cuMemRetainAllocationHandle, CUDA, "cuMemRetainAllocationHandle", 11000, 0)                 \
    X(cuMemPoolCreate, CUDA, "cuMemPoolCreate", 11020, 0)                                         \
    X(cuMemPoolDestroy, CUDA, "cuMemPoolDestroy", 11020, 0)                                       \
    X(cuMemPoolTrimTo, CUDA, "cuMemPoolTrimTo", 11020, 0)                                         \
    X(cuStreamSynchronize, CUDA, "cuStreamSynchronize", 2000, 0)                                  \
    X(cuStreamSynchronize_ptsz, CUDA, "cuStreamSynchronize", 7000, 1)                             \
    X(cuCtxSynchronize, CUDA, "cuCtxSynchronize", 2000, 0)                                        \
    X(cuEventSynchronize, CUDA, "cuEventSynchronize", 2000, 0)                                    \
    X(cuCtxSetLimit, CUDA, "cuCtxSetLimit", 3010, 0)                                              \
    X(cuGraphAddMemAllocNode, CUDA, "cuGraphAddMemAllocNode", 11040, 0)                           \
    X(cuMipmappedArrayCreate, CUDA, "cuMipmappedArrayCreate", 5000, 0)                            \
    X(cuMipmappedArrayDestroy, CUDA, "cuMipmappedArrayDestroy", 5000, 0)                          \
    X(cuModuleGetGlobal_v2, CUDA, "cuModuleGetGlobal", 3020, 0)                                   \
    X(cuModuleUnload, CUDA, "cuModuleUnload", 2000, 0)                                            \
    X(cuLibraryGetGlobal, CUDA, "cuLibraryGetGlobal", 12000, 0)                                   \
    X(cuLibraryUnload, CUDA, "cuLibraryUnload", 12000, 0)                                         \
    X(cuGetProcAddress, CUDA, "cuGetProcAddress", 11030, 0)                                       \
    X(cuGetProcAddress_v2, CUDA, "cuGetProcAddress", 12000, 0)                                    \
    X(nvmlDeviceGetMemoryInfo, NVML, NULL, 0, 0)                                                  \
    X(nvmlDeviceGetMemoryInfo_v2, NVML, NULL, 0, 0)

/* Driver functions the library only calls: X(name, lib) */
#define GPUQ_HELPERS(X)                                                                           \
    X(cuCtxGetDevice, CUDA)                                                                       \
    X(cuDeviceGetCount, CUDA)                                                                     \
    X(cuDeviceGetUuid_v2, CUDA)                                                                   \
    X(cuCtxPushCurrent_v2, CUDA)                                                                  \
    X(cuCtxPopCurrent_v2, CUDA)                                                                   \
    X(cuStreamGetCtx, CUDA)                                                                       \
    X(cuDeviceGetMemPool, CUDA)                                                                   \
    X(cuDeviceGetDefaultMemPool, CUDA)                                                            \
    X(cuMemPoolGetAttribute, CUDA)                                                                \
    X(cuMemGetAllocationPropertiesFromHandle, CUDA)                                               \
    X(cuDeviceGetAttribute, CUDA)                                                                 \
    X(nvmlDeviceGetUUID, NVML)

enum gpuq_fn {
#define GPUQ_HOOK_ENUM(name, lib, base, since, ptsz) GPUQ_FN_##name,
#define GPUQ_HELPER_ENUM(name, lib) GPUQ_FN_##name,
    GPUQ_HOOKS(GPUQ_HOOK_ENUM) GPUQ_HELPERS(GPUQ_HELPER_ENUM) GPUQ_FN_COUNT
#undef GPUQ_HOOK_ENUM
#undef GPUQ_HELPER_ENUM
};

#define GPUQ_HOOK_ONE(name, lib, base, since, ptsz) +1
enum { GPUQ_HOOK_COUNT = 0 GPUQ_HOOKS(GPUQ_HOOK_ONE) };
#undef GPUQ_HOOK_ONE

struct gpuq_hook {
    const char *name;
    enum gpuq_lib lib;
    void *wrapper;
    const char *base; /* what cuGetProcAddress is asked for; NULL for NVML */
    int since;        /* the cudaVersion from which `base` resolves to this variant */
    int ptsz;
};

extern const struct gpuq_hook gpuq_hooks[GPUQ_HOOK_COUNT];

/* The hook named `name`, or -1. */
int gpuq_hook_find(const char *name);

/* The driver's function behind `fn` (resolved once, through the real dlsym on the driver
 * library's handle), or NULL when the driver lacks it. */
void *gpuq_real(enum gpuq_fn fn);

/* Use `function` as the driver's `fn` if none was found by name (from cuGetProcAddress). */
void gpuq_real_adopt(enum gpuq_fn fn, void *function);

/* The handle of the driver library, loading it if needed / only if already loaded. */
void *gpuq_library(enum gpuq_lib lib);
void *gpuq_library_loaded(enum gpuq_lib lib);

/* glibc's own dlsym (we interpose dlsym itself). */
typedef void *(*gpuq_dlsym_fn)(void *handle, const char *symbol);
gpuq_dlsym_fn gpuq_real_dlsym(void);

/* The driver's function behind hook or helper `name`, typed as ours. */
#define GPUQ_REAL(name) ((__typeof__(&name))gpuq_real(GPUQ_FN_##name))

#endif
