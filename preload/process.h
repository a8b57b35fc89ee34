/* This process's view of its claim: decided once (again in a forked child), used by every hook.
 *
 *   GPUQ_CONFIG unset            -> inert: every call passes through unchanged
 *   config and state file fine   -> enforcing
 *   anything wrong with either   -> failed closed: allocations return CUDA_ERROR_OUT_OF_MEMORY,
 *                                   one message on stderr names the file and the problem */
#ifndef GPUQ_PROCESS_H
#define GPUQ_PROCESS_H

#include "config.h"
#include "cuda_abi.h"
#include "statefile.h"

enum gpuq_mode {
    GPUQ_MODE_UNSET = 0,
    GPUQ_MODE_INERT,
    GPUQ_MODE_ENFORCING,
    GPUQ_MODE_FAILED_CLOSED,
};

#define GPUQ_MAX_ORDINALS 64

/* gpuq_process_device_of(): the device has no limit / CUDA cannot tell yet (not initialized) */
#define GPUQ_UNLIMITED (-1)
#define GPUQ_UNKNOWN (-2)

struct gpuq_process {
    int mode;
    int reattach; /* set in a forked child: claim a slot of its own before going on */
    struct gpuq_config config;
    struct gpuq_state state;
    int ordinals_mapped;
    int ordinal_dev[GPUQ_MAX_ORDINALS]; /* CUdevice -> config device, or GPUQ_UNLIMITED */
    int context_charged[GPUQ_MAX_DEVICES];
};

extern struct gpuq_process gpuq_process;

/* Loads the config and attaches the state file on first use; cheap afterwards. */
enum gpuq_mode gpuq_process_mode(void);

/* The config device of CUDA device `ordinal` (matched by UUID via cuDeviceGetUuid_v2, so the
 * order CUDA numbers devices in does not matter), GPUQ_UNLIMITED or GPUQ_UNKNOWN. */
int gpuq_process_device_of(CUdevice ordinal);

/* Fails the process closed (once) with a message about `file`. */
void gpuq_process_fail_closed(const char *file, const char *why);

#endif
