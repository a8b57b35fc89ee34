/* GPU and MIG UUIDs: the text form NVML and quota.conf use ("GPU-" or "MIG-" followed by
 * 8-4-4-4-12 hex digits) and the 16 bytes cuDeviceGetUuid_v2 returns. Shared with the fakes. */
#ifndef GPUQ_UUIDS_H
#define GPUQ_UUIDS_H

#include <stddef.h>

typedef struct gpuq_uuid {
    unsigned char bytes[16];
} gpuq_uuid;

#define GPUQ_UUID_TEXT_LEN 40 /* "GPU-" + 36, without the NUL */

/* Parses exactly `length` characters of `text`; 0 on success, -1 if it is no GPU/MIG UUID. */
int gpuq_uuid_parse(const char *text, size_t length, gpuq_uuid *uuid);

/* Writes "<prefix>-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (prefix "GPU" or "MIG") into `text`,
 * which holds at least GPUQ_UUID_TEXT_LEN + 1 bytes. */
void gpuq_uuid_format(const gpuq_uuid *uuid, const char *prefix, char *text);

#endif
