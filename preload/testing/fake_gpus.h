/* The simulated GPUs both fakes (libcuda.so.1, libnvidia-ml.so.1) describe, from the environment:
 *
 *   FAKE_GPU_COUNT       number of devices (default: as many as FAKE_GPU_UUIDS names, else 1)
 *   FAKE_GPU_UUIDS       comma-separated GPU-/MIG- UUIDs in CUDA device order (default generated)
 *   FAKE_GPU_MEM_BYTES   memory per device: one number for all, or comma-separated (default 16 GiB)
 *   FAKE_FAIL_ALLOC_NTH  the Nth allocation call of the process fails with OUT_OF_MEMORY (1-based)
 *   FAKE_TRACE           when set, every memory call is traced to stderr ("fake: cuMemAlloc_v2 …") */
#ifndef FAKE_GPUS_H
#define FAKE_GPUS_H

#include <stdint.h>

#include "../uuids.h"

#define FAKE_MAX_DEVICES 16
#define FAKE_DEFAULT_MEMORY (16ull << 30)

struct fake_gpu {
    gpuq_uuid uuid;
    char uuid_text[GPUQ_UUID_TEXT_LEN + 1];
    uint64_t memory;
};

extern int fake_gpu_count;
extern struct fake_gpu fake_gpus[FAKE_MAX_DEVICES];

/* Reads the environment once; 0, or -1 if it is malformed (message on stderr). */
int fake_gpus_load(void);

void fake_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
