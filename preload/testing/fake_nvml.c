/* The fake libnvidia-ml.so.1: the same simulated GPUs (fake_gpus.h), by index or UUID, with
 * their memory reported as total = FAKE_GPU_MEM_BYTES, all of it free. Their identity (driver
 * version, minor numbers, PCI bus ids) is in fake_nvml_identity.c. */
#include <stdio.h>
#include <string.h>

#include "fake_gpus.h"
#include "fake_nvml.h"

static struct nvmlDevice_st devices[FAKE_MAX_DEVICES];
static int initialized;

nvmlReturn_t nvmlInit_v2(void)
{
    if (fake_gpus_load() != 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < FAKE_MAX_DEVICES; i++)
        devices[i].index = i;
    initialized++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (initialized == 0)
        return NVML_ERROR_UNINITIALIZED;
    initialized--;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (initialized == 0)
        return NVML_ERROR_UNINITIALIZED;
    *count = (unsigned)fake_gpu_count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (initialized == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (index >= (unsigned)fake_gpu_count || device == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    if (initialized == 0)
        return NVML_ERROR_UNINITIALIZED;
    for (int i = 0; i < fake_gpu_count; i++)
        if (strcmp(fake_gpus[i].uuid_text, uuid) == 0) {
            *device = &devices[i];
            return NVML_SUCCESS;
        }
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t fake_nvml_initialized(void)
{
    return initialized > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

nvmlReturn_t fake_nvml_check(nvmlDevice_t device)
{
    if (initialized == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || device < devices || device >= devices + fake_gpu_count)
        return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result != NVML_SUCCESS)
        return result;
    if (length < strlen(fake_gpus[device->index].uuid_text) + 1)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(uuid, fake_gpus[device->index].uuid_text);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result != NVML_SUCCESS)
        return result;
    memory->total = memory->free = fake_gpus[device->index].memory;
    memory->used = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result != NVML_SUCCESS)
        return result;
    if (memory->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory->total = memory->free = fake_gpus[device->index].memory;
    memory->reserved = memory->used = 0;
    return NVML_SUCCESS;
}
