/* What the allocation hooks do around the driver's call:
 *
 *     struct gpuq_charge charge;
 *     CUresult result = gpuq_charge_begin(&charge, GPUQ_CURRENT_DEVICE, bytes);
 *     if (result != CUDA_SUCCESS) return result;               // over the limit: OUT_OF_MEMORY
 *     result = real(...);
 *     gpuq_charge_end(&charge, result, GPUQ_KIND_POINTER, *dptr);  // remembered, or undone
 *
 * and around a free: gpuq_charge_take() before the driver's call (so a concurrent allocation that
 * gets the same address back cannot be confused with it), gpuq_charge_settle() after. */
#ifndef GPUQ_CHARGES_H
#define GPUQ_CHARGES_H

#include <stdint.h>

#include "cuda_abi.h"
#include "maps.h"

/* Kinds of the allocation map (maps.h) that one file each uses, numbered past maps.h's own. */
#define GPUQ_KIND_POOLED ((enum gpuq_kind)16)      /* pools.c: pointer -> account, bytes */
#define GPUQ_KIND_VMM_MAPPING ((enum gpuq_kind)17) /* hooks_vmm.c: address -> allocation, size */
#define GPUQ_KIND_VMM_EXPORT ((enum gpuq_kind)18)  /* hooks_vmm.c: exported fd + 1 -> allocation */
#define GPUQ_KIND_GLOBAL ((enum gpuq_kind)19)      /* hooks_modules.c: global's address */

#define GPUQ_CURRENT_DEVICE (-1) /* the device of the calling thread's current context */
#define GPUQ_NO_DEVICE (-2)      /* not device memory: never charged */

struct gpuq_charge {
    int dev; /* config device; -1: nothing charged */
    uint64_t bytes;
};

CUresult gpuq_charge_begin(struct gpuq_charge *charge, int ordinal, uint64_t bytes);

/* Changes the charge to `bytes` once the real size is known: 0, or -1 if that does not fit
 * (the charge is then unchanged). */
int gpuq_charge_resize(struct gpuq_charge *charge, uint64_t bytes);

void gpuq_charge_end(struct gpuq_charge *charge, CUresult result, enum gpuq_kind kind,
                     uint64_t key);

int gpuq_charge_take(struct gpuq_charge *charge, enum gpuq_kind kind, uint64_t key);

void gpuq_charge_settle(const struct gpuq_charge *charge, CUresult result, enum gpuq_kind kind,
                        uint64_t key);

/* The CUDA device of the calling thread's current context. */
CUresult gpuq_current_device(CUdevice *ordinal);

/* The CUDA device of a stream's context (the current context's for the default streams). */
CUresult gpuq_stream_device(CUstream stream, CUdevice *ordinal);

/* What an allocation of `bytes` is counted as: rounded up to round_bytes, and from 2 MiB up to
 * whole 2 MiB pages. */
uint64_t gpuq_charge_rounded(uint64_t bytes);

/* Charges `bytes` (already rounded) on config device `dev`; when that does not fit, asks the
 * memory pools what they still hold (gpuq_pools_settle) and tries once more. 0, or -1. */
int gpuq_charge_bytes(unsigned dev, uint64_t bytes);

/* The config device of CUDA device `ordinal` to charge, or -1 when nothing is to be charged
 * there; *refuse is set when the process has failed closed. */
int gpuq_charge_device(int ordinal, int *refuse);

#endif
