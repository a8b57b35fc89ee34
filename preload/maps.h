/* What each live allocation was charged: (kind, pointer or handle) -> (device, bytes), in a
 * sharded open-addressing hash table, so a free costs the same with 10 or 10,000 allocations
 * live. Shared with the fake libcuda, which keeps its own table. */
#ifndef GPUQ_MAPS_H
#define GPUQ_MAPS_H

#include <stdint.h>

enum gpuq_kind {
    GPUQ_KIND_POINTER = 1, /* CUdeviceptr: cuMemAlloc*, async and pool allocations */
    GPUQ_KIND_VMM = 2,     /* CUmemGenericAllocationHandle: cuMemCreate */
    GPUQ_KIND_ARRAY = 3,   /* CUarray */
};

struct gpuq_record {
    int dev;
    uint64_t bytes;
};

/* 0, or -1 when the key is 0 or memory ran out. */
int gpuq_map_put(enum gpuq_kind kind, uint64_t key, struct gpuq_record record);

/* Removes the key's record into `record`: 1 if it was there, else 0. */
int gpuq_map_take(enum gpuq_kind kind, uint64_t key, struct gpuq_record *record);

void gpuq_map_clear(void);

/* pthread_atfork handlers: the child gets consistent (unlocked) shards. */
void gpuq_map_fork_prepare(void);
void gpuq_map_fork_release(void);

#endif
