/* A test program that finds the driver the way the CUDA runtime does: dlopen("libcuda.so.1"),
 * dlsym(handle, "cuGetProcAddress_v2"), ask that for "cuGetProcAddress", then resolve every other
 * function through it with a cudaVersion and flags. NVML is dlopen'ed and looked up with dlsym.
 *
 *   harness_runtime [--resolve=getproc|dlsym] [--version=N] [--flags=N] COMMANDS…
 *
 * --resolve=dlsym looks every function up with dlsym on the libcuda handle instead (the exported
 * names: cuMemAlloc_v2, and cuMemAllocAsync_ptsz etc. when --flags=2). After resolving, it prints
 * "resolved NAME in=<file> symbol=<symbol>" for the allocation functions (dladdr), so a test can
 * see whose function it got. Commands: see harness_commands.c. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void *cuda;
static CUresult (*getproc)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
static int use_dlsym, version = 12000;
static cuuint64_t flags;

static void *resolve(const char *name, const char *exported, const char *exported_ptsz)
{
    void *function = NULL;
    if (use_dlsym) {
        const char *symbol = flags == 2 && exported_ptsz != NULL ? exported_ptsz : exported;
        function = dlsym(cuda, symbol);
    } else {
        CUdriverProcAddressQueryResult status = -1;
        CUresult result = getproc(name, &function, version, flags, &status);
        if (result != CUDA_SUCCESS)
            function = NULL;
    }
    if (function == NULL) {
        printf("resolve %s error=not-found\n", name);
        exit(2);
    }
    return function;
}

static void show(const char *name, void *function)
{
    Dl_info info = {0};
    dladdr(function, &info);
    const char *file = info.dli_fname != NULL ? strrchr(info.dli_fname, '/') : NULL;
    printf("resolved %s in=%s symbol=%s\n", name,
           file != NULL ? file + 1 : (info.dli_fname ? info.dli_fname : "?"),
           info.dli_sname ? info.dli_sname : "?");
}

static int load_nvml(struct harness_api *api)
{
    void *nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (nvml == NULL)
        return -1;
    api->nvmlInit_v2 = (nvmlReturn_t(*)(void))dlsym(nvml, "nvmlInit_v2");
    api->nvmlDeviceGetHandleByIndex_v2 = (nvmlReturn_t(*)(unsigned int, nvmlDevice_t *))dlsym(
        nvml, "nvmlDeviceGetHandleByIndex_v2");
    api->nvmlDeviceGetMemoryInfo =
        (nvmlReturn_t(*)(nvmlDevice_t, nvmlMemory_t *))dlsym(nvml, "nvmlDeviceGetMemoryInfo");
    api->nvmlDeviceGetMemoryInfo_v2 = (nvmlReturn_t(*)(nvmlDevice_t, nvmlMemory_v2_t *))dlsym(
        nvml, "nvmlDeviceGetMemoryInfo_v2");
    if (api->nvmlInit_v2 == NULL || api->nvmlDeviceGetHandleByIndex_v2 == NULL ||
        api->nvmlDeviceGetMemoryInfo == NULL || api->nvmlDeviceGetMemoryInfo_v2 == NULL)
        return -1;
    return 0;
}

#define RESOLVE(field, name, exported, ptsz) api.field = (__typeof__(api.field))resolve(name, exported, ptsz)

int main(int argc, char **argv)
{
    int first = 1;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        if (strcmp(argv[first], "--resolve=dlsym") == 0)
            use_dlsym = 1;
        else if (strncmp(argv[first], "--version=", 10) == 0)
            version = atoi(argv[first] + 10);
        else if (strncmp(argv[first], "--flags=", 8) == 0)
            flags = strtoull(argv[first] + 8, NULL, 0);
    }
    cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (cuda == NULL) {
        printf("dlopen error=%s\n", dlerror());
        return 2;
    }
    if (!use_dlsym) {
        /* The runtime's bootstrap: the exported cuGetProcAddress_v2, then ask it for itself. */
        __typeof__(getproc) bootstrap = (__typeof__(getproc))dlsym(cuda, "cuGetProcAddress_v2");
        if (bootstrap == NULL || bootstrap("cuGetProcAddress", (void **)&getproc, version, flags,
                                           NULL) != CUDA_SUCCESS) {
            printf("resolve cuGetProcAddress error=not-found\n");
            return 2;
        }
        show("cuGetProcAddress", (void *)getproc);
    }
    struct harness_api api = {.load_nvml = load_nvml};
    RESOLVE(cuInit, "cuInit", "cuInit", NULL);
    RESOLVE(cuDeviceGet, "cuDeviceGet", "cuDeviceGet", NULL);
    RESOLVE(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain", NULL);
    RESOLVE(cuCtxSetCurrent, "cuCtxSetCurrent", "cuCtxSetCurrent", NULL);
    RESOLVE(cuDeviceGetUuid_v2, "cuDeviceGetUuid", "cuDeviceGetUuid_v2", NULL);
    RESOLVE(cuDeviceGetDefaultMemPool, "cuDeviceGetDefaultMemPool", "cuDeviceGetDefaultMemPool",
            NULL);
    RESOLVE(cuMemAlloc_v2, "cuMemAlloc", "cuMemAlloc_v2", NULL);
    RESOLVE(cuMemFree_v2, "cuMemFree", "cuMemFree_v2", NULL);
    RESOLVE(cuMemAllocPitch_v2, "cuMemAllocPitch", "cuMemAllocPitch_v2", NULL);
    RESOLVE(cuMemAllocManaged, "cuMemAllocManaged", "cuMemAllocManaged", NULL);
    RESOLVE(cuMemCreate, "cuMemCreate", "cuMemCreate", NULL);
    RESOLVE(cuMemRelease, "cuMemRelease", "cuMemRelease", NULL);
    RESOLVE(cuMemAllocAsync, "cuMemAllocAsync", "cuMemAllocAsync", "cuMemAllocAsync_ptsz");
    RESOLVE(cuMemFreeAsync, "cuMemFreeAsync", "cuMemFreeAsync", "cuMemFreeAsync_ptsz");
    RESOLVE(cuMemAllocFromPoolAsync, "cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync",
            "cuMemAllocFromPoolAsync_ptsz");
    RESOLVE(cuArrayCreate_v2, "cuArrayCreate", "cuArrayCreate_v2", NULL);
    RESOLVE(cuArray3DCreate_v2, "cuArray3DCreate", "cuArray3DCreate_v2", NULL);
    RESOLVE(cuArrayDestroy, "cuArrayDestroy", "cuArrayDestroy", NULL);
    RESOLVE(cuMemGetInfo_v2, "cuMemGetInfo", "cuMemGetInfo_v2", NULL);
    RESOLVE(cuDeviceTotalMem_v2, "cuDeviceTotalMem", "cuDeviceTotalMem_v2", NULL);
    show("cuMemAlloc", (void *)api.cuMemAlloc_v2);
    show("cuMemAllocAsync", (void *)api.cuMemAllocAsync);
    show("cuMemFreeAsync", (void *)api.cuMemFreeAsync);
    show("cuMemAllocFromPoolAsync", (void *)api.cuMemAllocFromPoolAsync);
    show("cuMemGetInfo", (void *)api.cuMemGetInfo_v2);
    fflush(stdout);
    return harness_main(&api, argc, argv, first);
}
