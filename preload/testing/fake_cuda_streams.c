/* The fake libcuda.so.1: streams and memory pools, behaving like the driver where the quota
 * library's accounting depends on it:
 *
 * - work enqueued on a stream runs only when the stream (cuStreamSynchronize) or its context
 *   (cuCtxSynchronize) is synchronized: a stream-ordered free stays pending until then. The
 *   default streams (NULL, legacy, per-thread) are one stream per device here.
 * - an allocation from a pool first runs the frees pending on its own stream for that pool (the
 *   driver reuses memory freed earlier in the same stream), then reuses what the pool holds free,
 *   and only then grows the pool (its reserved memory) by what is missing.
 * - freed memory stays in the pool (reserved) until a synchronization finds the pool above its
 *   release threshold (CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, default 0), cuMemPoolTrimTo, or
 *   cuMemPoolDestroy.
 *
 * Pool allocations are recorded in the fake's allocation map under a kind of their own. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cuda.h"

#define KIND_POOLED ((enum gpuq_kind)100)
#define MAX_POOLS 64
#define MAX_STREAMS 256

struct CUmemPoolHandle_st {
    int in_use, device, destroyed;
    uint64_t reserved, used, threshold;
};

struct pending_free {
    CUdeviceptr dptr;
};

struct CUstream_st {
    int device;
    CUcontext ctx;
    struct pending_free *pending;
    unsigned npending, capacity;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct CUmemPoolHandle_st pools[MAX_POOLS]; /* the first FAKE_MAX_DEVICES: default pools */
static CUmemoryPool current_pool[FAKE_MAX_DEVICES];
static struct CUstream_st default_streams[FAKE_MAX_DEVICES];
static struct CUstream_st *streams[MAX_STREAMS];
static unsigned nstreams;

static CUmemoryPool default_pool(int device)
{
    CUmemoryPool pool = &pools[device];
    pool->in_use = 1;
    pool->device = device;
    return pool;
}

static CUmemoryPool pool_of_device(int device)
{
    return current_pool[device] != NULL ? current_pool[device] : default_pool(device);
}

/* The stream a handle means; NULL when there is no context for a default stream. */
static struct CUstream_st *stream_of(CUstream stream)
{
    if (stream != NULL && stream != GPUQ_STREAM_LEGACY && stream != GPUQ_STREAM_PER_THREAD)
        return stream;
    int device;
    if (fake_cuda_current(&device) != CUDA_SUCCESS)
        return NULL;
    default_streams[device].device = device;
    return &default_streams[device];
}

/* Gives back what the pool holds beyond max(used, keep); the caller holds the lock. */
static void shrink(CUmemoryPool pool, uint64_t keep)
{
    uint64_t floor = pool->used > keep ? pool->used : keep;
    if (pool->destroyed)
        floor = pool->used;
    if (pool->reserved > floor) {
        fake_memory_unreserve(pool->device, pool->reserved - floor);
        pool->reserved = floor;
    }
    if (pool->destroyed && pool->used == 0)
        memset(pool, 0, sizeof *pool);
}

/* Runs one free: the memory goes back to its pool. The caller holds the lock. */
static void run_free(CUdeviceptr dptr)
{
    struct gpuq_record record;
    if (!gpuq_map_take(KIND_POOLED, dptr, &record))
        return;
    CUmemoryPool pool = &pools[record.dev];
    pool->used -= record.bytes;
    if (pool->destroyed)
        shrink(pool, 0);
    fake_trace("free ran device=%d bytes=%llu", pool->device, (unsigned long long)record.bytes);
}

/* Runs the stream's pending frees (only those from `pool`, unless NULL). */
static void run_stream(struct CUstream_st *stream, CUmemoryPool pool)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < stream->npending; i++) {
        struct gpuq_record record;
        CUdeviceptr dptr = stream->pending[i].dptr;
        int ours = pool == NULL;
        if (!ours && gpuq_map_take(KIND_POOLED, dptr, &record)) {
            ours = &pools[record.dev] == pool;
            gpuq_map_put(KIND_POOLED, dptr, record);
        }
        if (ours)
            run_free(dptr);
        else
            stream->pending[kept++] = stream->pending[i];
    }
    stream->npending = kept;
}

/* After a synchronization: pools of the device above their threshold give memory back. */
static void release_above_thresholds(int device)
{
    for (int i = 0; i < MAX_POOLS; i++)
        if (pools[i].in_use && pools[i].device == device)
            shrink(&pools[i], pools[i].threshold);
}

