/* Checking and mapping the claim's state file, and its process slots (statefile.h). */
#define _GNU_SOURCE
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logging.h"
#include "sigbus.h"

#ifndef F_OFD_SETLK /* headers older than glibc 2.20; the kernel has them since 3.15 */
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#endif

_Static_assert(sizeof(struct gpuq_state_header) <= GPUQ_STATE_HEADER_SIZE, "header too large");
_Static_assert(offsetof(struct gpuq_state_header, lock) == 64, "lock offset");
_Static_assert(offsetof(struct gpuq_state_header, usage) == 72, "usage offset");
_Static_assert(offsetof(struct gpuq_state_header, high_water) == 640, "high_water offset");
_Static_assert(offsetof(struct gpuq_state_header, uuid) == 704, "uuid offset");
_Static_assert(offsetof(struct gpuq_state_header, limit) == 1728, "limit offset");
_Static_assert(offsetof(struct gpuq_state_header, refused) == 2240, "refused offset");
_Static_assert(offsetof(struct gpuq_state_header, kind) == 2752, "kind offset");

static unsigned slot_size_for(unsigned ndev)
{
    return (GPUQ_SLOT_USED_OFFSET + 8u * ndev + 63u) / 64u * 64u;
}

static off_t slot_offset(const struct gpuq_state *state, unsigned slot)
{
    return (off_t)GPUQ_STATE_HEADER_SIZE + (off_t)slot * state->slot_size;
}

static size_t file_size(unsigned nslots, unsigned ndev)
{
    return GPUQ_STATE_HEADER_SIZE + (size_t)nslots * slot_size_for(ndev);
}

static int check(const struct gpuq_state_header *header, off_t size,
                 const struct gpuq_config *config, char *why, size_t why_size)
{
    if (memcmp(header->magic, GPUQ_STATE_MAGIC, sizeof header->magic) != 0)
        snprintf(why, why_size, "bad magic: not a gpuquota state file");
    else if (header->version != GPUQ_STATE_VERSION)
        snprintf(why, why_size, "unsupported state file version %u (this library uses %u)",
                 header->version, GPUQ_STATE_VERSION);
    else if (header->header_size != GPUQ_STATE_HEADER_SIZE || header->nslots == 0 ||
             header->nslots > GPUQ_STATE_MAX_SLOTS || header->ndev > GPUQ_MAX_DEVICES ||
             header->slot_size != slot_size_for(header->ndev))
        snprintf(why, why_size, "corrupt header (header_size %u, nslots %u, slot_size %u)",
                 header->header_size, header->nslots, header->slot_size);
    else if ((size_t)size != file_size(header->nslots, header->ndev))
        snprintf(why, why_size, "%s: %lld bytes, the header needs exactly %zu",
                 (size_t)size < file_size(header->nslots, header->ndev) ? "truncated"
                                                                         : "wrong size",
                 (long long)size, file_size(header->nslots, header->ndev));
    else if (header->ndev != config->ndev)
        snprintf(why, why_size, "made for %u devices, but the config %s names %u", header->ndev,
                 config->path, config->ndev);
    else {
        for (unsigned dev = 0; dev < config->ndev; dev++) {
            uint8_t kind = (uint8_t)config->uuid_text[dev][0];
            if (memcmp(header->uuid[dev], config->uuid[dev].bytes, 16) != 0 ||
                (header->kind[dev] != 0 && header->kind[dev] != kind)) {
                snprintf(why, why_size, "made for other devices than the config %s (%s)",
                         config->path, config->uuid_text[dev]);
                return -1;
            }
            if (header->limit[dev] != config->memory_bytes[dev]) {
                snprintf(why, why_size, "limit of %s is %llu, but %llu in the config %s",
                         config->uuid_text[dev], (unsigned long long)header->limit[dev],
                         (unsigned long long)config->memory_bytes[dev], config->path);
                return -1;
            }
        }
        return 0;
    }
    return -1;
}

static int set_lock(int fd, short type, off_t start, off_t length)
{
    struct flock lock = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = length};
    return fcntl(fd, F_OFD_SETLK, &lock);
}

/* 1 taken, 0 held by someone else, -1 error (errno set). */
static int take_byte(int fd, off_t offset)
{
    if (set_lock(fd, F_WRLCK, offset, 1) == 0)
        return 1;
    return errno == EAGAIN || errno == EACCES ? 0 : -1;
}

