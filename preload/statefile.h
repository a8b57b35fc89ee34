/* The claim's accounting state: one file shared by every process of the claim (mmap, MAP_SHARED).
 *
 *   offset 0     header (4096 bytes, struct gpuq_state_header, native byte order)
 *   offset 4096  nslots slots of slot_size bytes: {u64 generation, u64 pid, u64 used[ndev]}
 *
 * A process claims a free slot and holds an OFD write lock (F_OFD_SETLK) on the slot's byte range
 * for as long as it lives; the kernel drops the lock when it exits or is killed, so a slot whose
 * lock can be taken belongs to nobody, and whatever it still counts is reclaimed (zeroed). A slot
 * counts the bytes its process holds on each device; the header's usage[] is their sum, kept in the
 * cache line of the claim's lock (sharedlock.h) so that a charge or release touches one shared
 * line. Charges add under that lock, usage[] first; releases subtract without it, usage[] first
 * (after the driver freed the memory). So usage[] never falls below what is really allocated, and
 * a process dying midway can only leave it too high; recounting (the sum over live slots) repairs
 * that whenever a charge would not fit, before every report, and when the lock is recovered from a
 * dead holder. */
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
};

struct gpuq_state {
    char path[PATH_MAX];
    int fd; /* our own open file description: it holds our slot's lock */
    struct gpuq_state_header *header;
    size_t map_size;
    dev_t file_dev;
    ino_t file_ino;
    unsigned ndev, nslots, slot_size;
    unsigned slot;   /* ours */
    uint64_t *used;  /* our slot's used[ndev] */
};

/* Opens (or, when missing, creates) the state file named by the config, checks it against the
 * config and claims a slot: 0, or -1 with the reason in `why`. */
int gpuq_state_attach(struct gpuq_state *state, const struct gpuq_config *config, char *why,
                      size_t why_size);

/* In a forked child (whose inherited descriptor was closed): claim a slot of its own. */
int gpuq_state_reattach(struct gpuq_state *state, char *why, size_t why_size);

uint64_t *gpuq_state_slot_used(const struct gpuq_state *state, unsigned slot);

/* Whether nobody holds `slot` (its process is gone). Never asked about our own slot. */
int gpuq_state_slot_is_dead(const struct gpuq_state *state, unsigned slot);

/* Zeroes the slots of dead processes and sets usage[] to the sum over the slots; the caller
 * holds the claim's lock. Returns how many slots were reclaimed. */
unsigned gpuq_state_recount(const struct gpuq_state *state);

#endif
