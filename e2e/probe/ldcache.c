/* The "ldcache" member: where the dynamic loader finds the driver's libraries by name, as the
 * CDI hook `update-ldcache` left it. From `ldconfig -p` when the image has an ldconfig (run
 * without a shell: the image may have none), else from /etc/ld.so.cache itself, read in the
 * format glibc >= 2.32 writes ("glibc-ld.so.cache1.1", possibly after the old format). */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe.h"

extern char **environ;

#define MAX_ENTRIES 256

struct entry {
    char name[128];
    char path[384];
};

struct listing {
    struct entry entries[MAX_ENTRIES];
    int count;
};

static int interesting(const char *name)
{
    static const char *const prefixes[] = {"libcuda", "libnvidia", "libnvcuvid", "libgpuquota"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

static void add(struct listing *listing, const char *name, const char *path)
{
    if (!interesting(name) || listing->count == MAX_ENTRIES)
        return;
    struct entry *entry = &listing->entries[listing->count++];
    snprintf(entry->name, sizeof entry->name, "%s", name);
    snprintf(entry->path, sizeof entry->path, "%s", path);
}

/* "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1" */
static void parse_line(struct listing *listing, char *line)
{
    char *arrow = strstr(line, " => ");
    char *name = line + strspn(line, " \t");
    if (arrow == NULL)
        return;
    char *path = arrow + 4;
    path[strcspn(path, "\n")] = '\0';
    name[strcspn(name, " ")] = '\0';
    add(listing, name, path);
}

static int from_ldconfig(struct listing *listing, const char **source)
{
    static const char *const candidates[] = {"/sbin/ldconfig", "/usr/sbin/ldconfig",
                                             "/sbin/ldconfig.real", "/usr/bin/ldconfig"};
    const char *program = NULL;
    for (size_t i = 0; program == NULL && i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], X_OK) == 0)
            program = candidates[i];
    int pipe_ends[2];
    if (program == NULL || pipe(pipe_ends) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", 0, 0);
    posix_spawn_file_actions_addclose(&actions, pipe_ends[0]);
    char *argv[] = {(char *)program, "-p", NULL};
    pid_t child;
    int spawned = posix_spawn(&child, program, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_ends[1]);
    FILE *output = fdopen(pipe_ends[0], "r");
    char *line = NULL;
    size_t size = 0;
    while (spawned == 0 && output != NULL && getline(&line, &size, output) > 0)
        parse_line(listing, line);
    free(line);
    if (output != NULL)
        fclose(output);
    else
        close(pipe_ends[0]);
    int status = 0;
    if (spawned != 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1;
    *source = program;
    return 0;
}

/* The new-format header (glibc elf/dl-cache.h, struct cache_file_new) and its entries. */
struct cache_header {
    char magic[17]; /* "glibc-ld.so.cache" */
    char version[3]; /* "1.1" */
    uint32_t nlibs, len_strings;
    uint8_t flags, padding[3];
    uint32_t extension_offset, unused[3];
};
struct cache_entry {
    int32_t flags;
    uint32_t key, value; /* string offsets from the header */
    uint32_t osversion;
    uint64_t hwcap;
};

static int from_cache_file(struct listing *listing, const char *file_name)
{
    FILE *file = fopen(file_name, "r");
    if (file == NULL)
        return -1;
    static uint64_t storage[(8 << 20) / sizeof(uint64_t)];
    char *data = (char *)storage;
    size_t size = fread(data, 1, sizeof storage, file);
    fclose(file);
    const char *found = memmem(data, size, "glibc-ld.so.cache1.1", 20);
    struct cache_header header;
    if (found == NULL || (size_t)(found - data) + sizeof header > size)
        return -1;
    size_t left = size - (size_t)(found - data);
    memcpy(&header, found, sizeof header); /* copied: the header need not be aligned */
    if (sizeof header + (size_t)header.nlibs * sizeof(struct cache_entry) > left)
        return -1;
    for (uint32_t i = 0; i < header.nlibs; i++) {
        struct cache_entry entry;
        memcpy(&entry, found + sizeof header + i * sizeof entry, sizeof entry);
        if (entry.key < left && entry.value < left &&
            memchr(found + entry.key, '\0', left - entry.key) != NULL &&
            memchr(found + entry.value, '\0', left - entry.value) != NULL)
            add(listing, found + entry.key, found + entry.value);
    }
    return 0;
}

void ldcache_section(struct json *json, const char *cache_file)
{
    static struct listing listing;
    const char *source = NULL;
    listing.count = 0;
    if (cache_file != NULL || from_ldconfig(&listing, &source) != 0) {
        listing.count = 0;
        cache_file = cache_file != NULL ? cache_file : "/etc/ld.so.cache";
        source = from_cache_file(&listing, cache_file) == 0 ? cache_file : NULL;
    }
    json_object(json, "ldcache");
    json_string(json, "source", source);
    json_object(json, "libraries"); /* name: [paths], in cache order (the loader takes the first) */
    for (int i = 0; i < listing.count; i++) {
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = strcmp(listing.entries[j].name, listing.entries[i].name) != 0;
        if (!first)
            continue;
        json_array(json, listing.entries[i].name);
        for (int j = i; j < listing.count; j++)
            if (strcmp(listing.entries[j].name, listing.entries[i].name) == 0)
                json_string(json, NULL, listing.entries[j].path);
        json_end(json, ']');
    }
    json_end(json, '}');
    json_string(json, "error", source == NULL ? "no ldconfig and no readable ld.so.cache" : NULL);
    json_end(json, '}');
}
