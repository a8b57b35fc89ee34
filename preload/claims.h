/* The claims of this container, found without trusting the environment: the plugin mounts the
 * directory of every claim with shares that a container holds at GPUQ_CLAIMS_ROOT/<claim uid>/,
 * with the claim's quota.conf in it, so the library reads every GPUQ_CLAIMS_ROOT/<x>/quota.conf.
 *
 *   the root does not exist                      -> no claim: the library is inert
 *   every entry a claim directory with a valid
 *   config, no UUID in two of them               -> those claims, each device held to the limit
 *                                                   of the one claim that names it
 *   anything else (the root unreadable or empty,
 *   an entry without a readable, valid config,
 *   a UUID in two configs, too many claims or
 *   devices)                                     -> fail closed
 *
 * No environment variable takes part (GPUQ_CONFIG is ignored): a process that drops or changes
 * its environment is held like any other. */
#ifndef GPUQ_CLAIMS_H
#define GPUQ_CLAIMS_H

#include <stddef.h>

#include "config.h"
#include "statefile.h"

#define GPUQ_CLAIMS_ROOT "/var/run/gpu-dra/claims" /* dra_driver/isolation/quotas.py */
#define GPUQ_CLAIM_CONFIG "quota.conf"
#define GPUQ_MAX_CLAIMS 16

struct gpuq_claim {
    struct gpuq_config config;
    struct gpuq_state state;
    unsigned first_dev; /* its devices, numbered across claims, start here */
};

/* Reads every claim's config into claims[0 .. *count - 1] (ordered by directory name):
 * 1 when the root does not exist (no claims), 0 when all are valid, -1 with the file to blame
 * in `file` and the reason in `why`. */
int gpuq_claims_find(struct gpuq_claim *claims, unsigned *count, char *file, size_t file_size,
                     char *why, size_t why_size);

#endif
