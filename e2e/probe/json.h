/* A tiny streaming JSON writer: the probe builds its one report line with it (probe.c).
 *
 * Every value call takes the member's key, or NULL inside arrays and for the top level. Strings
 * are escaped so that the line always parses: control characters as \u00XX, bytes that are not
 * valid UTF-8 as U+FFFD. */
#ifndef PROBE_JSON_H
#define PROBE_JSON_H

#include <stddef.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
    FILE *out;
    int depth;
    unsigned char first[JSON_MAX_DEPTH]; /* 1 until a member is written at that depth */
};

void json_start(struct json *json, FILE *out);
void json_object(struct json *json, const char *key);
void json_array(struct json *json, const char *key);
void json_end(struct json *json, char closer); /* '}' or ']' */
void json_string(struct json *json, const char *key, const char *value); /* NULL: null */
void json_stringn(struct json *json, const char *key, const char *value, size_t length);
void json_int(struct json *json, const char *key, long long value);
void json_uint(struct json *json, const char *key, unsigned long long value);
void json_bool(struct json *json, const char *key, int value);
void json_null(struct json *json, const char *key);

#endif
