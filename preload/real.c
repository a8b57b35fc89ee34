/* Finding the driver's functions behind our hooks (hooks.h), and glibc's dlsym. */
#define _GNU_SOURCE
#include "hooks.h"

#include <dlfcn.h>
#include <string.h>

const struct gpuq_hook gpuq_hooks[GPUQ_HOOK_COUNT] = {
#define GPUQ_HOOK_ENTRY(name, lib, base, since, ptsz)                                             \
    {#name, GPUQ_LIB_##lib, (void *)name, base, since, ptsz},
    GPUQ_HOOKS(GPUQ_HOOK_ENTRY)
#undef GPUQ_HOOK_ENTRY
};

static const char *const helper_names[GPUQ_FN_COUNT - GPUQ_HOOK_COUNT] = {
#define GPUQ_HELPER_NAME(name, lib) #name,
    GPUQ_HELPERS(GPUQ_HELPER_NAME)
#undef GPUQ_HELPER_NAME
};

static const enum gpuq_lib helper_libs[GPUQ_FN_COUNT - GPUQ_HOOK_COUNT] = {
#define GPUQ_HELPER_LIB(name, lib) GPUQ_LIB_##lib,
    GPUQ_HELPERS(GPUQ_HELPER_LIB)
#undef GPUQ_HELPER_LIB
};

static const char *const sonames[] = {"libcuda.so.1", "libnvidia-ml.so.1"};
static void *handles[2];
static void *reals[GPUQ_FN_COUNT];

#if defined(__aarch64__)
#define GLIBC_BASE_VERSION "GLIBC_2.17"
#else
#define GLIBC_BASE_VERSION "GLIBC_2.2.5"
#endif

gpuq_dlsym_fn gpuq_real_dlsym(void)
{
    static gpuq_dlsym_fn real;
    gpuq_dlsym_fn found = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (found == NULL) {
        found = (gpuq_dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
        if (found == NULL)
            found = (gpuq_dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", GLIBC_BASE_VERSION);
        __atomic_store_n(&real, found, __ATOMIC_RELEASE);
    }
    return found;
}

static void *keep_handle(enum gpuq_lib lib, void *handle)
{
    void *expected = NULL;
    if (handle != NULL && !__atomic_compare_exchange_n(&handles[lib], &expected, handle, 0,
                                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        dlclose(handle); /* another thread was first; drop our extra reference */
        return expected;
    }
    return handle;
}

void *gpuq_library_loaded(enum gpuq_lib lib)
{
    void *handle = __atomic_load_n(&handles[lib], __ATOMIC_ACQUIRE);
    if (handle == NULL)
        handle = keep_handle(lib, dlopen(sonames[lib], RTLD_LAZY | RTLD_NOLOAD));
    return handle;
}

void *gpuq_library(enum gpuq_lib lib)
{
    void *handle = gpuq_library_loaded(lib);
    if (handle == NULL)
        handle = keep_handle(lib, dlopen(sonames[lib], RTLD_NOW | RTLD_LOCAL));
    return handle;
}

int gpuq_hook_find(const char *name)
{
    for (int i = 0; i < GPUQ_HOOK_COUNT; i++)
        if (strcmp(gpuq_hooks[i].name, name) == 0)
            return i;
    return -1;
}

static int is_ours(void *function)
{
    for (int i = 0; i < GPUQ_HOOK_COUNT; i++)
        if (gpuq_hooks[i].wrapper == function)
            return 1;
    return 0;
}

void *gpuq_real(enum gpuq_fn fn)
{
    void *function = __atomic_load_n(&reals[fn], __ATOMIC_ACQUIRE);
    if (function != NULL)
        return function;
    int hook = (int)fn < (int)GPUQ_HOOK_COUNT;
    enum gpuq_lib lib = hook ? gpuq_hooks[fn].lib : helper_libs[fn - GPUQ_HOOK_COUNT];
    const char *name = hook ? gpuq_hooks[fn].name : helper_names[fn - GPUQ_HOOK_COUNT];
    void *handle = gpuq_library(lib);
    gpuq_dlsym_fn real_dlsym = gpuq_real_dlsym();
    if (handle == NULL || real_dlsym == NULL)
        return NULL;
    function = real_dlsym(handle, name);
    if (function == NULL || is_ours(function))
        return NULL;
    gpuq_real_adopt(fn, function);
    return __atomic_load_n(&reals[fn], __ATOMIC_ACQUIRE);
}

void gpuq_real_adopt(enum gpuq_fn fn, void *function)
{
    void *expected = NULL;
    if (function != NULL && !is_ours(function))
        __atomic_compare_exchange_n(&reals[fn], &expected, function, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED);
}
