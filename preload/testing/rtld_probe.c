/* Built twice, as libprobe_first.so (-DPROBE_NAME='"first"' -DPROBE_NEXT) and
 * libprobe_second.so (-DPROBE_NAME='"second"'); rtld_next_check links both, first before second.
 * probe_next() in the first asks dlsym(RTLD_NEXT, "probe_name"), which must find the second's:
 * an interposed dlsym that is not a tail call would make glibc think the caller is the quota
 * library, and the answer would be the first library's own function. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

__attribute__((visibility("default"))) const char *probe_name(void)
{
    return PROBE_NAME;
}

#ifdef PROBE_NEXT
__attribute__((visibility("default"))) const char *probe_next(void)
{
    const char *(*next)(void) = (const char *(*)(void))dlsym(RTLD_NEXT, "probe_name");
    return next != NULL ? next() : "none";
}
#endif
