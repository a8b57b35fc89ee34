/* The JSON writer (json.h). */
#include "json.h"

#include <string.h>

void json_start(struct json *json, FILE *out)
{
    json->out = out;
    json->depth = 0;
    memset(json->first, 1, sizeof json->first);
}

/* U+FFFD for a byte that does not start a valid UTF-8 sequence; else the sequence's length. */
static size_t utf8_length(const unsigned char *text, size_t left)
{
    size_t length = text[0] >= 0xf0 && text[0] <= 0xf4 ? 4
                    : text[0] >= 0xe0                  ? 3
                    : text[0] >= 0xc2 && text[0] < 0xe0 ? 2
                                                       : 0;
    if (length == 0 || length > left)
        return 0;
    for (size_t i = 1; i < length; i++)
        if ((text[i] & 0xc0) != 0x80)
            return 0;
    return length;
}

static void quoted(FILE *out, const char *value, size_t length)
{
    const unsigned char *text = (const unsigned char *)value;
    fputc('"', out);
    for (size_t i = 0; i < length;) {
        unsigned char c = text[i];
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else if (c >= 0x80) {
            size_t sequence = utf8_length(text + i, length - i);
            if (sequence == 0) {
                fputs("\\ufffd", out);
                i++;
            } else {
                fwrite(text + i, 1, sequence, out);
                i += sequence;
            }
            continue;
        } else {
            fputc(c, out);
        }
        i++;
    }
    fputc('"', out);
}

static void member(struct json *json, const char *key)
{
    if (!json->first[json->depth])
        fputc(',', json->out);
    json->first[json->depth] = 0;
    if (key != NULL) {
        quoted(json->out, key, strlen(key));
        fputc(':', json->out);
    }
}

static void open_container(struct json *json, const char *key, char opener)
{
    member(json, key);
    fputc(opener, json->out);
    if (json->depth + 1 < JSON_MAX_DEPTH)
        json->depth++;
    json->first[json->depth] = 1;
}

void json_object(struct json *json, const char *key)
{
    open_container(json, key, '{');
}

void json_array(struct json *json, const char *key)
{
    open_container(json, key, '[');
}

void json_end(struct json *json, char closer)
{
    fputc(closer, json->out);
    if (json->depth > 0)
        json->depth--;
}

void json_stringn(struct json *json, const char *key, const char *value, size_t length)
{
    member(json, key);
    quoted(json->out, value, length);
}

void json_string(struct json *json, const char *key, const char *value)
{
    if (value == NULL)
        json_null(json, key);
    else
        json_stringn(json, key, value, strlen(value));
}

void json_int(struct json *json, const char *key, long long value)
{
    member(json, key);
    fprintf(json->out, "%lld", value);
}

void json_uint(struct json *json, const char *key, unsigned long long value)
{
    member(json, key);
    fprintf(json->out, "%llu", value);
}

void json_bool(struct json *json, const char *key, int value)
{
    member(json, key);
    fputs(value ? "true" : "false", json->out);
}

void json_null(struct json *json, const char *key)
{
    member(json, key);
    fputs("null", json->out);
}
