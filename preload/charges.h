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

#endif
