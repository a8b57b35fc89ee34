/* The container test program of the end-to-end and device checks: it prints ONE line of JSON,
 * what this container was given and what a CUDA program in it can do, then exits 0, or with
 * --hold stays (keeping its context and allocations) until SIGTERM or SIGINT and then exits 0.
 * It exits non-zero only when it cannot produce the report (usage errors: 2).
 *
 *   probe [--device N] [--kernel] [--alloc-step SIZE [--alloc-max SIZE]]
 *         [--hold [--hold-seconds S]] [--ldcache-file PATH]
 *   probe --print-ptx sm_XY        (the kernel's PTX, for checking it with ptxas)
 *
 * SIZE is bytes, or a number with Ki, Mi or Gi. The report's members are described in README.md;
 * the sections live in the files listed in probe.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

#define REPORT_VERSION 1

static const char usage[] =
    "usage: probe [--device N] [--kernel] [--alloc-step SIZE [--alloc-max SIZE]]\n"
    "             [--hold [--hold-seconds S]] [--ldcache-file PATH]\n"
    "       probe --print-ptx sm_XY\n";

static int parse_size(const char *text, unsigned long long *bytes)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    unsigned shift = strcmp(end, "Ki") == 0   ? 10
                     : strcmp(end, "Mi") == 0 ? 20
                     : strcmp(end, "Gi") == 0 ? 30
                                              : 0;
    if (errno != 0 || end == text || (*end != '\0' && shift == 0) || value > (~0ull >> shift))
        return -1;
    *bytes = value << shift;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *options)
{
    memset(options, 0, sizeof *options);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1;
        if (strcmp(arg, "--kernel") == 0) {
            options->kernel = 1, takes_value = 0;
        } else if (strcmp(arg, "--hold") == 0) {
            options->hold = 1, takes_value = 0;
        } else if (value == NULL) {
            return -1;
        } else if (strcmp(arg, "--device") == 0) {
            options->device = atoi(value);
        } else if (strcmp(arg, "--alloc-step") == 0) {
            if (parse_size(value, &options->alloc_step) != 0 || options->alloc_step == 0)
                return -1;
        } else if (strcmp(arg, "--alloc-max") == 0) {
            if (parse_size(value, &options->alloc_max) != 0)
                return -1;
        } else if (strcmp(arg, "--hold-seconds") == 0) {
            options->hold_seconds = atol(value);
        } else if (strcmp(arg, "--ldcache-file") == 0) {
            options->ldcache_file = value;
        } else if (strcmp(arg, "--print-ptx") == 0) {
            options->print_ptx = value;
        } else {
            return -1;
        }
        i += takes_value;
    }
    return options->alloc_max != 0 && options->alloc_step == 0 ? -1 : 0;
}

static void header(struct json *json, int argc, char **argv)
{
    json_object(json, "probe");
    json_int(json, "version", REPORT_VERSION);
    json_int(json, "pid", getpid());
    json_int(json, "uid", getuid());
    json_array(json, "args");
    for (int i = 1; i < argc; i++)
        json_string(json, NULL, argv[i]);
    json_end(json, ']');
    json_end(json, '}');
}

static void report(struct json *json, const struct options *options, int argc, char **argv)
{
    static struct driver driver;
    json_object(json, NULL);
    header(json, argc, argv);
    host_env(json);
    host_devices(json);
    host_mounts(json);
    ldcache_section(json, options->ldcache_file); /* spawns ldconfig: before the driver starts */
    const struct driver *usable = cuda_section(json, &driver);
    /* The kernel's buffer is freed again; it runs first so that a share's quota, filled by the
     * allocation test, cannot starve it. */
    if (options->kernel)
        kernel_section(json, usable, options->device);
    else
        json_null(json, "kernel");
    if (options->alloc_step != 0)
        cuda_alloc(json, usable, options);
    else
        json_null(json, "alloc");
    host_preload(json);
    json_end(json, '}');
}

/* Waits for SIGTERM or SIGINT (blocked since start-up, so also as PID 1 of a container, where
 * default-action signals would be dropped), or for `seconds` when positive. */
static void hold(const sigset_t *stop, long seconds)
{
    if (seconds <= 0) {
        int signal_number;
        while (sigwait(stop, &signal_number) != 0)
            ;
        return;
    }
    struct timespec left = {seconds, 0};
    while (sigtimedwait(stop, NULL, &left) < 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    struct options options;
    if (parse_options(argc, argv, &options) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (options.print_ptx != NULL)
        return kernel_print_ptx(options.print_ptx) == 0 ? 0 : 1;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (options.hold) /* before the driver starts its threads, so they inherit the mask */
        sigprocmask(SIG_BLOCK, &stop, NULL);
    char *line = NULL;
    size_t length = 0;
    FILE *buffer = open_memstream(&line, &length);
    if (buffer == NULL) {
        perror("probe: open_memstream");
        return 1;
    }
    struct json json;
    json_start(&json, buffer);
    report(&json, &options, argc, argv);
    fputc('\n', buffer);
    if (fclose(buffer) != 0 || fwrite(line, 1, length, stdout) != length || fflush(stdout) != 0) {
        perror("probe: writing the report");
        return 1;
    }
    free(line);
    if (options.hold)
        hold(&stop, options.hold_seconds);
    return 0;
}
