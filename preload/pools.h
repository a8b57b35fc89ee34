/* Stream-ordered allocations and memory pools (cuMemAllocAsync, cuMemAllocFromPoolAsync,
 * cuMemFreeAsync, graph allocations made by stream capture).
 *
 * A pool keeps what is freed into it: the memory stays the pool's until the driver gives it back,
 * at a synchronization above the pool's release threshold, on cuMemPoolTrimTo, or when the pool
 * is destroyed. So a pool's charge is everything it may hold, in three parts:
 *
 *   live     allocated and not yet freed;
 *   pending  freed on a stream whose work may not have run yet (per stream): the driver reuses it
 *            only for later allocations on the same stream;
 *   cached   freed and done (that stream or its context was synchronized): any allocation from
 *            the pool reuses it.
 *
 * An allocation is charged only for what cached memory and its own stream's pending memory do not
 * cover. The charge comes down only when the driver says the pool holds less
 * (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), asked after synchronizations, trims, and before an
 * allocation would be refused; never below live + pending. A stream-ordered free of memory that
 * came from no pool (cuMemAlloc_v2) is pending likewise, and released once its stream or context
 * is synchronized. */
#ifndef GPUQ_POOLS_H
#define GPUQ_POOLS_H

#include <stdint.h>

#include "cuda_abi.h"

struct gpuq_pooled {
    int account; /* -1: nothing charged */
    uint64_t bytes, reused_cached, reused_pending, charged;
    uint64_t stream;
};

/* Before a stream-ordered allocation of `bytes` from `pool` (NULL: the current pool of the
 * stream's device) on `stream`; `ptsz` tells which default stream NULL means. */
CUresult gpuq_pooled_begin(struct gpuq_pooled *pooled, CUmemoryPool pool, CUstream stream,
                           int ptsz, uint64_t bytes);
void gpuq_pooled_end(struct gpuq_pooled *pooled, CUresult result, CUdeviceptr dptr);

/* A free of `dptr` on `stream` (enqueued), or right away (cuMemFree_v2: stream_ordered 0):
 * returns 1 and fills *key when we know the pointer, so that gpuq_pool_freed can finish. */
struct gpuq_pool_free {
    uint64_t key;
    int account, dev;
    uint64_t bytes;
};
int gpuq_pool_take(struct gpuq_pool_free *freeing, CUdeviceptr dptr);
void gpuq_pool_freed(const struct gpuq_pool_free *freeing, CUresult result, CUstream stream,
                     int ptsz, int stream_ordered);

/* A plain allocation (cuMemAlloc_v2's record, device `dev`, `bytes` charged) freed on a stream. */
void gpuq_pool_plain_freed(int dev, uint64_t bytes, CUstream stream, int ptsz);

/* After cuMemPoolCreate: remember the pool's device (a device location) or that it holds no
 * device memory. */
void gpuq_pool_created(CUmemoryPool pool, const CUmemPoolProps *props);
void gpuq_pool_destroyed(CUmemoryPool pool);

/* After a synchronization: `stream` (ptsz as above) has run everything enqueued so far; with
 * `whole_device` >= 0, every stream of that CUDA device has. Then asks the pools concerned what
 * they still hold. */
void gpuq_pools_synchronized(CUstream stream, int ptsz, int whole_device);

/* Asks every pool (or only `pool`) what it still holds and releases the rest of its charge.
 * Returns whether anything was released. */
int gpuq_pools_settle(void);
void gpuq_pool_settle(CUmemoryPool pool);

#endif
