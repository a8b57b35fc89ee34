/* What the container was given, read from inside it: the "env", "devices", "mounts" and
 * "preload" members. Nothing here needs the driver. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "probe.h"

extern char **environ;

static const char *const env_prefixes[] = {"GPU_DRA_", "CUDA_", "NVIDIA_", "GPUQ_", "LD_PRELOAD",
                                           "LD_LIBRARY_PATH"};

static int wanted_variable(const char *entry)
{
    for (size_t i = 0; i < sizeof env_prefixes / sizeof env_prefixes[0]; i++)
        if (strncmp(entry, env_prefixes[i], strlen(env_prefixes[i])) == 0)
            return 1;
    return 0;
}

static int by_string(const void *left, const void *right)
{
    return strcmp(*(char *const *)left, *(char *const *)right);
}

void host_env(struct json *json)
{
    size_t count = 0;
    for (char **entry = environ; *entry != NULL; entry++)
        count++;
    char **chosen = calloc(count + 1, sizeof *chosen);
    size_t kept = 0;
    for (size_t i = 0; chosen != NULL && i < count; i++)
        if (wanted_variable(environ[i]) && strchr(environ[i], '=') != NULL)
            chosen[kept++] = environ[i];
    qsort(chosen, kept, sizeof *chosen, by_string);
    json_object(json, "env");
    for (size_t i = 0; i < kept; i++) {
        const char *equals = strchr(chosen[i], '=');
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(equals - chosen[i]), chosen[i]);
        json_string(json, name, equals + 1);
    }
    json_end(json, '}');
    free(chosen);
}

static char node_type(mode_t mode)
{
    return S_ISCHR(mode)   ? 'c'
           : S_ISBLK(mode) ? 'b'
           : S_ISDIR(mode) ? 'd'
           : S_ISLNK(mode) ? 'l'
           : S_ISREG(mode) ? 'f'
                           : '?';
}

static void one_node(struct json *json, const char *path)
{
    struct stat status;
    if (lstat(path, &status) != 0)
        return;
    char type[2] = {node_type(status.st_mode), '\0'}, mode[8];
    snprintf(mode, sizeof mode, "%04o", (unsigned)(status.st_mode & 07777));
    json_object(json, NULL);
    json_string(json, "path", path);
    json_string(json, "type", type);
    json_uint(json, "major", major(status.st_rdev));
    json_uint(json, "minor", minor(status.st_rdev));
    json_string(json, "mode", mode);
    json_end(json, '}');
}

/* Entries of `directory` whose names start with `prefix`, sorted; subdirectories are skipped
 * (listed by their own call). */
static void list_nodes(struct json *json, const char *directory, const char *prefix)
{
    struct dirent **entries = NULL;
    int count = scandir(directory, &entries, NULL, alphasort);
    for (int i = 0; i < count; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", directory, entries[i]->d_name);
        struct stat status;
        if (strncmp(entries[i]->d_name, prefix, strlen(prefix)) == 0 &&
            strcmp(entries[i]->d_name, ".") != 0 && strcmp(entries[i]->d_name, "..") != 0 &&
            lstat(path, &status) == 0 && !S_ISDIR(status.st_mode))
            one_node(json, path);
        free(entries[i]);
    }
    free(entries);
}

void host_devices(struct json *json)
{
    json_array(json, "devices");
    list_nodes(json, "/dev", "nvidia");
    list_nodes(json, "/dev/nvidia-caps", "");
    json_end(json, ']');
}

/* Mount points every container has, which say nothing about what the claim gave it. */
static int boring_mount(const char *point)
{
    static const char *const exact[] = {"/", "/dev", "/dev/pts", "/dev/mqueue", "/dev/console"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(point, exact[i]) == 0)
            return 1;
    return strcmp(point, "/proc") == 0 || strncmp(point, "/proc/", 6) == 0 ||
           strcmp(point, "/sys") == 0 || strncmp(point, "/sys/", 5) == 0;
}

/* One mountinfo line: "id parent major:minor root point options [optional…] - type source
 * super-options" (proc(5)). */
static void one_mount(struct json *json, char *line)
{
    char *fields[6], *cursor = line, *dash = strstr(line, " - ");
    for (int i = 0; i < 6; i++)
        fields[i] = strsep(&cursor, " ");
    if (fields[5] == NULL || dash == NULL || boring_mount(fields[4]))
        return;
    char *rest = dash + 3, *type = strsep(&rest, " "), *source = strsep(&rest, " ");
    if (rest != NULL)
        rest[strcspn(rest, "\n")] = '\0';
    json_object(json, NULL);
    json_string(json, "path", fields[4]);
    json_string(json, "root", fields[3]);
    json_string(json, "options", fields[5]);
    json_bool(json, "ro", strcmp(fields[5], "ro") == 0 || strncmp(fields[5], "ro,", 3) == 0);
    json_string(json, "fstype", type);
    json_string(json, "source", source);
    json_string(json, "super_options", rest);
    json_end(json, '}');
}

void host_mounts(struct json *json)
{
    json_array(json, "mounts");
    FILE *file = fopen("/proc/self/mountinfo", "r");
    char *line = NULL;
    size_t size = 0;
    while (file != NULL && getline(&line, &size, file) > 0)
        one_mount(json, line);
    free(line);
    if (file != NULL)
        fclose(file);
    json_end(json, ']');
}

/* The path of a mapped library whose file name contains `needle`, from /proc/self/maps. */
static int mapped(const char *needle, char *found, size_t found_size)
{
    FILE *file = fopen("/proc/self/maps", "r");
    char *line = NULL;
    size_t size = 0;
    int seen = 0;
    while (!seen && file != NULL && getline(&line, &size, file) > 0) {
        char *path = strchr(line, '/');
        if (path != NULL && strstr(path, needle) != NULL) {
            path[strcspn(path, "\n")] = '\0';
            snprintf(found, found_size, "%s", path);
            seen = 1;
        }
    }
    free(line);
    if (file != NULL)
        fclose(file);
    return seen;
}

void host_preload(struct json *json)
{
    json_object(json, "preload");
    FILE *file = fopen("/etc/ld.so.preload", "r");
    if (file != NULL) {
        char content[4096];
        size_t length = fread(content, 1, sizeof content, file);
        fclose(file);
        json_stringn(json, "file", content, length);
    } else {
        json_null(json, "file");
    }
    char library[512];
    int found = mapped("libgpuquota", library, sizeof library);
    json_bool(json, "mapped", found);
    json_string(json, "library", found ? library : NULL);
    json_end(json, '}');
}
