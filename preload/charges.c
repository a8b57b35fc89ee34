/* Charges around allocations and frees (charges.h): decides which device an allocation is on,
 * applies round_bytes and the driver's large pages, and keeps the record a free needs. */
#include "charges.h"

#include <pthread.h>

#include "hooks.h"
#include "logging.h"
#include "pools.h"
#include "process.h"
#include "quota.h"

/* Allocations of 2 MiB or more take whole 2 MiB pages: the large page of every GPU since Pascal
 * and the granularity cuMemGetAllocationGranularity reports for VMM. Smaller ones share pages
 * and are counted by round_bytes alone. */
#define LARGE_PAGE (2ull << 20)

CUresult gpuq_current_device(CUdevice *ordinal)
{
    __typeof__(&cuCtxGetDevice) get_device = GPUQ_REAL(cuCtxGetDevice);
    return get_device == NULL ? CUDA_ERROR_NOT_FOUND : get_device(ordinal);
}

static uint64_t round_up(uint64_t bytes, uint64_t unit)
{
    uint64_t up;
    if (unit <= 1)
        return bytes;
    if (__builtin_add_overflow(bytes, unit - 1, &up))
        return UINT64_MAX;
    return up / unit * unit;
}

uint64_t gpuq_charge_rounded(uint64_t bytes)
{
    bytes = round_up(bytes, gpuq_process.config.round_bytes);
    return bytes >= LARGE_PAGE ? round_up(bytes, LARGE_PAGE) : bytes;
}

/* Contexts seen on streams, and their devices: a context's device never changes. */
#define KNOWN_CONTEXTS 64
static struct {
    CUcontext ctx;
    CUdevice ordinal;
} contexts[KNOWN_CONTEXTS];
static unsigned context_count;
static pthread_mutex_t contexts_lock = PTHREAD_MUTEX_INITIALIZER;

static CUresult context_device(CUcontext ctx, CUdevice *ordinal)
{
    unsigned count = __atomic_load_n(&context_count, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < count; i++)
        if (contexts[i].ctx == ctx) {
            *ordinal = contexts[i].ordinal;
            return CUDA_SUCCESS;
        }
    __typeof__(&cuCtxPushCurrent_v2) push = GPUQ_REAL(cuCtxPushCurrent_v2);
    __typeof__(&cuCtxPopCurrent_v2) pop = GPUQ_REAL(cuCtxPopCurrent_v2);
    if (push == NULL || pop == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = push(ctx);
    if (result != CUDA_SUCCESS)
        return result;
    CUcontext popped;
    result = gpuq_current_device(ordinal);
    pop(&popped);
    if (result != CUDA_SUCCESS)
        return result;
    pthread_mutex_lock(&contexts_lock);
    if (context_count < KNOWN_CONTEXTS) {
        contexts[context_count].ctx = ctx;
        contexts[context_count].ordinal = *ordinal;
        __atomic_store_n(&context_count, context_count + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&contexts_lock);
    return CUDA_SUCCESS;
}

CUresult gpuq_stream_device(CUstream stream, CUdevice *ordinal)
{
    if (stream == NULL || stream == GPUQ_STREAM_LEGACY || stream == GPUQ_STREAM_PER_THREAD)
        return gpuq_current_device(ordinal);
    __typeof__(&cuStreamGetCtx) get_ctx = GPUQ_REAL(cuStreamGetCtx);
    CUcontext ctx;
    if (get_ctx == NULL || get_ctx(stream, &ctx) != CUDA_SUCCESS)
        return gpuq_current_device(ordinal);
    return context_device(ctx, ordinal);
}

int gpuq_charge_bytes(unsigned dev, uint64_t bytes)
{
    if (gpuq_quota_charge(dev, bytes) == 0)
        return 0;
    /* Memory pools may have given memory back since we last asked: ask, then try once more. */
    return gpuq_pools_settle() && gpuq_quota_charge(dev, bytes) == 0 ? 0 : -1;
}

int gpuq_charge_device(int ordinal, int *refuse)
{
    *refuse = 0;
    if (ordinal == GPUQ_NO_DEVICE)
        return -1;
    enum gpuq_mode mode = gpuq_process_mode();
    *refuse = mode == GPUQ_MODE_FAILED_CLOSED;
    if (mode != GPUQ_MODE_ENFORCING)
        return -1;
    if (ordinal == GPUQ_CURRENT_DEVICE) {
        CUdevice current;
        if (gpuq_current_device(&current) != CUDA_SUCCESS)
            return -1; /* no context: the driver refuses the allocation itself */
        ordinal = current;
    }
    int dev = gpuq_process_device_of(ordinal);
    if (dev < 0)
        *refuse = gpuq_process_mode() == GPUQ_MODE_FAILED_CLOSED;
    return dev;
}

CUresult gpuq_charge_begin(struct gpuq_charge *charge, int ordinal, uint64_t bytes)
{
    charge->dev = -1;
    charge->bytes = 0;
    if (bytes == 0 && ordinal != GPUQ_NO_DEVICE) /* nothing to limit; the driver refuses it */
        return gpuq_process_mode() == GPUQ_MODE_FAILED_CLOSED ? CUDA_ERROR_OUT_OF_MEMORY
                                                                : CUDA_SUCCESS;
    int refuse, dev = gpuq_charge_device(ordinal, &refuse);
    if (dev < 0)
        return refuse ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    uint64_t charged = gpuq_charge_rounded(bytes);
    if (gpuq_charge_bytes((unsigned)dev, charged) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    charge->dev = dev;
    charge->bytes = charged;
    return CUDA_SUCCESS;
}

int gpuq_charge_resize(struct gpuq_charge *charge, uint64_t bytes)
{
    if (charge->dev < 0)
        return 0;
    uint64_t wanted = gpuq_charge_rounded(bytes);
    if (wanted > charge->bytes && gpuq_charge_bytes((unsigned)charge->dev,
                                                   wanted - charge->bytes) != 0)
        return -1;
    if (wanted < charge->bytes)
        gpuq_quota_release((unsigned)charge->dev, charge->bytes - wanted);
    charge->bytes = wanted;
    return 0;
}

void gpuq_charge_end(struct gpuq_charge *charge, CUresult result, enum gpuq_kind kind,
                     uint64_t key)
{
    static int untracked_once;
    if (charge->dev < 0)
        return;
    if (result != CUDA_SUCCESS) {
        gpuq_quota_release((unsigned)charge->dev, charge->bytes);
        return;
    }
    struct gpuq_record record = {charge->dev, charge->bytes};
    if (gpuq_map_put(kind, key, record) != 0) /* stays charged until the process exits */
        gpuq_log_once(&untracked_once, GPUQ_LOG_WARN,
                      "cannot record an allocation (out of memory); it stays counted until "
                      "this process exits");
}

int gpuq_charge_take(struct gpuq_charge *charge, enum gpuq_kind kind, uint64_t key)
{
    if (gpuq_process_mode() != GPUQ_MODE_ENFORCING)
        return 0;
    struct gpuq_record record;
    if (!gpuq_map_take(kind, key, &record))
        return 0;
    charge->dev = record.dev;
    charge->bytes = record.bytes;
    return 1;
}

void gpuq_charge_settle(const struct gpuq_charge *charge, CUresult result, enum gpuq_kind kind,
                        uint64_t key)
{
    if (result == CUDA_SUCCESS) {
        gpuq_quota_release((unsigned)charge->dev, charge->bytes);
        return;
    }
    /* The driver kept it: so do we. */
    struct gpuq_record record = {charge->dev, charge->bytes};
    gpuq_map_put(kind, key, record);
}
