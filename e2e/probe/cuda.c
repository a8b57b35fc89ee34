/* The "cuda" and "alloc" members: what a CUDA program in this container sees, and how much it may
 * allocate (a share stops at its quota with CUDA_ERROR_OUT_OF_MEMORY). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

/* cuDeviceGetUuid gives bytes only; a MIG device's name says "MIG" (e.g. "NVIDIA A100-SXM4-40GB
 * MIG 1g.5gb"), and its UUID is written MIG-… as NVML and nvidia-smi write it. */
static void format_uuid(const CUuuid *uuid, const char *name, char text[48])
{
    const unsigned char *b = uuid->bytes;
    snprintf(text, 48,
             "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             name != NULL && strstr(name, "MIG") != NULL ? "MIG" : "GPU", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void memory_info(struct json *json, const struct driver *driver)
{
    size_t free_bytes = 0, total_bytes = 0;
    if (driver->cuMemGetInfo_v2 == NULL) {
        probe_error(json, "memory_info", "cuMemGetInfo_v2", "not found in libcuda.so.1");
        return;
    }
    CUresult rc = driver->cuMemGetInfo_v2(&free_bytes, &total_bytes);
    if (rc != PROBE_CUDA_SUCCESS) {
        driver_error(json, driver, "memory_info", "cuMemGetInfo_v2", rc);
        return;
    }
    json_object(json, "memory_info");
    json_uint(json, "free", free_bytes);
    json_uint(json, "total", total_bytes);
    json_end(json, '}');
}

static void one_device(struct json *json, const struct driver *driver, int ordinal)
{
    json_object(json, NULL);
    json_int(json, "ordinal", ordinal);
    CUdevice device = 0;
    const char *failed = NULL;
    CUresult rc = driver_use_device(driver, ordinal, &device, &failed);
    if (rc != PROBE_CUDA_SUCCESS) {
        driver_error(json, driver, "error", failed, rc);
        json_end(json, '}');
        return;
    }
    char name[256] = "";
    if (driver->cuDeviceGetName == NULL || driver->cuDeviceGetName(name, sizeof name, device) != 0)
        name[0] = '\0';
    json_string(json, "name", name[0] != '\0' ? name : NULL);
    CUuuid uuid = {{0}};
    rc = driver->cuDeviceGetUuid_v2 != NULL ? driver->cuDeviceGetUuid_v2(&uuid, device)
         : driver->cuDeviceGetUuid != NULL  ? driver->cuDeviceGetUuid(&uuid, device)
                                            : -1;
    char text[48];
    format_uuid(&uuid, name, text);
    json_string(json, "uuid", rc == PROBE_CUDA_SUCCESS ? text : NULL);
    int major = 0, minor = 0;
    if (driver->cuDeviceGetAttribute != NULL &&
        driver->cuDeviceGetAttribute(&major, PROBE_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                     device) == 0 &&
        driver->cuDeviceGetAttribute(&minor, PROBE_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                     device) == 0) {
        snprintf(text, sizeof text, "%d.%d", major, minor);
        json_string(json, "compute_capability", text);
    } else {
        json_null(json, "compute_capability");
    }
    size_t total = 0;
    if (driver->cuDeviceTotalMem_v2 != NULL && driver->cuDeviceTotalMem_v2(&total, device) == 0)
        json_uint(json, "total_memory", total);
    else
        json_null(json, "total_memory");
    memory_info(json, driver);
    json_null(json, "error");
    json_end(json, '}');
}

/* Which library answers cuMemAlloc_v2 for this program: libgpuquota.so when the quota library
 * intercepts, libcuda.so.1 otherwise. */
static void allocation_entry(struct json *json, const struct driver *driver)
{
    Dl_info info;
    if (driver->cuMemAlloc_v2 != NULL && dladdr((void *)driver->cuMemAlloc_v2, &info) != 0)
        json_string(json, "alloc_entry", info.dli_fname);
    else
        json_null(json, "alloc_entry");
}

/* Every member is always written (null when an earlier step failed); "error" is the first
 * failure. */
const struct driver *cuda_section(struct json *json, struct driver *driver)
{
    char message[512];
    json_object(json, "cuda");
    int loaded = driver_load(driver, message, sizeof message) == 0;
    json_string(json, "library", loaded ? driver->library : NULL);
    if (loaded)
        allocation_entry(json, driver);
    else
        json_null(json, "alloc_entry");
    CUresult init = loaded ? driver->cuInit(0) : -1, counted = -1;
    int version = 0, count = 0;
    if (init == PROBE_CUDA_SUCCESS && driver->cuDriverGetVersion != NULL &&
        driver->cuDriverGetVersion(&version) == PROBE_CUDA_SUCCESS)
        json_int(json, "driver_version", version);
    else
        json_null(json, "driver_version");
    if (init == PROBE_CUDA_SUCCESS)
        counted = driver->cuDeviceGetCount(&count);
    if (counted == PROBE_CUDA_SUCCESS)
        json_int(json, "device_count", count);
    else
        json_null(json, "device_count");
    json_array(json, "devices");
    for (int ordinal = 0; counted == PROBE_CUDA_SUCCESS && ordinal < count; ordinal++)
        one_device(json, driver, ordinal);
    json_end(json, ']');
    if (!loaded)
        probe_error(json, "error", "dlopen", message);
    else if (init != PROBE_CUDA_SUCCESS)
        driver_error(json, driver, "error", "cuInit", init);
    else if (counted != PROBE_CUDA_SUCCESS)
        driver_error(json, driver, "error", "cuDeviceGetCount", counted);
    else
        json_null(json, "error");
    json_end(json, '}');
    return counted == PROBE_CUDA_SUCCESS ? driver : NULL;
}

/* Allocates in steps until the max or the first error, and keeps it all (for --hold). */
void cuda_alloc(struct json *json, const struct driver *driver, const struct options *options)
{
    json_object(json, "alloc");
    json_int(json, "device", options->device);
    json_uint(json, "step", options->alloc_step);
    json_uint(json, "max", options->alloc_max);
    CUdevice device;
    const char *failed = NULL;
    if (driver == NULL || driver->cuMemAlloc_v2 == NULL) {
        probe_error(json, "error", driver == NULL ? "cuInit" : "cuMemAlloc_v2",
                    driver == NULL ? "no usable libcuda.so.1" : "not found in libcuda.so.1");
        json_end(json, '}');
        return;
    }
    CUresult rc = driver_use_device(driver, options->device, &device, &failed);
    if (rc != PROBE_CUDA_SUCCESS) {
        driver_error(json, driver, "error", failed, rc);
        json_end(json, '}');
        return;
    }
    unsigned long long allocated = 0, count = 0;
    rc = PROBE_CUDA_SUCCESS;
    while (options->alloc_max == 0 || allocated < options->alloc_max) {
        unsigned long long bytes = options->alloc_step;
        if (options->alloc_max != 0 && options->alloc_max - allocated < bytes)
            bytes = options->alloc_max - allocated;
        CUdeviceptr pointer = 0;
        rc = driver->cuMemAlloc_v2(&pointer, bytes);
        if (rc != PROBE_CUDA_SUCCESS)
            break;
        allocated += bytes;
        count++; /* never freed: the memory stays charged while the probe holds */
    }
    json_uint(json, "allocated", allocated);
    json_uint(json, "allocations", count);
    if (rc != PROBE_CUDA_SUCCESS)
        driver_error(json, driver, "error", "cuMemAlloc_v2", rc);
    else
        json_null(json, "error");
    memory_info(json, driver);
    json_end(json, '}');
}
