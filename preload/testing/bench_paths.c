/* The timing loop of bench/quota.py for the paths beside cuMemAlloc_v2, linked directly with
 * -lcuda (run with and without the quota library in LD_PRELOAD):
 *
 *   bench_paths --path vmm|pool [--batches N] [--pairs N] [--samples N] [--wait]
 *
 * vmm: one cycle is cuMemCreate (2 MiB on device 0) + cuMemMap + cuMemUnmap + cuMemRelease, into
 * an address range reserved once; pool: cuMemAllocAsync (1 MiB) + cuMemFreeAsync on the legacy
 * default stream. Other options bench_alloc takes are accepted and ignored. Prints one JSON object
 * like bench_alloc's: the mean ns per cycle of each batch, and percentiles of --samples
 * individually timed cycles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cuda_abi.h"

#define VMM_BYTES (2u << 20)

static int vmm;
static CUdeviceptr range;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cycle(void)
{
    if (vmm) {
        CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                    .location = {CU_MEM_LOCATION_TYPE_DEVICE, 0}};
        CUmemGenericAllocationHandle handle;
        if (cuMemCreate(&handle, VMM_BYTES, &prop, 0) != CUDA_SUCCESS ||
            cuMemMap(range, VMM_BYTES, 0, handle, 0) != CUDA_SUCCESS ||
            cuMemUnmap(range, VMM_BYTES) != CUDA_SUCCESS || cuMemRelease(handle) != CUDA_SUCCESS)
            return -1;
        return 0;
    }
    CUdeviceptr pointer;
    if (cuMemAllocAsync(&pointer, 1u << 20, NULL) != CUDA_SUCCESS ||
        cuMemFreeAsync(pointer, NULL) != CUDA_SUCCESS)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    long batches = 20, pairs = 20000, samples = 20000, wait = 0;
    for (int i = 1; i < argc; i++) {
        long value = i + 1 < argc ? atol(argv[i + 1]) : 0;
        if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
            vmm = strcmp(argv[++i], "vmm") == 0;
        else if (strcmp(argv[i], "--batches") == 0)
            batches = value, i++;
        else if (strcmp(argv[i], "--pairs") == 0)
            pairs = value, i++;
        else if (strcmp(argv[i], "--samples") == 0)
            samples = value, i++;
        else if (strcmp(argv[i], "--size") == 0 || strcmp(argv[i], "--live") == 0)
            i++;
        else if (strcmp(argv[i], "--wait") == 0)
            wait = 1;
    }
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS ||
        cuMemAddressReserve(&range, VMM_BYTES, 0, 0, 0) != CUDA_SUCCESS) {
        fprintf(stderr, "bench_paths: no device\n");
        return 1;
    }
    for (long i = 0; i < 2000; i++)
        cycle();
    if (wait) {
        char line[16];
        if (fgets(line, sizeof line, stdin) == NULL)
            return 1;
    }
    double *batch_ns = calloc((size_t)batches, sizeof *batch_ns);
    double *sample_ns = calloc((size_t)samples + 1, sizeof *sample_ns);
    for (long b = 0; b < batches; b++) {
        double start = now_ns();
        for (long i = 0; i < pairs; i++)
            if (cycle() != 0) {
                fprintf(stderr, "bench_paths: a call failed\n");
                return 1;
            }
        batch_ns[b] = (now_ns() - start) / (double)pairs;
    }
    for (long i = 0; i < samples; i++) {
        double start = now_ns();
        cycle();
        sample_ns[i] = now_ns() - start;
    }
    qsort(sample_ns, (size_t)samples, sizeof *sample_ns, compare);
    printf("{\"batch_ns\": [");
    for (long b = 0; b < batches; b++)
        printf("%s%.2f", b ? ", " : "", batch_ns[b]);
    printf("], \"pair_ns_p50\": %.1f, \"pair_ns_p99\": %.1f, \"live\": 0}\n",
           samples ? sample_ns[samples / 2] : 0.0, samples ? sample_ns[samples * 99 / 100] : 0.0);
    free(batch_ns);
    free(sample_ns);
    return 0;
}
