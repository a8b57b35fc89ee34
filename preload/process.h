/* This process's view of its claims: decided once (again in a forked child), used by every hook.
 *
 *   no claims root in the container     -> inert: every call passes through unchanged
 *   claims and state files fine         -> enforcing
 *   anything wrong with any of them     -> failed closed: allocations return
 *                                          CUDA_ERROR_OUT_OF_MEMORY, one message on stderr names
 *                                          the file and the problem (claims.h has the rules)
 *
 * Devices are numbered across the claims (claim 0's first, then claim 1's, ...): `config` is the
 * merged view every hook reads (UUIDs and limits of all of them); each device's own claim, with
 * its state file and lock, is claim_of(). */
#ifndef GPUQ_PROCESS_H
#define GPUQ_PROCESS_H

#include "claims.h"
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
    int reattach; /* set in a forked child: claim slots of its own before going on */
    /* Every claim's devices in one list; round_bytes is the largest of the claims' (rounding
     * further up only charges more), context_reserve_bytes is per claim (claim_of). */
    struct gpuq_config config;
    unsigned nclaims;
    struct gpuq_claim claims[GPUQ_MAX_CLAIMS];
    unsigned char dev_claim[GPUQ_MAX_DEVICES]; /* device -> its claim */
    int ordinals_mapped;
    int ordinal_dev[GPUQ_MAX_ORDINALS]; /* CUdevice -> device, or GPUQ_UNLIMITED */
    int context_charged[GPUQ_MAX_DEVICES];
};

extern struct gpuq_process gpuq_process;

/* Finds the claims and attaches their state files on first use; cheap afterwards. */
enum gpuq_mode gpuq_process_mode(void);

/* The device of CUDA device `ordinal` (matched by UUID via cuDeviceGetUuid_v2, so the order CUDA
 * numbers devices in does not matter), GPUQ_UNLIMITED or GPUQ_UNKNOWN. */
int gpuq_process_device_of(CUdevice ordinal);

/* The claim that limits device `dev`, and the device's index in that claim's config. */
static inline struct gpuq_claim *gpuq_process_claim_of(unsigned dev, unsigned *local)
{
    struct gpuq_claim *claim = &gpuq_process.claims[gpuq_process.dev_claim[dev]];
    *local = dev - claim->first_dev;
    return claim;
}

/* Fails the process closed (once) with a message about `file`. */
void gpuq_process_fail_closed(const char *file, const char *why);

#endif
