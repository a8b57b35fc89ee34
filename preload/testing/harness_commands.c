/* The test programs' commands. Each prints one line, "<command> [name] key=value …", flushed at
 * once so a test can drive a program step by step over stdin. Sizes take K, M, G suffixes.
 *
 *   dev N                 make device N's primary context current (device 0 is current at start)
 *   alloc NAME SIZE       cuMemAlloc_v2 (prints ptr=)    free NAME        the matching free call
 *   pitch NAME W H        cuMemAllocPitch_v2 (4-byte elements; prints the pitch)
 *   managed NAME SIZE     cuMemAllocManaged              vmm NAME SIZE    cuMemCreate on the device
 *   async NAME SIZE       cuMemAllocAsync                pool NAME SIZE   cuMemAllocFromPoolAsync
 *   array NAME W H        cuArrayCreate_v2 (float)       array3d NAME W H D   cuArray3DCreate_v2
 *   freeptr ADDRESS       cuMemFree_v2 of any address    churn N SIZE     N alloc+free pairs
 *   fill SIZE             cuMemAlloc_v2 until it fails, yielding the CPU after each; prints how
 *                         many succeeded (they stay allocated)
 *   info                  cuMemGetInfo_v2                total N          cuDeviceTotalMem_v2
 *   nvml N / nvml2 N      nvmlDeviceGetMemoryInfo / _v2 of device N
 *   uuid N                the device's UUID as cuDeviceGetUuid_v2 gives it
 *   wait                  print "wait", then read a line from stdin
 *   hold                  print "hold", then sleep until killed
 *   sleep MS
 *   fork … endfork        the commands in between run in a child; the parent waits for it */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../uuids.h"
#include "harness.h"

#define MAX_NAMED 1024

enum kind { POINTER, ASYNC, VMM, ARRAY };

struct named {
    char name[32];
    enum kind kind;
    unsigned long long value;
};

static struct named named[MAX_NAMED];
static int named_count;
static const char *prefix = "";
static int current_device;

static unsigned long long size_of(const char *text)
{
    char *end;
    unsigned long long value = strtoull(text, &end, 0);
    switch (*end) {
    case 'K':
        return value << 10;
    case 'M':
        return value << 20;
    case 'G':
        return value << 30;
    default:
        return value;
    }
}

static void remember(const char *name, enum kind kind, unsigned long long value)
{
    if (named_count == MAX_NAMED)
        return;
    snprintf(named[named_count].name, sizeof named[0].name, "%s", name);
    named[named_count].kind = kind;
    named[named_count++].value = value;
}

static struct named *find(const char *name)
{
    for (int i = named_count - 1; i >= 0; i--)
        if (strcmp(named[i].name, name) == 0)
            return &named[i];
    return NULL;
}

static void forget(struct named *entry)
{
    *entry = named[--named_count];
}

static CUresult make_current(struct harness_api *api, int device)
{
    CUdevice dev;
    CUcontext ctx;
    CUresult result = api->cuDeviceGet(&dev, device);
    if (result == CUDA_SUCCESS)
        result = api->cuDevicePrimaryCtxRetain(&ctx, dev);
    if (result == CUDA_SUCCESS)
        result = api->cuCtxSetCurrent(ctx);
    if (result == CUDA_SUCCESS)
        current_device = device;
    return result;
}

static CUresult allocate(struct harness_api *api, const char *command, char **args,
                         unsigned long long *value, enum kind *kind)
{
    unsigned long long size = size_of(args[2]);
    CUdeviceptr pointer = 0;
    CUresult result;
    *kind = POINTER;
    if (strcmp(command, "alloc") == 0) {
        result = api->cuMemAlloc_v2(&pointer, size);
    } else if (strcmp(command, "managed") == 0) {
        result = api->cuMemAllocManaged(&pointer, size, 1);
    } else if (strcmp(command, "async") == 0) {
        *kind = ASYNC;
        result = api->cuMemAllocAsync(&pointer, size, NULL);
    } else if (strcmp(command, "pool") == 0) {
        CUmemoryPool pool;
        *kind = ASYNC;
        result = api->cuDeviceGetDefaultMemPool(&pool, current_device);
        if (result == CUDA_SUCCESS)
            result = api->cuMemAllocFromPoolAsync(&pointer, size, pool, NULL);
    } else { /* vmm */
        CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                    .location = {CU_MEM_LOCATION_TYPE_DEVICE, current_device}};
        CUmemGenericAllocationHandle handle = 0;
        *kind = VMM;
        result = api->cuMemCreate(&handle, size, &prop, 0);
        pointer = handle;
    }
    *value = pointer;
    return result;
}

