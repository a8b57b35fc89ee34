/* The claim's accounting state: one file shared by every process of the claim (mmap, MAP_SHARED).
 *
 *   offset 0     header (4096 bytes, struct gpuq_state_header, native byte order)
 *   offset 4096  nslots slots of slot_size bytes: {u64 generation, u64 pid, u64 used[ndev]}
 *
 * The plugin creates the file at Prepare, exactly this size and mode 0666, and mounts it into the
 * claim's containers on its own (read-write) inside the read-only claim directory. The library
 * never creates, grows, renames or unlinks it: a file missing, of another size or not matching
 * the config fails the process closed.
 *
 * Liveness, with OFD locks (F_OFD_SETLK), which the kernel drops when their open file description
 * is closed for the last time. A process holds two bytes of its slot, each through its own
 * descriptor:
 *   - the *charge byte* (slot offset + 0): whatever the slot counts is still in use. A forked
 *     child keeps this descriptor (it is O_CLOEXEC): the child holds its parent's driver
 *     descriptors too, and with them the parent's device memory, until it execs or exits, so the
 *     parent's charge stays counted as long as that (the safe side).
 *   - the *process byte* (slot offset + 1): the process itself lives. A forked child closes its
 *     copy at once, so it dies with the process. It tells whether a holder of the claim's lock
 *     (sharedlock.h) is gone.
 * A slot neither of whose bytes is locked belongs to nobody, and whatever it still counts is
 * reclaimed (zeroed). A slot counts the bytes its process holds on each device; the header's
 * usage[] is their sum, kept in the cache line of the claim's lock so that a charge or release
 * touches one shared line. Charges add under that lock, usage[] first; releases subtract without
 * it, usage[] first (after the driver freed the memory). So usage[] never falls below what is
 * really allocated, and a process dying midway can only leave it too high; recounting (the sum
 * over live slots) repairs that whenever a charge would not fit, before every report, and when the
 * lock is recovered from a dead holder.
 *
 * Damage: any process of the claim can truncate or overwrite the file. Touching a truncated
 * mapping raises SIGBUS; sigbus.c catches that for our mapping (and swaps in zeroed memory), and
 * every charge and report checks the magic under the lock, so a damaged file fails the process
 * closed instead of killing it. */
#ifndef GPUQ_STATEFILE_H
#define GPUQ_STATEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define GPUQ_STATE_MAGIC "GPUQSTAT" /* 8 bytes, no NUL */
#define GPUQ_STATE_VERSION 1u
#define GPUQ_STATE_HEADER_SIZE 4096u
#define GPUQ_STATE_DEFAULT_SLOTS 1024u
#define GPUQ_STATE_MAX_SLOTS 2047u /* the lock word keeps the holder's slot in 11 bits */
#define GPUQ_SLOT_USED_OFFSET 16u
#define GPUQ_SLOT_CHARGE_BYTE 0u  /* slot offset of the byte locked while its charge is in use */
#define GPUQ_SLOT_PROCESS_BYTE 1u /* ... and of the byte locked while its process lives */

struct gpuq_state_header {
    char magic[8];        /* GPUQ_STATE_MAGIC */
    uint32_t version;     /* GPUQ_STATE_VERSION */
    uint32_t ndev;        /* devices, in quota.conf order */
    uint32_t nslots;      /* process slots */
    uint32_t slot_size;   /* bytes per slot: 16 + 8 * ndev rounded up to 64 */
    uint32_t header_size; /* GPUQ_STATE_HEADER_SIZE */
    uint32_t reserved;
    uint8_t pad0[32];
    uint32_t lock; /* offset 64: the claim's lock word, see sharedlock.c */
    uint32_t pad1;
    uint64_t usage[GPUQ_MAX_DEVICES]; /* offset 72: the claim's usage per device */
    uint8_t pad2[56];
    uint32_t high_water; /* offset 640: slots at or past it have never been used */
    uint8_t pad3[60];
    uint8_t uuid[GPUQ_MAX_DEVICES][16]; /* offset 704 */
    uint64_t limit[GPUQ_MAX_DEVICES];   /* offset 1728: the config's limits, for readers */
    uint64_t refused[GPUQ_MAX_DEVICES]; /* offset 2240: allocations refused for the limit */
    uint8_t kind[GPUQ_MAX_DEVICES];     /* offset 2752: 'G' (GPU-) or 'M' (MIG-) UUID; 0 unknown */
};

struct gpuq_state {
    char path[PATH_MAX];
    int charge_fd;  /* holds our slot's charge byte; inherited by forked children on purpose */
    int process_fd; /* holds our slot's process byte; closed in forked children */
    struct gpuq_state_header *header;
    size_t map_size;
    dev_t file_dev;
    ino_t file_ino;
    unsigned ndev, nslots, slot_size;
    unsigned slot;       /* ours */
    uint64_t *used;      /* our slot's used[ndev] */
    int damaged;         /* set by the SIGBUS handler when the mapping was cut short */
    uint32_t stuck_word; /* a lock word we gave up waiting on (sharedlock.c), 0 if none */
};

/* Opens the state file named by the config, checks it against the config and claims a slot: 0,
 * or -1 with the reason in `why`. */
int gpuq_state_attach(struct gpuq_state *state, const struct gpuq_config *config, char *why,
                      size_t why_size);

/* Undoes a successful attach (when another claim of the process fails). */
void gpuq_state_detach(struct gpuq_state *state);

/* In a forked child, right after fork: let go of the parent's process byte (keeping its charge
 * byte, see above); the child claims a slot of its own with gpuq_state_reattach on first use. */
void gpuq_state_fork_child(struct gpuq_state *state);
int gpuq_state_reattach(struct gpuq_state *state, char *why, size_t why_size);

uint64_t *gpuq_state_slot_used(const struct gpuq_state *state, unsigned slot);

/* The pid slot `slot` recorded (in its own PID namespace). */
uint64_t gpuq_state_slot_pid(const struct gpuq_state *state, unsigned slot);

/* Whether nobody holds `slot` any more: its process and the forked children that keep its charge
 * are gone. Never asked about our own slot. */
int gpuq_state_slot_is_dead(const struct gpuq_state *state, unsigned slot);

/* Whether the process of `slot` is gone (forked children aside). */
int gpuq_state_process_is_dead(const struct gpuq_state *state, unsigned slot);

/* Whether the file was truncated or overwritten under us: the SIGBUS handler's flag or a header
 * that lost its magic. Cheap (one load from a line nobody writes). */
static inline int gpuq_state_damaged(const struct gpuq_state *state)
{
    uint64_t magic;
    __builtin_memcpy(&magic, GPUQ_STATE_MAGIC, 8);
    return __atomic_load_n(&state->damaged, __ATOMIC_RELAXED) ||
           __atomic_load_n((const uint64_t *)(const void *)state->header->magic,
                           __ATOMIC_RELAXED) != magic;
}

/* What a damaged file looks like now, for the message. */
void gpuq_state_describe_damage(const struct gpuq_state *state, char *why, size_t why_size);

/* Zeroes the slots of dead processes and sets usage[] to the sum over the slots; the caller
 * holds the claim's lock. Returns how many slots were reclaimed. */
unsigned gpuq_state_recount(const struct gpuq_state *state);

#endif
