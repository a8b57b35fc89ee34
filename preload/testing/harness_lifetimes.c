/* A test program for device memory whose life is not one allocation call and one free: VMM
 * handles, mappings and exports; streams and memory pools; context limits; graph memory nodes;
 * mipmapped arrays; module and library globals. Linked with -lcuda (the fake); with the library
 * in LD_PRELOAD its calls bind to the library's exports.
 *
 *   harness_lifetimes COMMANDS…     (or, without any, one line of commands at a time from stdin)
 *
 * Each command prints "<command> [name] rc=<CUresult> …", flushed. Values (handles, addresses,
 * streams, pools, descriptors…) are kept under NAMEs; "-" as a stream is the NULL stream. Sizes
 * take K, M, G suffixes.
 *
 *   dev N                     make device N's primary context current (device 0 is at start)
 *   nocontext                 no current context
 *   held N                    the memory the fake's device N holds (prints bytes=)
 *   alloc P SIZE / free P     cuMemAlloc_v2 / cuMemFree_v2
 *   create H SIZE             cuMemCreate on the current device
 *   reserve V SIZE            cuMemAddressReserve
 *   map V H SIZE              cuMemMap(V, SIZE, 0, H)          unmap V SIZE   cuMemUnmap
 *   release H                 cuMemRelease                      retain H V    cuMemRetainAllocationHandle
 *   export H F                cuMemExportToShareableHandle (a descriptor, kept as F)
 *   import H F                cuMemImportFromShareableHandle of descriptor F
 *   closefd F                 close(F)                          open F PATH   open(PATH) as F
 *   stream S                  cuStreamCreate                    sync S        cuStreamSynchronize
 *   ctxsync                   cuCtxSynchronize
 *   async P SIZE S            cuMemAllocAsync on S              freeasync P S cuMemFreeAsync on S
 *   newpool Q DEV             cuMemPoolCreate on device DEV     setpool DEV Q cuDeviceSetMemPool
 *   defaultpool Q DEV         cuDeviceGetDefaultMemPool
 *   poolalloc P Q SIZE S      cuMemAllocFromPoolAsync
 *   threshold Q BYTES         the pool's release threshold
 *   reserved Q                the pool's RESERVED_MEM_CURRENT (prints bytes=)
 *   trim Q KEEP               cuMemPoolTrimTo                   destroypool Q cuMemPoolDestroy
 *   limit stack|printf|heap VALUE   cuCtxSetLimit
 *   graph G                   cuGraphCreate                     graphalloc G DEV SIZE  a memory node
 *   mipmap M W H D LEVELS     cuMipmappedArrayCreate (float)    mipfree M     cuMipmappedArrayDestroy
 *   module M / library L      cuModuleLoad / cuLibraryLoadFromFile
 *   global M NAME             cuModuleGetGlobal_v2 (the fake's "g64M" is a 64 MiB global)
 *   libglobal L NAME          cuLibraryGetGlobal
 *   unload M / libunload L    cuModuleUnload / cuLibraryUnload
 *   wait                      print "wait", then read a line from stdin */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cuda_abi.h"

uint64_t fake_cuda_held(int device); /* the fake's own */

#define MAX_NAMED 512

static struct {
    char name[32];
    unsigned long long value;
} named[MAX_NAMED];
static int named_count, current_device;

static unsigned long long size_of(const char *text)
{
    char *end;
    unsigned long long value = strtoull(text, &end, 0);
    return *end == 'K' ? value << 10 : *end == 'M' ? value << 20 : *end == 'G' ? value << 30 : value;
}

static void keep(const char *name, unsigned long long value)
{
    for (int i = 0; i < named_count; i++)
        if (strcmp(named[i].name, name) == 0) {
            named[i].value = value;
            return;
        }
    if (named_count < MAX_NAMED) {
        snprintf(named[named_count].name, sizeof named[0].name, "%s", name);
        named[named_count++].value = value;
    }
}

