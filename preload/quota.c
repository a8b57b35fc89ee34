/* Charging against the limits of the claims (quota.h). A charge, under its claim's lock: check
 * that the state file is intact, compare the header's usage with the limit, then add to it and to
 * our slot (or, refused, count the refusal). A release needs no lock: subtract from usage[], then
 * from our slot (the driver has freed the memory already, so usage[] stays at or above what is
 * really allocated, and a recount racing with it can only count too much). No system call either
 * way, and one shared cache line (the lock word's, which usage[] shares) plus the never-written
 * magic. Dead processes are reclaimed, and usage[] recounted from the slots, only when a charge
 * would not fit and before reporting, since only then can leftovers matter. */
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

/* Takes the claim's lock and checks the file: 0, or -1 (the process failed closed, or the lock's
 * holder is stuck) with nothing held. */
static int lock_intact(struct gpuq_state *state)
{
    if (gpuq_lock(state) != 0)
        return -1;
    if (!gpuq_state_damaged(state))
        return 0;
    gpuq_unlock(state);
    char why[256];
    gpuq_state_describe_damage(state, why, sizeof why);
    gpuq_process_fail_closed(state->path, why);
    return -1;
}

int gpuq_quota_charge(unsigned dev, uint64_t bytes)
{
    static int denied_once;
    unsigned local;
    struct gpuq_claim *claim = gpuq_process_claim_of(dev, &local);
    struct gpuq_state *state = &claim->state;
    uint64_t limit = claim->config.memory_bytes[local];
    if (lock_intact(state) != 0)
        return -1;
    uint64_t charge = bytes;
    if (!gpuq_process.context_charged[dev] &&
        __builtin_add_overflow(charge, claim->config.context_reserve_bytes, &charge))
        charge = UINT64_MAX;
    uint64_t usage = usage_of(state, local);
    if (!fits(usage, charge, limit)) {
        gpuq_state_recount(state);
        usage = usage_of(state, local);
    }
    int granted = fits(usage, charge, limit);
    if (granted) { /* usage first: if we die in between, it is too high, never too low */
        __atomic_fetch_add(&state->header->usage[local], charge, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&state->used[local], charge, __ATOMIC_SEQ_CST);
        gpuq_process.context_charged[dev] = 1;
    } else {
        __atomic_fetch_add(&state->header->refused[local], 1, __ATOMIC_RELAXED);
    }
    gpuq_unlock(state);
    if (__atomic_load_n(&state->damaged, __ATOMIC_RELAXED)) { /* cut short under our updates */
        char why[256];
        gpuq_state_describe_damage(state, why, sizeof why);
        gpuq_process_fail_closed(state->path, why);
        return -1;
    }
    if (!granted)
        gpuq_log_once(&denied_once, GPUQ_LOG_WARN,
                      "%s: allocation of %llu bytes refused with CUDA_ERROR_OUT_OF_MEMORY: the "
                      "claim uses %llu of its %llu bytes (further refusals are not logged)",
                      claim->config.uuid_text[local], (unsigned long long)charge,
                      (unsigned long long)usage, (unsigned long long)limit);
    return granted ? 0 : -1;
}

void gpuq_quota_release(unsigned dev, uint64_t bytes)
{
    unsigned local;
    const struct gpuq_state *state = &gpuq_process_claim_of(dev, &local)->state;
    __atomic_fetch_sub(&state->header->usage[local], bytes, __ATOMIC_SEQ_CST);
    __atomic_fetch_sub(&state->used[local], bytes, __ATOMIC_SEQ_CST);
}

void gpuq_quota_report(unsigned dev, uint64_t *free_bytes, uint64_t *total_bytes,
                       uint64_t *used_bytes)
{
    unsigned local;
    struct gpuq_claim *claim = gpuq_process_claim_of(dev, &local);
    struct gpuq_state *state = &claim->state;
    uint64_t limit = claim->config.memory_bytes[local], usage = limit;
    if (lock_intact(state) == 0) {
        gpuq_state_recount(state);
        usage = usage_of(state, local);
        gpuq_unlock(state);
    } /* else: report nothing free, as allocations fail */
    uint64_t room = usage < limit ? limit - usage : 0;
    if (*total_bytes > limit)
        *total_bytes = limit;
    if (*free_bytes > room)
        *free_bytes = room;
    if (used_bytes != NULL)
        *used_bytes = usage < *total_bytes ? usage : *total_bytes;
}