static CUresult release(struct harness_api *api, struct named *entry)
{
    switch (entry->kind) {
    case POINTER:
        return api->cuMemFree_v2(entry->value);
    case ASYNC:
        return api->cuMemFreeAsync(entry->value, NULL);
    case VMM:
        return api->cuMemRelease(entry->value);
    default:
        return api->cuArrayDestroy((CUarray)(uintptr_t)entry->value);
    }
}

static void nvml_info(struct harness_api *api, int version, int device)
{
    nvmlDevice_t handle;
    nvmlReturn_t result = api->load_nvml(api) != 0 ? NVML_ERROR_FUNCTION_NOT_FOUND
                                                    : api->nvmlInit_v2();
    if (result == NVML_SUCCESS)
        result = api->nvmlDeviceGetHandleByIndex_v2((unsigned)device, &handle);
    if (result != NVML_SUCCESS) {
        printf("%snvml%s rc=%d\n", prefix, version == 2 ? "2" : "", result);
        return;
    }
    if (version == 2) {
        nvmlMemory_v2_t memory = {.version = nvmlMemory_v2};
        result = api->nvmlDeviceGetMemoryInfo_v2(handle, &memory);
        printf("%snvml2 rc=%d total=%llu free=%llu used=%llu reserved=%llu\n", prefix, result,
               memory.total, memory.free, memory.used, memory.reserved);
    } else {
        nvmlMemory_t memory = {0};
        result = api->nvmlDeviceGetMemoryInfo(handle, &memory);
        printf("%snvml rc=%d total=%llu free=%llu used=%llu\n", prefix, result, memory.total,
               memory.free, memory.used);
    }
}

