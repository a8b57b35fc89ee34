/* dlsym: a lookup on the libcuda.so.1 or libnvidia-ml.so.1 handle of a name we interpose gets
 * our wrapper (a handle lookup would otherwise bypass LD_PRELOAD). Everything else goes to glibc's
 * dlsym as a tail call, so glibc still sees the original caller's return address and RTLD_NEXT
 * keeps meaning "after the caller" (tests/preload checks this). The guard keeps a lookup made
 * while deciding from coming back here. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "hooks.h"

static __thread int deciding __attribute__((tls_model("initial-exec")));

static void *redirect(void *handle, const char *symbol)
{
    if (deciding || handle == RTLD_DEFAULT || handle == RTLD_NEXT ||
        (strncmp(symbol, "cu", 2) != 0 && strncmp(symbol, "nvml", 4) != 0))
        return NULL;
    int hook = gpuq_hook_find(symbol);
    if (hook < 0)
        return NULL;
    deciding = 1;
    void *library = gpuq_library_loaded(gpuq_hooks[hook].lib);
    deciding = 0;
    return library == handle ? gpuq_hooks[hook].wrapper : NULL;
}

GPUQ_EXPORT void *dlsym(void *handle, const char *symbol)
{
    void *wrapper = redirect(handle, symbol);
    if (wrapper != NULL)
        return wrapper;
    gpuq_dlsym_fn real = gpuq_real_dlsym();
    return real != NULL ? real(handle, symbol) : NULL; /* a tail call: see above */
}
