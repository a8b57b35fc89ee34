/* Loading libcuda.so.1 and naming its errors (driver.h). */
#define _GNU_SOURCE
#include "driver.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

/* The names of the results the probe is likely to meet, for drivers without cuGetErrorName (the
 * fake libcuda). Numbers from cuda.h. */
static const struct {
    CUresult rc;
    const char *name;
} known[] = {
    {0, "CUDA_SUCCESS"},
    {1, "CUDA_ERROR_INVALID_VALUE"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY"},
    {3, "CUDA_ERROR_NOT_INITIALIZED"},
    {4, "CUDA_ERROR_DEINITIALIZED"},
    {34, "CUDA_ERROR_STUB_LIBRARY"},
    {46, "CUDA_ERROR_DEVICE_UNAVAILABLE"},
    {100, "CUDA_ERROR_NO_DEVICE"},
    {101, "CUDA_ERROR_INVALID_DEVICE"},
    {200, "CUDA_ERROR_INVALID_IMAGE"},
    {201, "CUDA_ERROR_INVALID_CONTEXT"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU"},
    {218, "CUDA_ERROR_INVALID_PTX"},
    {222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"},
    {400, "CUDA_ERROR_INVALID_HANDLE"},
    {500, "CUDA_ERROR_NOT_FOUND"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"},
    {702, "CUDA_ERROR_LAUNCH_TIMEOUT"},
    {719, "CUDA_ERROR_LAUNCH_FAILED"},
    {801, "CUDA_ERROR_NOT_SUPPORTED"},
    {802, "CUDA_ERROR_SYSTEM_NOT_READY"},
    {803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"},
    {804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"},
    {999, "CUDA_ERROR_UNKNOWN"},
};

#define LOOKUP(driver, name) \
    ((driver)->name = (__typeof__((driver)->name))dlsym((driver)->handle, #name))

int driver_load(struct driver *driver, char *error, size_t error_size)
{
    memset(driver, 0, sizeof *driver);
    driver->handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (driver->handle == NULL) {
        snprintf(error, error_size, "%s", dlerror());
        return -1;
    }
    struct link_map *map = NULL;
    if (dlinfo(driver->handle, RTLD_DI_LINKMAP, &map) == 0 && map != NULL)
        snprintf(driver->library, sizeof driver->library, "%s", map->l_name);
    LOOKUP(driver, cuInit);
    LOOKUP(driver, cuDriverGetVersion);
    LOOKUP(driver, cuGetErrorName);
    LOOKUP(driver, cuDeviceGetCount);
    LOOKUP(driver, cuDeviceGet);
    LOOKUP(driver, cuDeviceGetName);
    LOOKUP(driver, cuDeviceGetUuid_v2);
    LOOKUP(driver, cuDeviceGetUuid);
    LOOKUP(driver, cuDeviceGetAttribute);
    LOOKUP(driver, cuDeviceTotalMem_v2);
    LOOKUP(driver, cuDevicePrimaryCtxRetain);
    LOOKUP(driver, cuCtxSetCurrent);
    LOOKUP(driver, cuCtxSynchronize);
    LOOKUP(driver, cuMemGetInfo_v2);
    LOOKUP(driver, cuMemAlloc_v2);
    LOOKUP(driver, cuMemFree_v2);
    LOOKUP(driver, cuMemcpyDtoH_v2);
    LOOKUP(driver, cuModuleLoadDataEx);
    LOOKUP(driver, cuModuleGetFunction);
    LOOKUP(driver, cuModuleUnload);
    LOOKUP(driver, cuLaunchKernel);
    /* Without these nothing below can run; everything else is optional. */
    const char *missing = driver->cuInit == NULL                   ? "cuInit"
                          : driver->cuDeviceGetCount == NULL         ? "cuDeviceGetCount"
                          : driver->cuDeviceGet == NULL              ? "cuDeviceGet"
                          : driver->cuDevicePrimaryCtxRetain == NULL ? "cuDevicePrimaryCtxRetain"
                          : driver->cuCtxSetCurrent == NULL          ? "cuCtxSetCurrent"
                                                                     : NULL;
    if (missing != NULL) {
        snprintf(error, error_size, "dlsym: %s not found in libcuda.so.1", missing);
        return -1;
    }
    return 0;
}

static const char *error_name(const struct driver *driver, CUresult rc)
{
    const char *name = NULL;
    if (driver->cuGetErrorName != NULL && driver->cuGetErrorName(rc, &name) == 0 && name != NULL)
        return name;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].rc == rc)
            return known[i].name;
    return NULL;
}

void driver_error(struct json *json, const struct driver *driver, const char *key,
                  const char *call, CUresult rc)
{
    json_object(json, key);
    json_string(json, "call", call);
    json_int(json, "rc", rc);
    json_string(json, "name", error_name(driver, rc));
    json_null(json, "message");
    json_end(json, '}');
}

void probe_error(struct json *json, const char *key, const char *call, const char *message)
{
    json_object(json, key);
    json_string(json, "call", call);
    json_null(json, "rc");
    json_null(json, "name");
    json_string(json, "message", message);
    json_end(json, '}');
}

CUresult driver_use_device(const struct driver *driver, int ordinal, CUdevice *device,
                           const char **failed)
{
    CUcontext context = NULL;
    CUresult rc = driver->cuDeviceGet(device, ordinal);
    *failed = "cuDeviceGet";
    if (rc == PROBE_CUDA_SUCCESS) {
        rc = driver->cuDevicePrimaryCtxRetain(&context, *device);
        *failed = "cuDevicePrimaryCtxRetain";
    }
    if (rc == PROBE_CUDA_SUCCESS) {
        rc = driver->cuCtxSetCurrent(context);
        *failed = "cuCtxSetCurrent";
    }
    return rc;
}
