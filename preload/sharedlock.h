/* The claim's lock: serializes "sum the slots, then add to ours" across every process and thread
 * of the claim, so no two allocations can both see room that only one of them may take. */
#ifndef GPUQ_SHAREDLOCK_H
#define GPUQ_SHAREDLOCK_H

#include "statefile.h"

void gpuq_lock(const struct gpuq_state *state);
void gpuq_unlock(const struct gpuq_state *state);

/* Right after claiming a slot: a lock word that names our slot was left by the slot's previous
 * owner, who died holding the lock (we could only claim the slot because its owner is gone). */
void gpuq_lock_clear_stale(const struct gpuq_state *state);

#endif
