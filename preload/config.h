/* quota.conf, one claim's limits as the kubelet plugin writes them (read-only in the container):
 *
 *     version=1
 *     device.<GPU-or-MIG-UUID>.memory_bytes=<int>     one line per limited device
 *     state_file=<absolute path>                      the claim's accounting state
 *     context_reserve_bytes=<int>                     optional, default 0
 *     round_bytes=<int>                               optional, default 1 (no rounding)
 *
 * Parsed strictly, because a config the library misreads is a limit it does not enforce: each line
 * is empty, a comment starting with '#', or exactly key=value with no blank or control character
 * anywhere; every key is one of the above and appears once; numbers are decimal digits that fit
 * in 64 bits. Anything else makes the file invalid (the library fails closed), with the line in
 * the message. A newer plugin that adds keys must raise the version. */
#ifndef GPUQ_CONFIG_H
#define GPUQ_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "uuids.h"

#define GPUQ_MAX_DEVICES 64
#define GPUQ_CONFIG_MAX_BYTES 65536

struct gpuq_config {
    char path[PATH_MAX];
    unsigned ndev;
    gpuq_uuid uuid[GPUQ_MAX_DEVICES];
    char uuid_text[GPUQ_MAX_DEVICES][GPUQ_UUID_TEXT_LEN + 1];
    uint64_t memory_bytes[GPUQ_MAX_DEVICES];
    char state_file[PATH_MAX];
    uint64_t context_reserve_bytes; /* charged once per process and device, at its first allocation */
    uint64_t round_bytes;           /* every allocation is counted rounded up to this */
};

/* Reads `path` into `config`: 0, or -1 with the reason (one line, "line N: …" where a line is to
 * blame) in `why`. */
int gpuq_config_load(const char *path, struct gpuq_config *config, char *why, size_t why_size);

/* The index of the device with this UUID, or -1 when the config does not limit it. */
int gpuq_config_find(const struct gpuq_config *config, const gpuq_uuid *uuid);

#endif
