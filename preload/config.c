/* Parsing quota.conf, strictly (format and rules in config.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum scalar { VERSION, STATE_FILE, CONTEXT_RESERVE, ROUND, SCALARS };

static const char *const scalar_keys[SCALARS] = {"version", "state_file",
                                                 "context_reserve_bytes", "round_bytes"};

struct parser {
    struct gpuq_config *config;
    unsigned line;
    unsigned scalar_line[SCALARS]; /* where each key was given, 0 if not yet */
    unsigned device_line[GPUQ_MAX_DEVICES];
    char *why;
    size_t why_size;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *parser, const char *fmt, ...)
{
    int used = parser->line == 0 ? 0
                                 : snprintf(parser->why, parser->why_size, "line %u: ",
                                            parser->line);
    va_list args;
    va_start(args, fmt);
    vsnprintf(parser->why + used, parser->why_size - (size_t)used, fmt, args);
    va_end(args);
    return -1;
}

/* Decimal digits only (no sign, no blank), at most 2^64 - 1. */
static int parse_u64(struct parser *parser, const char *key, const char *value, uint64_t *out)
{
    uint64_t number = 0;
    if (*value == '\0')
        return fail(parser, "'%s' has no value", key);
    for (const char *c = value; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return fail(parser, "'%s' is not a byte count: '%.40s'", key, value);
        if (__builtin_mul_overflow(number, 10, &number) ||
            __builtin_add_overflow(number, (uint64_t)(*c - '0'), &number))
            return fail(parser, "'%s' overflows 64 bits: '%.40s'", key, value);
    }
    *out = number;
    return 0;
}

/* "device.<uuid>.memory_bytes" */
static int parse_device(struct parser *parser, const char *key, const char *value)
{
    static const char prefix[] = "device.", suffix[] = ".memory_bytes";
    struct gpuq_config *config = parser->config;
    size_t key_length = strlen(key), text_length;
    if (key_length <= sizeof prefix - 1 + sizeof suffix - 1 ||
        strcmp(key + key_length - (sizeof suffix - 1), suffix) != 0)
        return fail(parser, "unknown key '%.80s' (devices take only 'memory_bytes')", key);
    const char *text = key + sizeof prefix - 1;
    text_length = key_length - (sizeof prefix - 1) - (sizeof suffix - 1);
    gpuq_uuid uuid;
    if (gpuq_uuid_parse(text, text_length, &uuid) != 0)
        return fail(parser, "'%.*s' is no GPU or MIG UUID (GPU-/MIG- and 8-4-4-4-12 hex digits)",
                    (int)(text_length > 60 ? 60 : text_length), text);
    int known = gpuq_config_find(config, &uuid);
    if (known >= 0)
        return fail(parser, "the limit of %.*s is given twice (first on line %u)",
                    (int)text_length, text, parser->device_line[known]);
    if (config->ndev == GPUQ_MAX_DEVICES)
        return fail(parser, "more than %d devices", GPUQ_MAX_DEVICES);
    uint64_t bytes;
    if (parse_u64(parser, key, value, &bytes) != 0)
        return -1;
    unsigned dev = config->ndev++;
    config->uuid[dev] = uuid;
    memcpy(config->uuid_text[dev], text, text_length);
    config->uuid_text[dev][text_length] = '\0';
    config->memory_bytes[dev] = bytes;
    parser->device_line[dev] = parser->line;
    return 0;
}

static int parse_scalar(struct parser *parser, enum scalar which, const char *value)
{
    struct gpuq_config *config = parser->config;
    const char *key = scalar_keys[which];
    if (parser->scalar_line[which] != 0)
        return fail(parser, "'%s' is given twice (first on line %u)", key,
                    parser->scalar_line[which]);
    parser->scalar_line[which] = parser->line;
    uint64_t number = 0;
    switch (which) {
    case VERSION:
        if (strcmp(value, "1") != 0)
            return fail(parser, "unsupported version '%.40s' (this library reads version 1)",
                        value);
        return 0;
    case STATE_FILE:
        if (value[0] != '/' || strlen(value) >= sizeof config->state_file)
            return fail(parser, "state_file must be an absolute path: '%.200s'", value);
        strcpy(config->state_file, value);
        return 0;
    case CONTEXT_RESERVE:
        return parse_u64(parser, key, value, &config->context_reserve_bytes);
    case ROUND:
        if (parse_u64(parser, key, value, &number) != 0)
            return -1;
        if (number == 0)
            return fail(parser, "round_bytes must be at least 1");
        config->round_bytes = number;
        return 0;
    case SCALARS:
        break;
    }
    return fail(parser, "unknown key '%s'", key);
}

/* One line, without its '\n'; may be modified. */
static int parse_line(struct parser *parser, char *line, size_t length)
{
    if (length == 0 || line[0] == '#')
        return 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '\0')
            return fail(parser, "NUL byte at column %zu", i + 1);
        if (c <= ' ' || c >= 0x7f)
            return fail(parser, "%s (byte 0x%02x) at column %zu; lines are key=value exactly",
                        c == ' ' || c == '\t' ? "blank" : "unexpected character", c, i + 1);
    }
    char *equals = memchr(line, '=', length);
    if (equals == NULL || equals == line)
        return fail(parser, "'%.200s' is not key=value", line);
    *equals = '\0';
    const char *key = line, *value = equals + 1;
    if (strncmp(key, "device.", 7) == 0)
        return parse_device(parser, key, value);
    for (int which = 0; which < SCALARS; which++)
        if (strcmp(key, scalar_keys[which]) == 0)
            return parse_scalar(parser, (enum scalar)which, value);
    return fail(parser, "unknown key '%.80s'", key);
}

static int parse(struct parser *parser, char *text, size_t length)
{
    for (size_t start = 0; start < length;) {
        char *newline = memchr(text + start, '\n', length - start);
        size_t end = newline == NULL ? length : (size_t)(newline - text);
        parser->line++;
        text[end] = '\0'; /* the '\n', or the spare byte after the text */
        if (parse_line(parser, text + start, end - start) != 0)
            return -1;
        start = end + 1;
    }
    parser->line = 0;
    if (parser->scalar_line[VERSION] == 0)
        return fail(parser, "no 'version=1' line");
    if (parser->scalar_line[STATE_FILE] == 0)
        return fail(parser, "no 'state_file=' line");
    return 0;
}

/* Reads the whole file into `buffer` (size - 1 bytes at most): its length, or -1. */
static ssize_t read_file(const char *path, char *buffer, size_t size, char *why, size_t why_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
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
            snprintf(why, why_size, "the quota config is larger than %zu bytes", size - 2);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return (ssize_t)length;
}

int gpuq_config_load(const char *path, struct gpuq_config *config, char *why, size_t why_size)
{
    memset(config, 0, sizeof *config);
    config->round_bytes = 1;
    snprintf(config->path, sizeof config->path, "%s", path);
    char *text = malloc(GPUQ_CONFIG_MAX_BYTES + 2);
    if (text == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    ssize_t length = read_file(path, text, GPUQ_CONFIG_MAX_BYTES + 2, why, why_size);
    struct parser parser = {.config = config, .why = why, .why_size = why_size};
    int result = length < 0 ? -1 : parse(&parser, text, (size_t)length);
    free(text);
    return result;
}

int gpuq_config_find(const struct gpuq_config *config, const gpuq_uuid *uuid)
{
    for (unsigned dev = 0; dev < config->ndev; dev++)
        if (memcmp(config->uuid[dev].bytes, uuid->bytes, sizeof uuid->bytes) == 0)
            return (int)dev;
    return -1;
}
