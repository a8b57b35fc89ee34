/* What NVML reports about memory: nvmlDeviceGetMemoryInfo and _v2 for a limited device (found by
 * its UUID) show the claim: total = min(limit, physical), used = the claim's usage, free = what
 * the claim has left (never more than is physically free). */
#include <string.h>

#include "hooks.h"
#include "process.h"
#include "quota.h"

/* The config device of an NVML handle, or -1. */
static int device_of(nvmlDevice_t device)
{
    __typeof__(&nvmlDeviceGetUUID) get_uuid = GPUQ_REAL(nvmlDeviceGetUUID);
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    gpuq_uuid uuid;
    if (get_uuid == NULL || get_uuid(device, text, sizeof text) != NVML_SUCCESS ||
        gpuq_uuid_parse(text, strnlen(text, sizeof text), &uuid) != 0)
        return -1;
    return gpuq_config_find(&gpuq_process.config, &uuid);
}

/* Rewrites the report; returns whether the device is limited. */
static int report(nvmlDevice_t device, unsigned long long *total, unsigned long long *free,
                  unsigned long long *used)
{
    enum gpuq_mode mode = gpuq_process_mode();
    if (mode == GPUQ_MODE_FAILED_CLOSED)
        *free = 0;
    int dev = mode == GPUQ_MODE_ENFORCING ? device_of(device) : -1;
    if (dev < 0)
        return 0;
    uint64_t free64 = *free, total64 = *total, used64 = 0;
    gpuq_quota_report((unsigned)dev, &free64, &total64, &used64);
    *free = free64;
    *total = total64;
    *used = used64;
    return 1;
}

GPUQ_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    __typeof__(&nvmlDeviceGetMemoryInfo) real = GPUQ_REAL(nvmlDeviceGetMemoryInfo);
    if (real == NULL)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    nvmlReturn_t result = real(device, memory);
    if (result == NVML_SUCCESS && memory != NULL)
        report(device, &memory->total, &memory->free, &memory->used);
    return result;
}

GPUQ_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    __typeof__(&nvmlDeviceGetMemoryInfo_v2) real = GPUQ_REAL(nvmlDeviceGetMemoryInfo_v2);
    if (real == NULL)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    nvmlReturn_t result = real(device, memory);
    if (result == NVML_SUCCESS && memory != NULL &&
        report(device, &memory->total, &memory->free, &memory->used))
        memory->reserved = 0; /* the driver's reservation is not the claim's */
    return result;
}
