/* This process's claim (process.h): loading, failing closed, fork, and CUDA device numbering. */
#define _GNU_SOURCE
#include "process.h"

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

/* The child shares our open file description, hence our slot lock: drop the descriptor now (so
 * that our slot dies with us even if the child lives on) and claim a slot on first use. */
static void fork_child(void)
{
    gpuq_map_fork_release();
    if (gpuq_process.mode == GPUQ_MODE_ENFORCING && gpuq_process.state.fd >= 0) {
        close(gpuq_process.state.fd);
        gpuq_process.state.fd = -1;
        __atomic_store_n(&gpuq_process.reattach, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_lock);
}

static void load_locked(void)
{
    char why[512];
    const char *path = getenv("GPUQ_CONFIG");
    if (path == NULL || *path == '\0') {
        gpuq_log(GPUQ_LOG_DEBUG, "GPUQ_CONFIG is not set: no quota in this process");
        __atomic_store_n(&gpuq_process.mode, GPUQ_MODE_INERT, __ATOMIC_RELEASE);
        return;
    }
    if (gpuq_config_load(path, &gpuq_process.config, why, sizeof why) != 0) {
        gpuq_process_fail_closed(path, why);
        return;
    }
    if (gpuq_state_attach(&gpuq_process.state, &gpuq_process.config, why, sizeof why) != 0) {
        gpuq_process_fail_closed(gpuq_process.config.state_file, why);
        return;
    }
    gpuq_lock_clear_stale(&gpuq_process.state);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    gpuq_log(GPUQ_LOG_DEBUG, "%s: enforcing %u device limit(s), process slot %u", path,
             gpuq_process.config.ndev, gpuq_process.state.slot);
    __atomic_store_n(&gpuq_process.mode, GPUQ_MODE_ENFORCING, __ATOMIC_RELEASE);
}

static void reattach_locked(void)
{
    char why[512];
    __atomic_store_n(&gpuq_process.reattach, 0, __ATOMIC_RELAXED);
    gpuq_map_clear(); /* the parent's allocations are not ours to free */
    memset(gpuq_process.context_charged, 0, sizeof gpuq_process.context_charged);
    if (gpuq_state_reattach(&gpuq_process.state, why, sizeof why) != 0)
        gpuq_process_fail_closed(gpuq_process.state.path, why);
    else
        gpuq_lock_clear_stale(&gpuq_process.state);
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
