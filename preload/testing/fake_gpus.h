/* The simulated GPUs both fakes (libcuda.so.1, libnvidia-ml.so.1) describe, from the environment:
 *
 *   FAKE_GPU_COUNT       number of devices (default: as many as FAKE_GPU_UUIDS names, else 1)
 *   FAKE_GPU_UUIDS       comma-separated GPU-/MIG- UUIDs in CUDA device order (default generated)
 *   FAKE_GPU_MEM_BYTES   memory per device: one number for all, or comma-separated (default 16 GiB)
 *   FAKE_FAIL_ALLOC_NTH  the Nth allocation call of the process fails with OUT_OF_MEMORY (1-based)
 *   FAKE_TRACE           when set, every memory call is traced to stderr ("fake: cuMemAlloc_v2 …")
 *
 * and, for the identity NVML reports (what `nvidia-ctk cdi generate` asks), each a comma-separated
 * list in device order, or one value for all:
 *   FAKE_GPU_MINORS          /dev/nvidia<minor> of each device (default: its index)
 *   FAKE_GPU_PCI_BUS_IDS     "0000:10:00.0" (default 0000:<0x10 + index>:00.0)
 *   FAKE_GPU_NAMES           product names (default "NVIDIA A100-SXM4-40GB")
 *   FAKE_DRIVER_VERSION      nvmlSystemGetDriverVersion (default "580.95.05")
 *   FAKE_CUDA_DRIVER_VERSION nvmlSystemGetCudaDriverVersion, e.g. 13000 for 13.0 (the default) */
#ifndef FAKE_GPUS_H
#define FAKE_GPUS_H

#include <stdint.h>

#include "../uuids.h"

#define FAKE_MAX_DEVICES 16
#define FAKE_DEFAULT_MEMORY (16ull << 30)
#define FAKE_PCI_BUS_ID_LEN 31
#define FAKE_NAME_LEN 95

struct fake_gpu {
    gpuq_uuid uuid;
    char uuid_text[GPUQ_UUID_TEXT_LEN + 1];
    uint64_t memory;
    unsigned minor;
    char pci_bus_id[FAKE_PCI_BUS_ID_LEN + 1]; /* domain:bus:device.function, as given */
    char name[FAKE_NAME_LEN + 1];
};

extern int fake_gpu_count;
extern struct fake_gpu fake_gpus[FAKE_MAX_DEVICES];
extern char fake_driver_version[80];
extern int fake_cuda_driver_version;

/* Reads the environment once; 0, or -1 if it is malformed (message on stderr). */
int fake_gpus_load(void);

void fake_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
