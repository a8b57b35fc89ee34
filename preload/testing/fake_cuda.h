/* Internals shared by the fake libcuda.so.1's files: initialization, the current context's device,
 * and simulated device memory. */
#ifndef FAKE_CUDA_H
#define FAKE_CUDA_H

#include <stdint.h>

#include "../cuda_abi.h"
#include "../maps.h"
#include "fake_gpus.h"

/* CUDA_ERROR_NOT_INITIALIZED before cuInit, CUDA_SUCCESS after. */
CUresult fake_cuda_ready(void);

/* The calling thread's current context's device: CUDA_ERROR_INVALID_CONTEXT without one. */
CUresult fake_cuda_current(int *device);

/* Takes `bytes` of device memory under `kind`; the key (an address, or for handles a counter) is
 * returned in *key. OUT_OF_MEMORY when the device is full or FAKE_FAIL_ALLOC_NTH says so. */
CUresult fake_memory_take(const char *call, int device, uint64_t bytes, enum gpuq_kind kind,
                          unsigned long long *key);

/* Gives back what `key` holds: CUDA_ERROR_INVALID_VALUE when it is unknown. */
CUresult fake_memory_give(const char *call, enum gpuq_kind kind, uint64_t key);

uint64_t fake_memory_used(int device);

/* Device memory held without a record of its own (pools, VMM, limits, graphs): OUT_OF_MEMORY
 * when the device is full or FAKE_FAIL_ALLOC_NTH says so. */
CUresult fake_memory_reserve(const char *call, int device, uint64_t bytes);
void fake_memory_unreserve(int device, uint64_t bytes);

/* A fresh device address for `bytes` on `device`. */
uint64_t fake_memory_address(int device, uint64_t bytes);

/* cuMemFree_v2 of a pool allocation (it goes back to its pool at once): 1 if `dptr` was one. */
int fake_pool_free_now(CUdeviceptr dptr);

#endif
