/* The CUDA driver API as the probe sees it: the types and entry points it uses, declared here (no
 * CUDA toolkit), all looked up with dlsym on dlopen("libcuda.so.1") so that the quota library,
 * loaded through /etc/ld.so.preload, sees the same calls a real program makes. An entry point the
 * driver lacks stays NULL (the fake libcuda has no module or launch calls). */
#ifndef PROBE_DRIVER_H
#define PROBE_DRIVER_H

#include <limits.h>
#include <stddef.h>

#include "json.h"

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct {
    unsigned char bytes[16];
} CUuuid;

enum {
    PROBE_CUDA_SUCCESS = 0,
    PROBE_CUDA_ERROR_OUT_OF_MEMORY = 2,
    PROBE_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    PROBE_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    PROBE_CU_JIT_ERROR_LOG_BUFFER = 5,
    PROBE_CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
};

struct driver {
    void *handle;
    char library[PATH_MAX]; /* where libcuda.so.1 was loaded from */
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int *version);
    CUresult (*cuGetErrorName)(CUresult error, const char **name);
    CUresult (*cuDeviceGetCount)(int *count);
    CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
    CUresult (*cuDeviceGetName)(char *name, int length, CUdevice device);
    CUresult (*cuDeviceGetUuid_v2)(CUuuid *uuid, CUdevice device);
    CUresult (*cuDeviceGetUuid)(CUuuid *uuid, CUdevice device);
    CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
    CUresult (*cuDeviceTotalMem_v2)(size_t *bytes, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
    CUresult (*cuCtxSetCurrent)(CUcontext context);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuMemGetInfo_v2)(size_t *free_bytes, size_t *total_bytes);
    CUresult (*cuMemAlloc_v2)(CUdeviceptr *pointer, size_t bytes);
    CUresult (*cuMemFree_v2)(CUdeviceptr pointer);
    CUresult (*cuMemcpyDtoH_v2)(void *destination, CUdeviceptr source, size_t bytes);
    CUresult (*cuModuleLoadDataEx)(CUmodule *module, const void *image, unsigned int count,
                                   int *options, void **values);
    CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module, const char *name);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuLaunchKernel)(CUfunction function, unsigned int grid_x, unsigned int grid_y,
                               unsigned int grid_z, unsigned int block_x, unsigned int block_y,
                               unsigned int block_z, unsigned int shared_bytes, CUstream stream,
                               void **parameters, void **extra);
};

/* dlopen("libcuda.so.1") and every lookup; 0, or -1 with the reason in `error`. */
int driver_load(struct driver *driver, char *error, size_t error_size);

/* Writes {"call": …, "rc": n, "name": "CUDA_ERROR_…" or null, "message": null} as `key`. */
void driver_error(struct json *json, const struct driver *driver, const char *key,
                  const char *call, CUresult rc);

/* Writes {"call": …, "rc": null, "name": null, "message": …} as `key`: a failure that is no
 * CUDA result (dlopen, a missing entry point). */
void probe_error(struct json *json, const char *key, const char *call, const char *message);

/* Makes the device's primary context current (retained for the life of the process); on failure
 * *failed names the call that failed. */
CUresult driver_use_device(const struct driver *driver, int ordinal, CUdevice *device,
                           const char **failed);

#endif
