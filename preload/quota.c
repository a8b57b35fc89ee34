/* Charging against the claim's limit (quota.h). A charge, under the claim's lock: compare the
 * header's usage with the limit, then add to it and to our slot. A release needs no lock: subtract
 * from usage[], then from our slot (the driver has freed the memory already, so usage[] stays at or
 * above what is really allocated, and a recount racing with it can only count too much). No system
 * call either way, and one shared cache line (the lock word's, which usage[] shares). Dead
 * processes are reclaimed, and usage[] recounted from the slots, only when a charge would not fit
 * and before reporting, since only then can leftovers matter. */
#include "quota.h"

#include "logging.h"
#include "process.h"
#include "sharedlock.h"

static int fits(uint64_t usage, uint64_t bytes, uint64_t limit)
{
    return bytes <= limit && usage <= limit - bytes;
}

static uint64_t usage_of(const struct gpuq_state *state, unsigned dev)
{
    return __atomic_load_n(&state->header->usage[dev], __ATOMIC_RELAXED);
}

int gpuq_quota_charge(unsigned dev, uint64_t bytes)
{
    static int denied_once;
    const struct gpuq_state *state = &gpuq_process.state;
    uint64_t limit = gpuq_process.config.memory_bytes[dev];
    gpuq_lock(state);
    uint64_t charge = bytes;
    if (!gpuq_process.context_charged[dev] &&
        __builtin_add_overflow(charge, gpuq_process.config.context_reserve_bytes, &charge))
        charge = UINT64_MAX;
    uint64_t usage = usage_of(state, dev);
    if (!fits(usage, charge, limit)) {
        gpuq_state_recount(state);
        usage = usage_of(state, dev);
    }
    int granted = fits(usage, charge, limit);
    if (granted) { /* usage first: if we die in between, it is too high, never too low */
        __atomic_fetch_add(&state->header->usage[dev], charge, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&state->used[dev], charge, __ATOMIC_SEQ_CST);
        gpuq_process.context_charged[dev] = 1;
    }
    gpuq_unlock(state);
    if (!granted)
        gpuq_log_once(&denied_once, GPUQ_LOG_WARN,
                      "%s: allocation of %llu bytes refused with CUDA_ERROR_OUT_OF_MEMORY: the "
                      "claim uses %llu of its %llu bytes (further refusals are not logged)",
                      gpuq_process.config.uuid_text[dev], (unsigned long long)charge,
                      (unsigned long long)usage, (unsigned long long)limit);
    return granted ? 0 : -1;
}

void gpuq_quota_release(unsigned dev, uint64_t bytes)
{
    const struct gpuq_state *state = &gpuq_process.state;
    __atomic_fetch_sub(&state->header->usage[dev], bytes, __ATOMIC_SEQ_CST);
    __atomic_fetch_sub(&state->used[dev], bytes, __ATOMIC_SEQ_CST);
}

void gpuq_quota_report(unsigned dev, uint64_t *free_bytes, uint64_t *total_bytes,
                       uint64_t *used_bytes)
{
    const struct gpuq_state *state = &gpuq_process.state;
    uint64_t limit = gpuq_process.config.memory_bytes[dev];
    gpuq_lock(state);
    gpuq_state_recount(state);
    uint64_t usage = usage_of(state, dev);
    gpuq_unlock(state);
    uint64_t room = usage < limit ? limit - usage : 0;
    if (*total_bytes > limit)
        *total_bytes = limit;
    if (*free_bytes > room)
        *free_bytes = room;
    if (used_bytes != NULL)
        *used_bytes = usage < *total_bytes ? usage : *total_bytes;
}
