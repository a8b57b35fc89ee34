/* The limit itself: charging and releasing bytes on a claim device, and what the info calls
 * report. Exact: a charge is granted only if the claim's usage (every process's slot) plus the
 * charge stays within the limit, decided under the claim's lock. */
#ifndef GPUQ_QUOTA_H
#define GPUQ_QUOTA_H

#include <stdint.h>

/* Adds `bytes` (plus, on this process's first charge on the device, the config's
 * context_reserve_bytes) to our slot: 0, or -1 when the claim's limit would be passed. */
int gpuq_quota_charge(unsigned dev, uint64_t bytes);

void gpuq_quota_release(unsigned dev, uint64_t bytes);

/* Rewrites what the driver reported for the device: total = min(limit, total),
 * free = clamp(limit - claim usage, 0, free), *used (when given) = claim usage. */
void gpuq_quota_report(unsigned dev, uint64_t *free_bytes, uint64_t *total_bytes,
                       uint64_t *used_bytes);

#endif
