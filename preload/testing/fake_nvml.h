/* What the fake libnvidia-ml's files share: a device handle is a pointer into one array of these
 * (fake_nvml.c), checked by fake_nvml_check. */
#ifndef FAKE_NVML_H
#define FAKE_NVML_H

#include "../nvml_abi.h"

struct nvmlDevice_st {
    int index;
};

/* NVML_SUCCESS if nvmlInit succeeded more often than nvmlShutdown, else NVML_ERROR_UNINITIALIZED. */
nvmlReturn_t fake_nvml_initialized(void);

/* NVML_SUCCESS if NVML is initialized and `device` is one of the simulated GPUs. */
nvmlReturn_t fake_nvml_check(nvmlDevice_t device);

#endif
