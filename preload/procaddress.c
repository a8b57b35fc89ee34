/* cuGetProcAddress and cuGetProcAddress_v2 (how the CUDA runtime finds every driver function):
 * ask the driver, then hand back our wrapper instead of the driver's function when it is one we
 * interpose. The variant is recognised by the address the driver returned (it equals the driver's
 * exported cuMemAllocAsync_ptsz, say), so legacy and _ptsz variants stay distinct; failing that,
 * by name, cudaVersion and the per-thread-default-stream flag. Asked for cuGetProcAddress itself,
 * the answer is ours, so later lookups come here too. */
#include <string.h>

#include "hooks.h"

static int has_ptsz_variant(const char *base)
{
    for (int i = 0; i < GPUQ_HOOK_COUNT; i++)
        if (gpuq_hooks[i].ptsz && strcmp(gpuq_hooks[i].base, base) == 0)
            return 1;
    return 0;
}

static int by_address(void *found)
{
    for (int i = 0; i < GPUQ_HOOK_COUNT; i++)
        if (gpuq_hooks[i].lib == GPUQ_LIB_CUDA && gpuq_real((enum gpuq_fn)i) == found)
            return i;
    return -1;
}

static int by_name(const char *symbol, int cuda_version, cuuint64_t flags)
{
    int ptsz = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0, best = -1;
    int split = has_ptsz_variant(symbol);
    for (int i = 0; i < GPUQ_HOOK_COUNT; i++) {
        const struct gpuq_hook *hook = &gpuq_hooks[i];
        if (hook->base == NULL || strcmp(hook->base, symbol) != 0 || cuda_version < hook->since ||
            (split && hook->ptsz != ptsz))
            continue;
        if (best < 0 || hook->since > gpuq_hooks[best].since)
            best = i;
    }
    return best;
}

static void swap(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags)
{
    if (symbol == NULL || pfn == NULL || *pfn == NULL)
        return;
    for (int i = 0; i < GPUQ_HOOK_COUNT; i++)
        if (gpuq_hooks[i].wrapper == *pfn)
            return; /* already ours */
    int hook = by_address(*pfn);
    if (hook < 0) {
        hook = by_name(symbol, cuda_version, flags);
        if (hook < 0)
            return;
        gpuq_real_adopt((enum gpuq_fn)hook, *pfn); /* only if the driver does not export it */
    }
    *pfn = gpuq_hooks[hook].wrapper;
}

GPUQ_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cuda_version,
                                      cuuint64_t flags)
{
    __typeof__(&cuGetProcAddress) real = GPUQ_REAL(cuGetProcAddress);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(symbol, pfn, cuda_version, flags);
    if (result == CUDA_SUCCESS)
        swap(symbol, pfn, cuda_version, flags);
    return result;
}

GPUQ_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cuda_version,
                                         cuuint64_t flags,
                                         CUdriverProcAddressQueryResult *symbol_status)
{
    __typeof__(&cuGetProcAddress_v2) real = GPUQ_REAL(cuGetProcAddress_v2);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(symbol, pfn, cuda_version, flags, symbol_status);
    if (result == CUDA_SUCCESS)
        swap(symbol, pfn, cuda_version, flags);
    return result;
}
