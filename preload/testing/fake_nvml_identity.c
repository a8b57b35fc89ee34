/* The fake libnvidia-ml.so.1's identity of the driver and its GPUs (FAKE_DRIVER_VERSION,
 * FAKE_GPU_MINORS, FAKE_GPU_PCI_BUS_IDS, ... in fake_gpus.h): what `nvidia-ctk cdi generate`
 * (tests/driverroot/nvidiactk.py) asks of NVML for full GPUs. No GPU is in MIG mode. */
#include <stdio.h>
#include <string.h>

#include "fake_gpus.h"
#include "fake_nvml.h"

static nvmlReturn_t copy_text(const char *text, char *out, unsigned int length)
{
    if (out == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (length < strlen(text) + 1)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    nvmlReturn_t result = fake_nvml_initialized();
    return result != NVML_SUCCESS ? result : copy_text(fake_driver_version, version, length);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
    if (fake_nvml_initialized() != NVML_SUCCESS)
        return NVML_ERROR_UNINITIALIZED;
    if (version == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *version = fake_cuda_driver_version;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
    return nvmlSystemGetCudaDriverVersion(version);
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result == NVML_SUCCESS)
        *index = (unsigned)device->index;
    return result;
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result == NVML_SUCCESS)
        *minor = fake_gpus[device->index].minor;
    return result;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    nvmlReturn_t result = fake_nvml_check(device);
    return result != NVML_SUCCESS ? result : copy_text(fake_gpus[device->index].name, name, length);
}

/* Real NVML writes busId with an 8-digit domain and upper-case hex ("00000000:4E:00.0"). */
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result != NVML_SUCCESS)
        return result;
    unsigned function = 0;
    memset(pci, 0, sizeof *pci);
    sscanf(fake_gpus[device->index].pci_bus_id, "%x:%x:%x.%x", &pci->domain, &pci->bus,
           &pci->device, &function);
    snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.%X", pci->domain, pci->bus,
             pci->device, function);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X",
             pci->domain & 0xffff, pci->bus, pci->device, function);
    pci->pciDeviceId = 0x20B010DE;    /* A100-SXM4-40GB, NVIDIA's vendor id */
    pci->pciSubSystemId = 0x134F10DE;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result == NVML_SUCCESS)
        *current = *pending = NVML_DEVICE_MIG_DISABLE;
    return result;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result == NVML_SUCCESS)
        *is_mig = 0;
    return result;
}

/* MIG-capable (an A100 holds 7 MIG devices) but in no MIG mode, so no MIG device is there. */
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
    nvmlReturn_t result = fake_nvml_check(device);
    if (result == NVML_SUCCESS)
        *count = 7;
    return result;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *mig)
{
    nvmlReturn_t result = fake_nvml_check(device);
    (void)index;
    (void)mig;
    return result != NVML_SUCCESS ? result : NVML_ERROR_NOT_FOUND;
}
