/* Charges around allocations and frees (charges.h): decides which device an allocation is on,
 * applies round_bytes, and keeps the record a free needs. */
#include "charges.h"

#include "hooks.h"
#include "logging.h"
#include "process.h"
#include "quota.h"

CUresult gpuq_current_device(CUdevice *ordinal)
{
    __typeof__(&cuCtxGetDevice) get_device = GPUQ_REAL(cuCtxGetDevice);
    return get_device == NULL ? CUDA_ERROR_NOT_FOUND : get_device(ordinal);
}

static uint64_t rounded(uint64_t bytes)
{
    uint64_t unit = gpuq_process.config.round_bytes, up;
    if (unit <= 1)
        return bytes;
    if (__builtin_add_overflow(bytes, unit - 1, &up))
        return UINT64_MAX;
    return up / unit * unit;
}

CUresult gpuq_charge_begin(struct gpuq_charge *charge, int ordinal, uint64_t bytes)
{
    charge->dev = -1;
    charge->bytes = 0;
    if (ordinal == GPUQ_NO_DEVICE)
        return CUDA_SUCCESS;
    enum gpuq_mode mode = gpuq_process_mode();
    if (mode == GPUQ_MODE_FAILED_CLOSED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (mode != GPUQ_MODE_ENFORCING || bytes == 0)
        return CUDA_SUCCESS; /* nothing to limit; a zero-byte request fails in the driver */
    if (ordinal == GPUQ_CURRENT_DEVICE) {
        CUdevice current;
        if (gpuq_current_device(&current) != CUDA_SUCCESS)
            return CUDA_SUCCESS; /* no context: the driver refuses the allocation itself */
        ordinal = current;
    }
    int dev = gpuq_process_device_of(ordinal);
    if (dev < 0)
        return gpuq_process_mode() == GPUQ_MODE_FAILED_CLOSED ? CUDA_ERROR_OUT_OF_MEMORY
                                                                : CUDA_SUCCESS;
    uint64_t charged = rounded(bytes);
    if (gpuq_quota_charge((unsigned)dev, charged) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    charge->dev = dev;
    charge->bytes = charged;
    return CUDA_SUCCESS;
}

int gpuq_charge_resize(struct gpuq_charge *charge, uint64_t bytes)
{
    if (charge->dev < 0)
        return 0;
    uint64_t wanted = rounded(bytes);
    if (wanted > charge->bytes && gpuq_quota_charge((unsigned)charge->dev,
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
