/* GPU and MIG UUIDs in text and in bytes (see uuids.h). */
#include "uuids.h"

#include <stdio.h>
#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gpuq_uuid_parse(const char *text, size_t length, gpuq_uuid *uuid)
{
    if (length != GPUQ_UUID_TEXT_LEN ||
        (strncmp(text, "GPU-", 4) != 0 && strncmp(text, "MIG-", 4) != 0))
        return -1;
    const char *hex = text + 4;
    size_t byte = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (hex[i] != '-')
                return -1;
            i++;
            continue;
        }
        int high = hex_value(hex[i]), low = hex_value(hex[i + 1]);
        if (high < 0 || low < 0)
            return -1;
        uuid->bytes[byte++] = (unsigned char)(high << 4 | low);
        i += 2;
    }
    return 0;
}

void gpuq_uuid_format(const gpuq_uuid *uuid, const char *prefix, char *text)
{
    const unsigned char *b = uuid->bytes;
    snprintf(text, GPUQ_UUID_TEXT_LEN + 1,
             "%.3s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", prefix,
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}