static int claim_slot(struct gpuq_state *state, char *why, size_t why_size)
{
    unsigned slot = 0;
    for (; slot < state->nslots; slot++) {
        off_t offset = slot_offset(state, slot);
        int charge = take_byte(state->charge_fd, offset + GPUQ_SLOT_CHARGE_BYTE);
        int process = charge == 1 ? take_byte(state->process_fd, offset + GPUQ_SLOT_PROCESS_BYTE)
                                  : 0;
        if (charge == 1 && process == 1)
            break;
        if (charge == 1) /* another process is between taking the two bytes */
            set_lock(state->charge_fd, F_UNLCK, offset + GPUQ_SLOT_CHARGE_BYTE, 1);
        if (charge < 0 || process < 0) {
            snprintf(why, why_size, "cannot lock a process slot (F_OFD_SETLK): %s",
                     strerror(errno));
            return -1;
        }
    }
    if (slot == state->nslots) {
        snprintf(why, why_size, "all %u process slots are in use", state->nslots);
        return -1;
    }
    /* Whatever a dead owner left is ours to clear; we only add to it under the claim's lock. */
    state->slot = slot;
    state->used = gpuq_state_slot_used(state, slot);
    for (unsigned dev = 0; dev < state->ndev; dev++)
        __atomic_store_n(&state->used[dev], 0, __ATOMIC_RELAXED);
    uint64_t *head = state->used - GPUQ_SLOT_USED_OFFSET / 8;
    __atomic_fetch_add(&head[0], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&head[1], (uint64_t)getpid(), __ATOMIC_RELAXED);
    uint32_t high = __atomic_load_n(&state->header->high_water, __ATOMIC_RELAXED);
    while (high < slot + 1 &&
           !__atomic_compare_exchange_n(&state->header->high_water, &high, slot + 1, 0,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
    gpuq_log(GPUQ_LOG_DEBUG, "%s: claimed process slot %u", state->path, slot);
    return 0;
}

/* Both descriptors, each its own open file description (OFD locks belong to those). */
static int open_both(struct gpuq_state *state, char *why, size_t why_size)
{
    state->charge_fd = open(state->path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    state->process_fd =
        state->charge_fd < 0 ? -1 : open(state->path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (state->process_fd >= 0)
        return 0;
    snprintf(why, why_size, "cannot open%s: %s",
             errno == ENOENT ? " (the plugin creates it at Prepare)" : "", strerror(errno));
    if (state->charge_fd >= 0)
        close(state->charge_fd);
    state->charge_fd = -1;
    return -1;
}

static void close_both(struct gpuq_state *state)
{
    if (state->charge_fd >= 0)
        close(state->charge_fd);
    if (state->process_fd >= 0)
        close(state->process_fd);
    state->charge_fd = state->process_fd = -1;
}

/* Maps the checked file, guarded against SIGBUS before anything touches the mapping. */
static int map(struct gpuq_state *state, char *why, size_t why_size)
{
    void *mapped =
        mmap(NULL, state->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, state->charge_fd, 0);
    if (mapped == MAP_FAILED) {
        snprintf(why, why_size, "cannot map: %s", strerror(errno));
        return -1;
    }
    if (gpuq_sigbus_guard(mapped, state->map_size, &state->damaged) != 0) {
        snprintf(why, why_size, "cannot guard the mapping against SIGBUS: %s", strerror(errno));
        munmap(mapped, state->map_size);
        return -1;
    }
    state->header = mapped;
    return 0;
}

int gpuq_state_attach(struct gpuq_state *state, const struct gpuq_config *config, char *why,
                      size_t why_size)
{
    memset(state, 0, sizeof *state);
    snprintf(state->path, sizeof state->path, "%s", config->state_file);
    if (open_both(state, why, why_size) != 0)
        return -1;
    struct gpuq_state_header header;
    struct stat status;
    ssize_t n = pread(state->charge_fd, &header, sizeof header, 0);
    if (n < 0 || fstat(state->charge_fd, &status) != 0) {
        snprintf(why, why_size, "cannot read: %s", strerror(errno));
    } else if (!S_ISREG(status.st_mode)) {
        snprintf(why, why_size, "not a regular file");
    } else if (n != (ssize_t)sizeof header) {
        snprintf(why, why_size, "truncated: %lld bytes, shorter than its header",
                 (long long)status.st_size);
    } else if (check(&header, status.st_size, config, why, why_size) == 0) {
        state->ndev = header.ndev;
        state->nslots = header.nslots;
        state->slot_size = header.slot_size;
        state->map_size = file_size(header.nslots, header.ndev);
        state->file_dev = status.st_dev;
        state->file_ino = status.st_ino;
        if (map(state, why, why_size) == 0) {
            if (!gpuq_state_damaged(state) && claim_slot(state, why, why_size) == 0)
                return 0;
            if (gpuq_state_damaged(state))
                gpuq_state_describe_damage(state, why, why_size);
            gpuq_sigbus_unguard(state->header);
            munmap(state->header, state->map_size);
            state->header = NULL;
        }
    }
    close_both(state);
    return -1;
}

void gpuq_state_detach(struct gpuq_state *state)
{
    if (state->header != NULL) {
        gpuq_sigbus_unguard(state->header);
        munmap(state->header, state->map_size);
        state->header = NULL;
    }
    close_both(state);
}

void gpuq_state_fork_child(struct gpuq_state *state)
{
    /* charge_fd stays open, unnamed, for as long as this child lives (see statefile.h). */
    if (state->process_fd >= 0)
        close(state->process_fd);
    state->charge_fd = state->process_fd = -1;
}

int gpuq_state_reattach(struct gpuq_state *state, char *why, size_t why_size)
{
    struct stat status;
    state->stuck_word = 0;
    if (open_both(state, why, why_size) != 0)
        return -1;
    if (fstat(state->charge_fd, &status) != 0 || status.st_dev != state->file_dev ||
        status.st_ino != state->file_ino) {
        snprintf(why, why_size, "was replaced after this process's parent opened it");
        close_both(state);
        return -1;
    }
    if (claim_slot(state, why, why_size) == 0)
        return 0;
    close_both(state);
    return -1;
}

uint64_t *gpuq_state_slot_used(const struct gpuq_state *state, unsigned slot)
{
    char *base = (char *)state->header + slot_offset(state, slot);
    return (uint64_t *)(void *)(base + GPUQ_SLOT_USED_OFFSET);
}

uint64_t gpuq_state_slot_pid(const struct gpuq_state *state, unsigned slot)
{
    return __atomic_load_n(gpuq_state_slot_used(state, slot) - 1, __ATOMIC_RELAXED);
}

/* Whether anyone (another open file description) locks `length` bytes at `offset` of `slot`. */
static int unlocked(const struct gpuq_state *state, unsigned slot, off_t offset, off_t length)
{
    struct flock lock = {.l_type = F_WRLCK,
                         .l_whence = SEEK_SET,
                         .l_start = slot_offset(state, slot) + offset,
                         .l_len = length};
    int fd = state->charge_fd >= 0 ? state->charge_fd : state->process_fd;
    if (fd < 0 || fcntl(fd, F_OFD_GETLK, &lock) != 0)
        return 0; /* cannot tell: assume alive */
    return lock.l_type == F_UNLCK;
}

int gpuq_state_slot_is_dead(const struct gpuq_state *state, unsigned slot)
{
    return unlocked(state, slot, 0, state->slot_size);
}

int gpuq_state_process_is_dead(const struct gpuq_state *state, unsigned slot)
{
    return unlocked(state, slot, GPUQ_SLOT_PROCESS_BYTE, 1);
}

void gpuq_state_describe_damage(const struct gpuq_state *state, char *why, size_t why_size)
{
    struct stat status;
    int fd = state->charge_fd >= 0 ? state->charge_fd : state->process_fd;
    if (fd >= 0 && fstat(fd, &status) == 0 && (size_t)status.st_size < state->map_size)
        snprintf(why, why_size, "truncated while in use (%lld bytes, %zu expected)",
                 (long long)status.st_size, state->map_size);
    else
        snprintf(why, why_size, "overwritten while in use (its header lost the magic)");
}

static unsigned slots_in_use(const struct gpuq_state *state)
{
    unsigned high = __atomic_load_n(&state->header->high_water, __ATOMIC_ACQUIRE);
    return high < state->nslots ? high : state->nslots;
}

unsigned gpuq_state_recount(const struct gpuq_state *state)
{
    unsigned reclaimed = 0, high = slots_in_use(state);
    uint64_t usage[GPUQ_MAX_DEVICES] = {0};
    for (unsigned slot = 0; slot < high; slot++) {
        uint64_t *used = gpuq_state_slot_used(state, slot);
        int counts = 0;
        for (unsigned dev = 0; dev < state->ndev && !counts; dev++)
            counts = __atomic_load_n(&used[dev], __ATOMIC_RELAXED) != 0;
        if (counts && slot != state->slot && gpuq_state_slot_is_dead(state, slot)) {
            for (unsigned dev = 0; dev < state->ndev; dev++)
                __atomic_store_n(&used[dev], 0, __ATOMIC_RELAXED);
            reclaimed++;
            gpuq_log(GPUQ_LOG_INFO,
                     "%s: reclaimed the memory of process slot %u (its process is gone)",
                     state->path, slot);
            continue;
        }
        for (unsigned dev = 0; dev < state->ndev; dev++)
            usage[dev] += __atomic_load_n(&used[dev], __ATOMIC_RELAXED);
    }
    for (unsigned dev = 0; dev < state->ndev; dev++)
        __atomic_store_n(&state->header->usage[dev], usage[dev], __ATOMIC_RELAXED);
    return reclaimed;
}