static unsigned long long value_of(const char *name)
{
    if (strcmp(name, "-") == 0)
        return 0;
    for (int i = 0; i < named_count; i++)
        if (strcmp(named[i].name, name) == 0)
            return named[i].value;
    return strtoull(name, NULL, 0);
}

#define PTR(name) ((void *)(uintptr_t)value_of(name))

static CUresult make_current(int device)
{
    CUcontext ctx;
    CUresult result = cuDevicePrimaryCtxRetain(&ctx, device);
    if (result == CUDA_SUCCESS)
        result = cuCtxSetCurrent(ctx);
    if (result == CUDA_SUCCESS)
        current_device = device;
    return result;
}

static const struct {
    const char *name;
    int words;
} arity[] = {
    {"dev", 2},       {"nocontext", 1}, {"held", 2},      {"alloc", 3},     {"free", 2},
    {"create", 3},    {"reserve", 3},   {"map", 4},       {"unmap", 3},     {"release", 2},
    {"retain", 3},    {"export", 3},    {"import", 3},    {"closefd", 2},   {"open", 3},      {"stream", 2},
    {"sync", 2},      {"ctxsync", 1},   {"async", 4},     {"freeasync", 3}, {"newpool", 3},
    {"setpool", 3},   {"defaultpool", 3}, {"poolalloc", 5}, {"threshold", 3}, {"reserved", 2},
    {"trim", 3},      {"destroypool", 2}, {"limit", 3},   {"graph", 2},     {"graphalloc", 4},
    {"mipmap", 6},    {"mipfree", 2},   {"module", 2},    {"library", 2},   {"global", 3},
    {"libglobal", 3}, {"unload", 2},    {"libunload", 2}, {"wait", 1},
};

