/* This process's claim (process.h): loading, failing closed, fork, and CUDA device numbering. */
#define _GNU_SOURCE
#include "process.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hooks.h"
#include "logging.h"
#include "maps.h"
#include "sharedlock.h"

struct gpuq_process gpuq_process;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

void gpuq_process_fail_closed(const char *file, const char *why)
{
    static int once;
    gpuq_log_once(&once, GPUQ_LOG_ERROR,
                  "%s: %s; GPU memory allocations in this process fail with "
                  "CUDA_ERROR_OUT_OF_MEMORY",
                  file, why);
    __atomic_store_n(&gpuq_process.mode, GPUQ_MODE_FAILED_CLOSED, __ATOMIC_RELEASE);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&init_lock);
    gpuq_map_fork_prepare();
}

static void fork_parent(void)
{
    gpuq_map_fork_release();
    pthread_mutex_unlock(&init_lock);
}

/* The child must not pass for us: it lets go of our process byte at once (so that we count as
 * dead when we die, and a claim's lock we die holding is taken over), but keeps our charge byte
 * until it execs or exits, because it keeps our driver descriptors and with them our device
 * memory just as long (statefile.h). It claims slots of its own on first use. */
static void fork_child(void)
{
    gpuq_map_fork_release();
    if (gpuq_process.mode == GPUQ_MODE_ENFORCING) {
        for (unsigned c = 0; c < gpuq_process.nclaims; c++)
            gpuq_state_fork_child(&gpuq_process.claims[c].state);
        __atomic_store_n(&gpuq_process.reattach, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_lock);
}

/* The merged view of every claim's devices (process.h). */
static void merge(void)
{
    struct gpuq_config *merged = &gpuq_process.config;
    memset(merged, 0, sizeof *merged);
    snprintf(merged->path, sizeof merged->path, "%s", GPUQ_CLAIMS_ROOT);
    merged->round_bytes = 1;
    for (unsigned c = 0; c < gpuq_process.nclaims; c++) {
        const struct gpuq_config *config = &gpuq_process.claims[c].config;
        for (unsigned dev = 0; dev < config->ndev; dev++, merged->ndev++) {
            merged->uuid[merged->ndev] = config->uuid[dev];
            memcpy(merged->uuid_text[merged->ndev], config->uuid_text[dev],
                   sizeof merged->uuid_text[0]);
            merged->memory_bytes[merged->ndev] = config->memory_bytes[dev];
            gpuq_process.dev_claim[merged->ndev] = (unsigned char)c;
        }
        if (config->round_bytes > merged->round_bytes)
            merged->round_bytes = config->round_bytes;
    }
}

static int attach_all(void)
{
    char why[512];
    for (unsigned c = 0; c < gpuq_process.nclaims; c++) {
        struct gpuq_claim *claim = &gpuq_process.claims[c];
        if (gpuq_state_attach(&claim->state, &claim->config, why, sizeof why) == 0) {
            gpuq_lock_clear_stale(&claim->state);
            continue;
        }
        while (c-- > 0)
            gpuq_state_detach(&gpuq_process.claims[c].state);
        gpuq_process_fail_closed(claim->config.state_file, why);
        return -1;
    }
    return 0;
}

static void load_locked(void)
{
    char file[PATH_MAX], why[512];
    int found = gpuq_claims_find(gpuq_process.claims, &gpuq_process.nclaims, file, sizeof file,
                                 why, sizeof why);
    if (found > 0) {
        gpuq_log(GPUQ_LOG_DEBUG, "%s does not exist: no quota in this process",
                 GPUQ_CLAIMS_ROOT);
        __atomic_store_n(&gpuq_process.mode, GPUQ_MODE_INERT, __ATOMIC_RELEASE);
        return;
    }
    if (found < 0) {
        gpuq_process_fail_closed(file, why);
        return;
    }
    if (attach_all() != 0)
        return;
    merge();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    gpuq_log(GPUQ_LOG_DEBUG, "%s: enforcing %u device limit(s) of %u claim(s)", GPUQ_CLAIMS_ROOT,
             gpuq_process.config.ndev, gpuq_process.nclaims);
    __atomic_store_n(&gpuq_process.mode, GPUQ_MODE_ENFORCING, __ATOMIC_RELEASE);
}

static void reattach_locked(void)
{
    char why[512];
    __atomic_store_n(&gpuq_process.reattach, 0, __ATOMIC_RELAXED);
    gpuq_map_clear(); /* the parent's allocations are not ours to free */
    memset(gpuq_process.context_charged, 0, sizeof gpuq_process.context_charged);
    for (unsigned c = 0; c < gpuq_process.nclaims; c++) {
        struct gpuq_state *state = &gpuq_process.claims[c].state;
        if (gpuq_state_reattach(state, why, sizeof why) != 0) {
            gpuq_process_fail_closed(state->path, why);
            return;
        }
        gpuq_lock_clear_stale(state);
    }
}

enum gpuq_mode gpuq_process_mode(void)
{
    int mode = __atomic_load_n(&gpuq_process.mode, __ATOMIC_ACQUIRE);
    if (mode != GPUQ_MODE_UNSET && !__atomic_load_n(&gpuq_process.reattach, __ATOMIC_ACQUIRE))
        return (enum gpuq_mode)mode;
    pthread_mutex_lock(&init_lock);
    if (gpuq_process.mode == GPUQ_MODE_UNSET)
        load_locked();
    else if (gpuq_process.reattach)
        reattach_locked();
    pthread_mutex_unlock(&init_lock);
    return (enum gpuq_mode)__atomic_load_n(&gpuq_process.mode, __ATOMIC_ACQUIRE);
}

/* 0 when mapped; 1 when CUDA is not initialized yet; -1 when failed closed. */
static int map_ordinals_locked(void)
{
    __typeof__(&cuDeviceGetCount) get_count = GPUQ_REAL(cuDeviceGetCount);
    __typeof__(&cuDeviceGetUuid_v2) get_uuid = GPUQ_REAL(cuDeviceGetUuid_v2);
    int count = 0;
    if (get_count == NULL || get_uuid == NULL) {
        gpuq_process_fail_closed(gpuq_process.config.path,
                                 "the driver lacks cuDeviceGetCount or cuDeviceGetUuid_v2");
        return -1;
    }
    CUresult result = get_count(&count);
    if (result != CUDA_SUCCESS)
        return 1;
    for (int ordinal = 0; ordinal < GPUQ_MAX_ORDINALS; ordinal++) {
        gpuq_process.ordinal_dev[ordinal] = GPUQ_UNLIMITED;
        if (ordinal >= count)
            continue;
        gpuq_uuid uuid;
        CUuuid cu_uuid;
        result = get_uuid(&cu_uuid, ordinal);
        if (result != CUDA_SUCCESS) {
            char why[128];
            snprintf(why, sizeof why, "cannot read the UUID of CUDA device %d (error %d)",
                     ordinal, result);
            gpuq_process_fail_closed(gpuq_process.config.path, why);
            return -1;
        }
        memcpy(uuid.bytes, cu_uuid.bytes, sizeof uuid.bytes);
        gpuq_process.ordinal_dev[ordinal] = gpuq_config_find(&gpuq_process.config, &uuid);
    }
    __atomic_store_n(&gpuq_process.ordinals_mapped, 1, __ATOMIC_RELEASE);
    return 0;
}

int gpuq_process_device_of(CUdevice ordinal)
{
    if (!__atomic_load_n(&gpuq_process.ordinals_mapped, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&init_lock);
        int mapped = gpuq_process.ordinals_mapped ? 0 : map_ordinals_locked();
        pthread_mutex_unlock(&init_lock);
        if (mapped != 0)
            return GPUQ_UNKNOWN;
    }
    if (ordinal < 0 || ordinal >= GPUQ_MAX_ORDINALS)
        return GPUQ_UNLIMITED;
    return gpuq_process.ordinal_dev[ordinal];
}
