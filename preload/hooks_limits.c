/* cuCtxSetLimit: the per-thread stack, the device malloc heap and the printf buffer are device
 * memory the driver reserves for the context. The defaults are in the context reserve
 * (context_reserve_bytes); raising a limit past its default is charged on the current context's
 * device, conservatively: the heap and the buffer at their size, the stack at its size times every
 * thread the device can hold at once (multiprocessors x threads per multiprocessor). Lowering it
 * again releases the charge, down to the default. */
#include <pthread.h>
#include <string.h>

#include "charges.h"
#include "hooks.h"
#include "process.h"
#include "quota.h"

#define LIMITS 3 /* CU_LIMIT_STACK_SIZE, CU_LIMIT_PRINTF_FIFO_SIZE, CU_LIMIT_MALLOC_HEAP_SIZE */
#define DEFAULT_STACK 1024ull
#define DEFAULT_PRINTF_FIFO (1ull << 20)
#define DEFAULT_MALLOC_HEAP (8ull << 20)
#define FALLBACK_THREADS (148ull * 2048) /* when the driver does not say: a large GPU's */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t charged[GPUQ_MAX_DEVICES][LIMITS];
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void fork_child(void) /* the child has no context, and a slot of its own */
{
    memset(charged, 0, sizeof charged);
    pthread_mutex_unlock(&lock);
}

static void register_fork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static uint64_t resident_threads(CUdevice ordinal)
{
    __typeof__(&cuDeviceGetAttribute) attribute = GPUQ_REAL(cuDeviceGetAttribute);
    int processors = 0, threads = 0;
    if (attribute == NULL ||
        attribute(&processors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, ordinal) != CUDA_SUCCESS ||
        attribute(&threads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, ordinal) !=
            CUDA_SUCCESS ||
        processors <= 0 || threads <= 0)
        return FALLBACK_THREADS;
    return (uint64_t)processors * (uint64_t)threads;
}

static uint64_t above(uint64_t value, uint64_t base)
{
    return value > base ? value - base : 0;
}

/* What the limit costs beyond its default. */
static uint64_t limit_bytes(CUlimit limit, size_t value, CUdevice ordinal)
{
    uint64_t bytes;
    switch (limit) {
    case CU_LIMIT_STACK_SIZE:
        return __builtin_mul_overflow(above(value, DEFAULT_STACK), resident_threads(ordinal),
                                      &bytes)
                   ? UINT64_MAX
                   : bytes;
    case CU_LIMIT_PRINTF_FIFO_SIZE:
        return above(value, DEFAULT_PRINTF_FIFO);
    default:
        return above(value, DEFAULT_MALLOC_HEAP);
    }
}

GPUQ_EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    __typeof__(&cuCtxSetLimit) real = GPUQ_REAL(cuCtxSetLimit);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    if (limit < 0 || limit >= LIMITS)
        return real(limit, value);
    int refuse, dev = gpuq_charge_device(GPUQ_CURRENT_DEVICE, &refuse);
    CUdevice ordinal;
    if (dev < 0 || gpuq_current_device(&ordinal) != CUDA_SUCCESS)
        return refuse ? CUDA_ERROR_OUT_OF_MEMORY : real(limit, value);
    uint64_t wanted = gpuq_charge_rounded(limit_bytes(limit, value, ordinal));
    pthread_once(&fork_once, register_fork);
    pthread_mutex_lock(&lock);
    uint64_t old = charged[dev][limit];
    if (wanted > old && gpuq_charge_bytes((unsigned)dev, wanted - old) != 0) {
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult result = real(limit, value);
    if (result == CUDA_SUCCESS) {
        if (wanted < old)
            gpuq_quota_release((unsigned)dev, old - wanted);
        charged[dev][limit] = wanted;
    } else if (wanted > old) {
        gpuq_quota_release((unsigned)dev, wanted - old);
    }
    pthread_mutex_unlock(&lock);
    return result;
}