/* Runs the command at args[0]; returns how many words it used, or -1. */
static int run(char **args, int available)
{
    const char *c = args[0];
    int words = -1;
    for (size_t i = 0; i < sizeof arity / sizeof arity[0]; i++)
        if (strcmp(arity[i].name, c) == 0)
            words = arity[i].words;
    if (words < 0 || words > available) {
        printf("%s error=usage\n", c);
        return -1;
    }
    CUresult rc = CUDA_SUCCESS;
    unsigned long long out = 0;
    const char *a1 = words > 1 ? args[1] : "", *a2 = words > 2 ? args[2] : "";
    const char *a3 = words > 3 ? args[3] : "", *a4 = words > 4 ? args[4] : "";
    if (strcmp(c, "dev") == 0) {
        rc = make_current(atoi(a1));
    } else if (strcmp(c, "nocontext") == 0) {
        rc = cuCtxSetCurrent(NULL);
    } else if (strcmp(c, "held") == 0) {
        printf("held rc=0 bytes=%llu\n", (unsigned long long)fake_cuda_held(atoi(a1)));
        fflush(stdout);
        return words;
    } else if (strcmp(c, "alloc") == 0) {
        CUdeviceptr p = 0;
        if ((rc = cuMemAlloc_v2(&p, size_of(a2))) == CUDA_SUCCESS)
            keep(a1, p);
    } else if (strcmp(c, "free") == 0) {
        rc = cuMemFree_v2(value_of(a1));
    } else if (strcmp(c, "create") == 0) {
        CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                    .requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
                                    .location = {CU_MEM_LOCATION_TYPE_DEVICE, current_device}};
        CUmemGenericAllocationHandle h = 0;
        if ((rc = cuMemCreate(&h, size_of(a2), &prop, 0)) == CUDA_SUCCESS)
            keep(a1, h);
    } else if (strcmp(c, "reserve") == 0) {
        CUdeviceptr p = 0;
        if ((rc = cuMemAddressReserve(&p, size_of(a2), 0, 0, 0)) == CUDA_SUCCESS)
            keep(a1, p);
    } else if (strcmp(c, "map") == 0) {
        rc = cuMemMap(value_of(a1), size_of(a3), 0, value_of(a2), 0);
    } else if (strcmp(c, "unmap") == 0) {
        rc = cuMemUnmap(value_of(a1), size_of(a2));
    } else if (strcmp(c, "release") == 0) {
        rc = cuMemRelease(value_of(a1));
    } else if (strcmp(c, "retain") == 0) {
        CUmemGenericAllocationHandle h = 0;
        if ((rc = cuMemRetainAllocationHandle(&h, PTR(a2))) == CUDA_SUCCESS)
            keep(a1, h);
    } else if (strcmp(c, "export") == 0) {
        int fd = -1;
        rc = cuMemExportToShareableHandle(&fd, value_of(a1),
                                          CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
        if (rc == CUDA_SUCCESS)
            keep(a2, (unsigned long long)fd);
        out = (unsigned long long)fd;
    } else if (strcmp(c, "import") == 0) {
        CUmemGenericAllocationHandle h = 0;
        rc = cuMemImportFromShareableHandle(&h, PTR(a2), CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
        if (rc == CUDA_SUCCESS)
            keep(a1, h);
    } else if (strcmp(c, "open") == 0) {
        int fd = open(a2, O_RDONLY | O_CLOEXEC);
        rc = fd >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
        keep(a1, (unsigned long long)fd);
    } else if (strcmp(c, "closefd") == 0) {
        rc = close((int)value_of(a1)) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    } else if (strcmp(c, "stream") == 0) {
        CUstream s = NULL;
        if ((rc = cuStreamCreate(&s, 0)) == CUDA_SUCCESS)
            keep(a1, (uintptr_t)s);
    } else if (strcmp(c, "sync") == 0) {
        rc = cuStreamSynchronize(PTR(a1));
    } else if (strcmp(c, "ctxsync") == 0) {
        rc = cuCtxSynchronize();
    } else if (strcmp(c, "async") == 0) {
        CUdeviceptr p = 0;
        if ((rc = cuMemAllocAsync(&p, size_of(a2), PTR(a3))) == CUDA_SUCCESS)
            keep(a1, p);
    } else if (strcmp(c, "freeasync") == 0) {
        rc = cuMemFreeAsync(value_of(a1), PTR(a2));
    } else if (strcmp(c, "newpool") == 0) {
        CUmemPoolProps props = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {CU_MEM_LOCATION_TYPE_DEVICE, atoi(a2)}};
        CUmemoryPool q = NULL;
        if ((rc = cuMemPoolCreate(&q, &props)) == CUDA_SUCCESS)
            keep(a1, (uintptr_t)q);
    } else if (strcmp(c, "setpool") == 0) {
        rc = cuDeviceSetMemPool(atoi(a1), PTR(a2));
    } else if (strcmp(c, "defaultpool") == 0) {
        CUmemoryPool q = NULL;
        if ((rc = cuDeviceGetDefaultMemPool(&q, atoi(a2))) == CUDA_SUCCESS)
            keep(a1, (uintptr_t)q);
    } else if (strcmp(c, "poolalloc") == 0) {
        CUdeviceptr p = 0;
        if ((rc = cuMemAllocFromPoolAsync(&p, size_of(a3), PTR(a2), PTR(a4))) == CUDA_SUCCESS)
            keep(a1, p);
    } else if (strcmp(c, "threshold") == 0) {
        cuuint64_t bytes = size_of(a2);
        rc = cuMemPoolSetAttribute(PTR(a1), CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &bytes);
    } else if (strcmp(c, "reserved") == 0) {
        cuuint64_t bytes = 0;
        rc = cuMemPoolGetAttribute(PTR(a1), CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &bytes);
        out = bytes;
    } else if (strcmp(c, "trim") == 0) {
        rc = cuMemPoolTrimTo(PTR(a1), size_of(a2));
    } else if (strcmp(c, "destroypool") == 0) {
        rc = cuMemPoolDestroy(PTR(a1));
    } else if (strcmp(c, "limit") == 0) {
        CUlimit limit = strcmp(a1, "stack") == 0    ? CU_LIMIT_STACK_SIZE
                        : strcmp(a1, "printf") == 0 ? CU_LIMIT_PRINTF_FIFO_SIZE
                                                    : CU_LIMIT_MALLOC_HEAP_SIZE;
        rc = cuCtxSetLimit(limit, size_of(a2));
    } else if (strcmp(c, "graph") == 0) {
        CUgraph g = NULL;
        if ((rc = cuGraphCreate(&g, 0)) == CUDA_SUCCESS)
            keep(a1, (uintptr_t)g);
    } else if (strcmp(c, "graphalloc") == 0) {
        CUDA_MEM_ALLOC_NODE_PARAMS params = {
            .poolProps = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                          .location = {CU_MEM_LOCATION_TYPE_DEVICE, atoi(a2)}},
            .bytesize = size_of(a3)};
        CUgraphNode node = NULL;
        rc = cuGraphAddMemAllocNode(&node, PTR(a1), NULL, 0, &params);
    } else if (strcmp(c, "mipmap") == 0) {
        CUDA_ARRAY3D_DESCRIPTOR desc = {size_of(a2), size_of(a3), size_of(a4), CU_AD_FORMAT_FLOAT,
                                        1, 0};
        CUmipmappedArray m = NULL;
        if ((rc = cuMipmappedArrayCreate(&m, &desc, (unsigned)atoi(args[5]))) == CUDA_SUCCESS)
            keep(a1, (uintptr_t)m);
    } else if (strcmp(c, "mipfree") == 0) {
        rc = cuMipmappedArrayDestroy(PTR(a1));
    } else if (strcmp(c, "module") == 0) {
        CUmodule m = NULL;
        if ((rc = cuModuleLoad(&m, "fake.cubin")) == CUDA_SUCCESS)
            keep(a1, (uintptr_t)m);
    } else if (strcmp(c, "library") == 0) {
        CUlibrary l = NULL;
        if ((rc = cuLibraryLoadFromFile(&l, "fake.fatbin", NULL, NULL, 0, NULL, NULL, 0)) ==
            CUDA_SUCCESS)
            keep(a1, (uintptr_t)l);
    } else if (strcmp(c, "global") == 0 || strcmp(c, "libglobal") == 0) {
        CUdeviceptr p = 0;
        size_t bytes = 0;
        rc = c[0] == 'g' ? cuModuleGetGlobal_v2(&p, &bytes, PTR(a1), a2)
                         : cuLibraryGetGlobal(&p, &bytes, PTR(a1), a2);
        out = bytes;
    } else if (strcmp(c, "unload") == 0) {
        rc = cuModuleUnload(PTR(a1));
    } else if (strcmp(c, "libunload") == 0) {
        rc = cuLibraryUnload(PTR(a1));
    } else if (strcmp(c, "wait") == 0) {
        char line[64];
        printf("wait\n");
        fflush(stdout);
        return fgets(line, sizeof line, stdin) == NULL ? -1 : words;
    }
    printf("%s%s%s rc=%d", c, words > 1 ? " " : "", a1, rc);
    if (strcmp(c, "export") == 0 || strcmp(c, "reserved") == 0 || strcmp(c, "global") == 0 ||
        strcmp(c, "libglobal") == 0)
        printf(" value=%llu", out);
    printf("\n");
    fflush(stdout);
    return words;
}

static int run_words(char **words, int count)
{
    for (int i = 0; i < count;) {
        int used = run(words + i, count - i);
        if (used < 0)
            return 1;
        i += used;
    }
    return 0;
}

int main(int argc, char **argv)
{
    CUresult result = cuInit(0);
    if (result == CUDA_SUCCESS)
        result = make_current(0);
    if (result != CUDA_SUCCESS) {
        printf("init rc=%d\n", result);
        return 2;
    }
    if (argc > 1)
        return run_words(argv + 1, argc - 1);
    char line[1024];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *words[64], *save = NULL;
        int count = 0;
        for (char *word = strtok_r(line, " \t\n", &save); word != NULL && count < 64;
             word = strtok_r(NULL, " \t\n", &save))
            words[count++] = word;
        if (count > 0 && run_words(words, count) != 0)
            return 1;
    }
    return 0;
}