static CUresult allocate(const char *call, CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                         CUstream handle)
{
    CUresult result = fake_cuda_ready();
    if (result != CUDA_SUCCESS)
        return result;
    if (dptr == NULL || bytes == 0 || pool == NULL || !pool->in_use || pool->destroyed)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    struct CUstream_st *stream = stream_of(handle);
    if (stream != NULL)
        run_stream(stream, pool);
    uint64_t free_in_pool = pool->reserved - pool->used;
    if (bytes > free_in_pool)
        result = fake_memory_reserve(call, pool->device, bytes - free_in_pool);
    if (result == CUDA_SUCCESS) {
        if (bytes > free_in_pool)
            pool->reserved += bytes - free_in_pool;
        pool->used += bytes;
        *dptr = fake_memory_address(pool->device, bytes);
        if (gpuq_map_put(KIND_POOLED, *dptr, (struct gpuq_record){(int)(pool - pools), bytes}))
            abort();
    }
    pthread_mutex_unlock(&lock);
    fake_trace("%s device=%d bytes=%llu rc=%d", call, pool->device, (unsigned long long)bytes,
               result);
    return result;
}

static CUresult free_async(const char *call, CUdeviceptr dptr, CUstream handle)
{
    CUresult result = fake_cuda_ready();
    if (result != CUDA_SUCCESS)
        return result;
    pthread_mutex_lock(&lock);
    struct gpuq_record record;
    struct CUstream_st *stream = stream_of(handle);
    if (!gpuq_map_take(KIND_POOLED, dptr, &record)) {
        pthread_mutex_unlock(&lock);
        return fake_memory_give(call, GPUQ_KIND_POINTER, dptr);
    }
    gpuq_map_put(KIND_POOLED, dptr, record);
    if (stream == NULL) {
        result = CUDA_ERROR_INVALID_CONTEXT;
    } else {
        if (stream->npending == stream->capacity) {
            stream->capacity = stream->capacity ? stream->capacity * 2 : 16;
            stream->pending = realloc(stream->pending, stream->capacity * sizeof *stream->pending);
            if (stream->pending == NULL)
                abort();
        }
        stream->pending[stream->npending++].dptr = dptr;
    }
    pthread_mutex_unlock(&lock);
    fake_trace("%s enqueued bytes=%llu rc=%d", call, (unsigned long long)record.bytes, result);
    return result;
}

int fake_pool_free_now(CUdeviceptr dptr)
{
    struct gpuq_record record;
    pthread_mutex_lock(&lock);
    int found = gpuq_map_take(KIND_POOLED, dptr, &record);
    if (found) {
        gpuq_map_put(KIND_POOLED, dptr, record);
        run_free(dptr);
    }
    pthread_mutex_unlock(&lock);
    return found;
}

CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    struct CUstream_st *found = stream_of(stream);
    if (found == NULL)
        return fake_cuda_ready() != CUDA_SUCCESS ? CUDA_ERROR_NOT_INITIALIZED
                                                  : CUDA_ERROR_INVALID_CONTEXT;
    return allocate("cuMemAllocAsync", dptr, bytesize, pool_of_device(found->device), stream);
}

CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    struct CUstream_st *found = stream_of(stream);
    if (found == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    return allocate("cuMemAllocAsync_ptsz", dptr, bytesize, pool_of_device(found->device), stream);
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                 CUstream stream)
{
    return allocate("cuMemAllocFromPoolAsync", dptr, bytesize, pool, stream);
}

CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                      CUstream stream)
{
    return allocate("cuMemAllocFromPoolAsync_ptsz", dptr, bytesize, pool, stream);
}

CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream)
{
    return free_async("cuMemFreeAsync", dptr, stream);
}

CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream)
{
    return free_async("cuMemFreeAsync_ptsz", dptr, stream);
}

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult result = fake_cuda_ready();
    if (result == CUDA_SUCCESS && (dev < 0 || dev >= fake_gpu_count))
        result = CUDA_ERROR_INVALID_DEVICE;
    if (result == CUDA_SUCCESS) {
        pthread_mutex_lock(&lock);
        *pool = default_pool(dev);
        pthread_mutex_unlock(&lock);
    }
    return result;
}

CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult result = fake_cuda_ready();
    if (result == CUDA_SUCCESS && (dev < 0 || dev >= fake_gpu_count))
        result = CUDA_ERROR_INVALID_DEVICE;
    if (result == CUDA_SUCCESS) {
        pthread_mutex_lock(&lock);
        *pool = pool_of_device(dev);
        pthread_mutex_unlock(&lock);
    }
    return result;
}

CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= fake_gpu_count || pool == NULL || pool->device != dev)
        return CUDA_ERROR_INVALID_VALUE;
    current_pool[dev] = pool;
    return CUDA_SUCCESS;
}

CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (pool == NULL || props == NULL || props->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
        props->location.id < 0 || props->location.id >= fake_gpu_count)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult result = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&lock);
    for (int i = FAKE_MAX_DEVICES; i < MAX_POOLS; i++)
        if (!pools[i].in_use) {
            pools[i] = (struct CUmemPoolHandle_st){.in_use = 1, .device = props->location.id};
            *pool = &pools[i];
            result = CUDA_SUCCESS;
            break;
        }
    pthread_mutex_unlock(&lock);
    return result;
}

CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    if (pool == NULL || pool < &pools[FAKE_MAX_DEVICES] || pool >= &pools[MAX_POOLS] ||
        !pool->in_use || pool->destroyed)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    for (int device = 0; device < FAKE_MAX_DEVICES; device++)
        if (current_pool[device] == pool)
            current_pool[device] = NULL;
    pool->destroyed = 1;
    shrink(pool, 0);
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t min_bytes_to_keep)
{
    if (pool == NULL || !pool->in_use)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    shrink(pool, min_bytes_to_keep);
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    if (pool == NULL || !pool->in_use || value == NULL || attr != CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    pool->threshold = *(cuuint64_t *)value;
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    if (pool == NULL || !pool->in_use || value == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult result = CUDA_SUCCESS;
    pthread_mutex_lock(&lock);
    if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
        *(cuuint64_t *)value = pool->threshold;
    else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)
        *(cuuint64_t *)value = pool->reserved;
    else if (attr == CU_MEMPOOL_ATTR_USED_MEM_CURRENT)
        *(cuuint64_t *)value = pool->used;
    else
        result = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&lock);
    return result;
}

CUresult cuStreamCreate(CUstream *stream, unsigned int flags)
{
    (void)flags;
    int device;
    CUresult result = fake_cuda_current(&device);
    if (result != CUDA_SUCCESS)
        return result;
    if (stream == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct CUstream_st *made = calloc(1, sizeof *made);
    if (made == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    made->device = device;
    cuCtxGetCurrent(&made->ctx);
    pthread_mutex_lock(&lock);
    if (nstreams == MAX_STREAMS) {
        pthread_mutex_unlock(&lock);
        free(made);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    streams[nstreams++] = made;
    pthread_mutex_unlock(&lock);
    *stream = made;
    return CUDA_SUCCESS;
}

/* Like the driver, work still enqueued is not dropped: it runs when the context is synchronized.
 * The stream object stays (never reused) so that its pending frees can still run. */
CUresult cuStreamDestroy_v2(CUstream stream)
{
    return stream == NULL ? CUDA_ERROR_INVALID_HANDLE : CUDA_SUCCESS;
}

CUresult cuStreamGetCtx(CUstream stream, CUcontext *ctx)
{
    if (ctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (stream == NULL || stream == GPUQ_STREAM_LEGACY || stream == GPUQ_STREAM_PER_THREAD) {
        int device;
        CUresult result = fake_cuda_current(&device);
        if (result == CUDA_SUCCESS)
            cuCtxGetCurrent(ctx);
        return result;
    }
    *ctx = stream->ctx;
    return CUDA_SUCCESS;
}

static CUresult synchronize_stream(CUstream handle)
{
    CUresult result = fake_cuda_ready();
    if (result != CUDA_SUCCESS)
        return result;
    pthread_mutex_lock(&lock);
    struct CUstream_st *stream = stream_of(handle);
    if (stream == NULL) {
        result = CUDA_ERROR_INVALID_CONTEXT;
    } else {
        run_stream(stream, NULL);
        release_above_thresholds(stream->device);
    }
    pthread_mutex_unlock(&lock);
    fake_trace("cuStreamSynchronize rc=%d", result);
    return result;
}

CUresult cuStreamSynchronize(CUstream stream)
{
    return synchronize_stream(stream);
}

CUresult cuStreamSynchronize_ptsz(CUstream stream)
{
    return synchronize_stream(stream);
}

CUresult cuCtxSynchronize(void)
{
    int device;
    CUresult result = fake_cuda_current(&device);
    if (result != CUDA_SUCCESS)
        return result;
    pthread_mutex_lock(&lock);
    default_streams[device].device = device;
    run_stream(&default_streams[device], NULL);
    for (unsigned i = 0; i < nstreams; i++)
        if (streams[i]->device == device)
            run_stream(streams[i], NULL);
    release_above_thresholds(device);
    pthread_mutex_unlock(&lock);
    fake_trace("cuCtxSynchronize rc=0");
    return CUDA_SUCCESS;
}

/* Events are not simulated: any non-NULL event has completed. */
CUresult cuEventSynchronize(CUevent event)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    return event == NULL ? CUDA_ERROR_INVALID_HANDLE : CUDA_SUCCESS;
}

/* A stack of contexts per thread over cuCtxSetCurrent. */
#define CONTEXT_STACK 16
static __thread CUcontext pushed[CONTEXT_STACK];
static __thread int depth;

CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (ctx == NULL || depth == CONTEXT_STACK)
        return CUDA_ERROR_INVALID_VALUE;
    cuCtxGetCurrent(&pushed[depth++]);
    return cuCtxSetCurrent(ctx);
}

CUresult cuCtxPopCurrent_v2(CUcontext *ctx)
{
    if (fake_cuda_ready() != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (depth == 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx != NULL)
        cuCtxGetCurrent(ctx);
    return cuCtxSetCurrent(pushed[--depth]);
}
