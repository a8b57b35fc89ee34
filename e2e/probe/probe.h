/* The probe's options and the sections of its report, one file per concern:
 *
 *   probe.c        command line, the report line, --hold
 *   host.c         env, devices, ldcache, mounts, preload (what the container was given)
 *   ldcache.c      ldconfig -p, or /etc/ld.so.cache read directly when the image has no ldconfig
 *   cuda.c         the driver as a program sees it: devices, UUIDs, memory; the allocation test
 *   kernel.c       a PTX kernel, JIT-compiled by the driver, launched and checked
 *   driver.c       dlopen("libcuda.so.1"), the entry points, error names
 *   json.c         the JSON writer */
#ifndef PROBE_H
#define PROBE_H

#include "driver.h"
#include "json.h"

struct options {
    int device;                   /* CUDA ordinal of the allocation and kernel tests */
    unsigned long long alloc_step; /* 0: no allocation test */
    unsigned long long alloc_max;  /* 0: until the first error */
    int kernel;
    int hold;
    long hold_seconds;      /* 0: until SIGTERM/SIGINT */
    const char *ldcache_file; /* read this cache file instead of running ldconfig */
    const char *print_ptx;    /* print the kernel's PTX for this target instead of a report */
};

void host_env(struct json *json);
void host_devices(struct json *json);
void host_mounts(struct json *json);
void host_preload(struct json *json);
/* From ldconfig -p, or from `cache_file` (NULL: ldconfig, falling back to /etc/ld.so.cache). */
void ldcache_section(struct json *json, const char *cache_file);

/* The "cuda", "alloc" and "kernel" members; `driver` is NULL when libcuda could not be used. */
const struct driver *cuda_section(struct json *json, struct driver *driver);
void cuda_alloc(struct json *json, const struct driver *driver, const struct options *options);
void kernel_section(struct json *json, const struct driver *driver, int ordinal);

/* Prints the kernel's PTX for target `sm` (e.g. "sm_70"), for checking it with ptxas. */
int kernel_print_ptx(const char *sm);

#endif
