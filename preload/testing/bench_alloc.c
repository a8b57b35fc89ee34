/* The timing loop of bench/quota.py: cuMemAlloc_v2 + cuMemFree_v2 pairs on device 0, linked
 * directly with -lcuda (run with and without the quota library in LD_PRELOAD).
 *
 *   bench_alloc [--batches N] [--pairs N] [--samples N] [--size BYTES] [--live N] [--wait]
 *
 * --live N holds N other 4 KiB allocations during the timing; --wait reads a line from stdin
 * before timing (so several processes start together). Prints one JSON object: the mean ns per
 * pair of each batch, and percentiles of --samples individually timed pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cuda_abi.h"

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

static int pair(size_t size)
{
    CUdeviceptr pointer;
    if (cuMemAlloc_v2(&pointer, size) != CUDA_SUCCESS || cuMemFree_v2(pointer) != CUDA_SUCCESS)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    long batches = 20, pairs = 20000, samples = 20000, live = 0, wait = 0;
    size_t size = 1 << 20;
    for (int i = 1; i < argc; i++) {
        long value = i + 1 < argc ? atol(argv[i + 1]) : 0;
        if (strcmp(argv[i], "--batches") == 0)
            batches = value, i++;
        else if (strcmp(argv[i], "--pairs") == 0)
            pairs = value, i++;
        else if (strcmp(argv[i], "--samples") == 0)
            samples = value, i++;
        else if (strcmp(argv[i], "--size") == 0)
            size = (size_t)value, i++;
        else if (strcmp(argv[i], "--live") == 0)
            live = value, i++;
        else if (strcmp(argv[i], "--wait") == 0)
            wait = 1;
    }
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
        fprintf(stderr, "bench_alloc: no device\n");
        return 1;
    }
    CUdeviceptr *held = calloc((size_t)live + 1, sizeof *held);
    for (long i = 0; i < live; i++)
        if (cuMemAlloc_v2(&held[i], 4096) != CUDA_SUCCESS) {
            fprintf(stderr, "bench_alloc: cannot hold %ld live allocations\n", live);
            return 1;
        }
    for (long i = 0; i < 2000; i++)
        pair(size);
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
            if (pair(size) != 0) {
                fprintf(stderr, "bench_alloc: allocation failed\n");
                return 1;
            }
        batch_ns[b] = (now_ns() - start) / (double)pairs;
    }
    for (long i = 0; i < samples; i++) {
        double start = now_ns();
        pair(size);
        sample_ns[i] = now_ns() - start;
    }
    qsort(sample_ns, (size_t)samples, sizeof *sample_ns, compare);
    printf("{\"batch_ns\": [");
    for (long b = 0; b < batches; b++)
        printf("%s%.2f", b ? ", " : "", batch_ns[b]);
    printf("], \"pair_ns_p50\": %.1f, \"pair_ns_p99\": %.1f, \"live\": %ld}\n",
           samples ? sample_ns[samples / 2] : 0.0, samples ? sample_ns[samples * 99 / 100] : 0.0,
           live);
    for (long i = 0; i < live; i++)
        cuMemFree_v2(held[i]);
    free(held);
    free(batch_ns);
    free(sample_ns);
    return 0;
}
