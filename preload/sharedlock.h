/* The claim's lock: serializes "sum the slots, then add to ours" across every process and thread
 * of the claim, so no two allocations can both see room that only one of them may take. */
#ifndef GPUQ_SHAREDLOCK_H
#define GPUQ_SHAREDLOCK_H

#include "statefile.h"

/* How long a process waits for a holder that is alive but does not let go (stopped with SIGSTOP,
 * or a debugger's breakpoint) before the allocation waiting fails closed. While the lock word
 * stays the same afterwards, later attempts fail at once instead of waiting again. */
#define GPUQ_LOCK_TIMEOUT_MS 2000

/* 0 with the lock held, or -1 (logged, naming the holder) when the holder kept it too long. */
int gpuq_lock(struct gpuq_state *state);
void gpuq_unlock(const struct gpuq_state *state);

/* Right after claiming a slot: a lock word that names our slot was left by the slot's previous
 * owner, who died holding the lock (we could only claim the slot because its owner is gone). */
void gpuq_lock_clear_stale(const struct gpuq_state *state);

#endif
