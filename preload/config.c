/* Parsing quota.conf (format in config.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES 65536

static int parse_u64(const char *text, uint64_t *value)
{
    if (*text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *value = parsed;
    return 0;
}

static int read_file(const char *path, char *buffer, size_t size, char *why, size_t why_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_size, "cannot open the quota config: %s", strerror(errno));
        return -1;
    }
    size_t length = 0;
    for (;;) {
        ssize_t n = read(fd, buffer + length, size - 1 - length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_size, "cannot read the quota config: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        length += (size_t)n;
        if (length == size - 1) {
            snprintf(why, why_size, "the quota config is larger than %d bytes", MAX_CONFIG_BYTES);
            close(fd);
            return -1;
        }
    }
    close(fd);
    buffer[length] = '\0';
    return 0;
}

/* "device.<uuid>.memory_bytes" */
static int parse_device(struct gpuq_config *config, const char *key, const char *value,
                        char *why, size_t why_size)
{
    static const char suffix[] = ".memory_bytes";
    size_t key_length = strlen(key);
    if (key_length <= 7 + sizeof suffix - 1 ||
        strcmp(key + key_length - (sizeof suffix - 1), suffix) != 0)
        return 0; /* another per-device key: not ours */
    const char *text = key + 7;
    size_t text_length = key_length - 7 - (sizeof suffix - 1);
    gpuq_uuid uuid;
    if (gpuq_uuid_parse(text, text_length, &uuid) != 0) {
        snprintf(why, why_size, "'%s' names no GPU or MIG UUID", key);
        return -1;
    }
    if (gpuq_config_find(config, &uuid) >= 0) {
        snprintf(why, why_size, "the limit of %.*s is given twice", (int)text_length, text);
        return -1;
    }
    if (config->ndev == GPUQ_MAX_DEVICES) {
        snprintf(why, why_size, "more than %d devices", GPUQ_MAX_DEVICES);
        return -1;
    }
    uint64_t bytes;
    if (parse_u64(value, &bytes) != 0) {
        snprintf(why, why_size, "'%s' is no byte count: '%s'", key, value);
        return -1;
    }
    unsigned dev = config->ndev++;
    config->uuid[dev] = uuid;
    memcpy(config->uuid_text[dev], text, text_length);
    config->uuid_text[dev][text_length] = '\0';
    config->memory_bytes[dev] = bytes;
    return 0;
}

static int parse_line(struct gpuq_config *config, char *line, int *version, char *why,
                      size_t why_size)
{
    char *equals = strchr(line, '=');
    if (equals == NULL) {
        snprintf(why, why_size, "line '%.200s' is not key=value", line);
        return -1;
    }
    *equals = '\0';
    const char *key = line, *value = equals + 1;
    if (strncmp(key, "device.", 7) == 0)
        return parse_device(config, key, value, why, why_size);
    uint64_t number = 0;
    if (strcmp(key, "version") == 0) {
        if (parse_u64(value, &number) != 0 || number != 1) {
            snprintf(why, why_size, "unsupported version '%s' (this library reads version 1)",
                     value);
            return -1;
        }
        *version = 1;
    } else if (strcmp(key, "state_file") == 0) {
        if (value[0] != '/' || strlen(value) >= sizeof config->state_file) {
            snprintf(why, why_size, "state_file must be an absolute path: '%.200s'", value);
            return -1;
        }
        strcpy(config->state_file, value);
    } else if (strcmp(key, "context_reserve_bytes") == 0 || strcmp(key, "round_bytes") == 0) {
        if (parse_u64(value, &number) != 0) {
            snprintf(why, why_size, "'%s' is no byte count: '%s'", key, value);
            return -1;
        }
        if (key[0] == 'c')
            config->context_reserve_bytes = number;
        else
            config->round_bytes = number == 0 ? 1 : number;
    }
    return 0; /* unknown keys are left for newer versions of the library */
}

int gpuq_config_load(const char *path, struct gpuq_config *config, char *why, size_t why_size)
{
    memset(config, 0, sizeof *config);
    config->round_bytes = 1;
    snprintf(config->path, sizeof config->path, "%s", path);
    char *text = malloc(MAX_CONFIG_BYTES);
    if (text == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    int version = 0, result = read_file(path, text, MAX_CONFIG_BYTES, why, why_size);
    char *save = NULL;
    for (char *line = result == 0 ? strtok_r(text, "\n", &save) : NULL; line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        size_t length = strlen(line);
        while (length > 0 && (line[length - 1] == '\r' || line[length - 1] == ' '))
            line[--length] = '\0';
        if (length == 0 || line[0] == '#')
            continue;
        if (parse_line(config, line, &version, why, why_size) != 0) {
            result = -1;
            break;
        }
    }
    free(text);
    if (result == 0 && version != 1) {
        snprintf(why, why_size, "no 'version=1' line");
        result = -1;
    }
    if (result == 0 && config->state_file[0] == '\0') {
        snprintf(why, why_size, "no 'state_file=' line");
        result = -1;
    }
    return result;
}

int gpuq_config_find(const struct gpuq_config *config, const gpuq_uuid *uuid)
{
    for (unsigned dev = 0; dev < config->ndev; dev++)
        if (memcmp(config->uuid[dev].bytes, uuid->bytes, sizeof uuid->bytes) == 0)
            return (int)dev;
    return -1;
}