/* Runs one command whose words start at args[0]; returns how many words it used, or -1. */
static int run(struct harness_api *api, char **args, int available)
{
    static const struct {
        const char *name;
        int words;
    } arity[] = {{"dev", 2},     {"alloc", 3},   {"managed", 3}, {"async", 3}, {"pool", 3},
                 {"vmm", 3},     {"pitch", 4},   {"array", 4},   {"array3d", 5}, {"free", 2},
                 {"freeptr", 2}, {"fill", 2},    {"churn", 3},   {"info", 1},  {"total", 2},
                 {"nvml", 2},    {"nvml2", 2},   {"uuid", 2},    {"wait", 1},  {"hold", 1},
                 {"sleep", 2},   {"fork", 1},    {"endfork", 1}};
    const char *command = args[0];
    int words = -1;
    for (size_t i = 0; i < sizeof arity / sizeof arity[0]; i++)
        if (strcmp(arity[i].name, command) == 0)
            words = arity[i].words;
    if (words < 0 || words > available) {
        printf("%s%s error=usage\n", prefix, command);
        return -1;
    }
    CUresult result;
    if (strcmp(command, "dev") == 0) {
        printf("%sdev rc=%d\n", prefix, make_current(api, atoi(args[1])));
    } else if (strcmp(command, "alloc") == 0 || strcmp(command, "managed") == 0 ||
               strcmp(command, "async") == 0 || strcmp(command, "pool") == 0 ||
               strcmp(command, "vmm") == 0) {
        unsigned long long value;
        enum kind kind;
        result = allocate(api, command, args, &value, &kind);
        if (result == CUDA_SUCCESS)
            remember(args[1], kind, value);
        printf("%s%s %s rc=%d ptr=0x%llx\n", prefix, command, args[1], result,
               result == CUDA_SUCCESS ? value : 0);
    } else if (strcmp(command, "pitch") == 0) {
        CUdeviceptr pointer;
        size_t pitch = 0;
        result = api->cuMemAllocPitch_v2(&pointer, &pitch, size_of(args[2]), size_of(args[3]), 4);
        if (result == CUDA_SUCCESS)
            remember(args[1], POINTER, pointer);
        printf("%spitch %s rc=%d pitch=%zu\n", prefix, args[1], result, pitch);
    } else if (strcmp(command, "array") == 0 || strcmp(command, "array3d") == 0) {
        CUarray array = NULL;
        if (command[5] == '3') {
            CUDA_ARRAY3D_DESCRIPTOR desc = {size_of(args[2]), size_of(args[3]), size_of(args[4]),
                                            CU_AD_FORMAT_FLOAT, 1, 0};
            result = api->cuArray3DCreate_v2(&array, &desc);
        } else {
            CUDA_ARRAY_DESCRIPTOR desc = {size_of(args[2]), size_of(args[3]), CU_AD_FORMAT_FLOAT, 1};
            result = api->cuArrayCreate_v2(&array, &desc);
        }
        if (result == CUDA_SUCCESS)
            remember(args[1], ARRAY, (unsigned long long)(uintptr_t)array);
        printf("%s%s %s rc=%d\n", prefix, command, args[1], result);
    } else if (strcmp(command, "free") == 0) {
        struct named *entry = find(args[1]);
        if (entry == NULL) {
            printf("%sfree %s error=unknown-name\n", prefix, args[1]);
        } else {
            result = release(api, entry);
            forget(entry);
            printf("%sfree %s rc=%d\n", prefix, args[1], result);
        }
    } else if (strcmp(command, "freeptr") == 0) {
        printf("%sfreeptr rc=%d\n", prefix, api->cuMemFree_v2(strtoull(args[1], NULL, 0)));
    } else if (strcmp(command, "fill") == 0) {
        unsigned long long size = size_of(args[1]), count = 0;
        CUdeviceptr pointer;
        while ((result = api->cuMemAlloc_v2(&pointer, size)) == CUDA_SUCCESS) {
            count++;
            sched_yield(); /* so that racing processes interleave */
        }
        printf("%sfill count=%llu bytes=%llu rc=%d\n", prefix, count, count * size, result);
    } else if (strcmp(command, "churn") == 0) {
        unsigned long long size = size_of(args[2]), pairs = strtoull(args[1], NULL, 0), ok = 0;
        CUdeviceptr pointer;
        for (unsigned long long i = 0; i < pairs; i++)
            if (api->cuMemAlloc_v2(&pointer, size) == CUDA_SUCCESS &&
                api->cuMemFree_v2(pointer) == CUDA_SUCCESS)
                ok++;
        printf("%schurn ok=%llu\n", prefix, ok);
    } else if (strcmp(command, "info") == 0) {
        size_t free_bytes = 0, total = 0;
        result = api->cuMemGetInfo_v2(&free_bytes, &total);
        printf("%sinfo rc=%d free=%zu total=%zu\n", prefix, result, free_bytes, total);
    } else if (strcmp(command, "total") == 0) {
        size_t bytes = 0;
        result = api->cuDeviceTotalMem_v2(&bytes, atoi(args[1]));
        printf("%stotal rc=%d bytes=%zu\n", prefix, result, bytes);
    } else if (strcmp(command, "nvml") == 0 || strcmp(command, "nvml2") == 0) {
        nvml_info(api, command[4] == '2' ? 2 : 1, atoi(args[1]));
    } else if (strcmp(command, "uuid") == 0) {
        CUuuid cu_uuid = {{0}};
        gpuq_uuid uuid;
        char text[GPUQ_UUID_TEXT_LEN + 1];
        result = api->cuDeviceGetUuid_v2(&cu_uuid, atoi(args[1]));
        memcpy(uuid.bytes, cu_uuid.bytes, sizeof uuid.bytes);
        gpuq_uuid_format(&uuid, "GPU", text);
        printf("%suuid rc=%d uuid=%s\n", prefix, result, text);
    } else if (strcmp(command, "wait") == 0) {
        char line[64];
        printf("%swait\n", prefix);
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL)
            return -1;
    } else if (strcmp(command, "hold") == 0) {
        printf("%shold\n", prefix);
        fflush(stdout);
        for (;;)
            pause();
    } else if (strcmp(command, "sleep") == 0) {
        struct timespec pause_for = {0, atol(args[1]) * 1000000L};
        nanosleep(&pause_for, NULL);
        printf("%ssleep\n", prefix);
    }
    fflush(stdout);
    return words;
}

static int run_words(struct harness_api *api, char **words, int count)
{
    for (int i = 0; i < count;) {
        if (strcmp(words[i], "fork") == 0) {
            int end = i + 1;
            while (end < count && strcmp(words[end], "endfork") != 0)
                end++;
            fflush(stdout);
            pid_t child = fork();
            if (child == 0) {
                prefix = "child ";
                exit(run_words(api, words + i + 1, end - i - 1) == 0 ? 0 : 1);
            }
            int status = 0;
            waitpid(child, &status, 0);
            printf("fork status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
            fflush(stdout);
            i = end + 1;
            continue;
        }
        int used = run(api, words + i, count - i);
        if (used < 0)
            return 1;
        i += used;
    }
    return 0;
}

int harness_main(struct harness_api *api, int argc, char **argv, int first)
{
    CUresult result = api->cuInit(0);
    if (result == CUDA_SUCCESS)
        result = make_current(api, 0);
    if (result != CUDA_SUCCESS) {
        printf("init rc=%d\n", result);
        return 1;
    }
    if (first < argc)
        return run_words(api, argv + first, argc - first);
    char line[1024];
    int failed = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *words[64];
        int count = 0;
        for (char *save = NULL, *word = strtok_r(line, " \t\n", &save); word != NULL && count < 64;
             word = strtok_r(NULL, " \t\n", &save))
            words[count++] = word;
        failed |= run_words(api, words, count);
    }
    return failed;
}
