/* The fake libcuda.so.1: cuGetProcAddress and cuGetProcAddress_v2, with a table like the real
 * driver's: the name asked for, the cudaVersion from which an entry applies, and separate
 * per-thread-default-stream (_ptsz) entries chosen by CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.
 * Linked with -Bsymbolic, so the addresses are our own functions even under LD_PRELOAD. */
#include <string.h>

#include "fake_cuda.h"

struct entry {
    const char *name;
    int since;
    int ptsz;
    void *function;
};

#define ENTRY(name, since, function) {name, since, 0, (void *)function}
#define PTSZ(name, since, function) {name, since, 1, (void *)function}

static const struct entry table[] = {
    ENTRY("cuInit", 2000, cuInit),
    ENTRY("cuDriverGetVersion", 2020, cuDriverGetVersion),
    ENTRY("cuDeviceGet", 2000, cuDeviceGet),
    ENTRY("cuDeviceGetCount", 2000, cuDeviceGetCount),
    ENTRY("cuDeviceGetUuid", 9020, cuDeviceGetUuid),
    ENTRY("cuDeviceGetUuid", 11040, cuDeviceGetUuid_v2),
    ENTRY("cuDeviceTotalMem", 3020, cuDeviceTotalMem_v2),
    ENTRY("cuDevicePrimaryCtxRetain", 7000, cuDevicePrimaryCtxRetain),
    ENTRY("cuDevicePrimaryCtxRelease", 11000, cuDevicePrimaryCtxRelease_v2),
    ENTRY("cuDeviceGetDefaultMemPool", 11020, cuDeviceGetDefaultMemPool),
    ENTRY("cuCtxSetCurrent", 4000, cuCtxSetCurrent),
    ENTRY("cuCtxGetCurrent", 4000, cuCtxGetCurrent),
    ENTRY("cuCtxGetDevice", 2000, cuCtxGetDevice),
    ENTRY("cuMemAlloc", 3020, cuMemAlloc_v2),
    ENTRY("cuMemFree", 3020, cuMemFree_v2),
    ENTRY("cuMemAllocPitch", 3020, cuMemAllocPitch_v2),
    ENTRY("cuMemGetInfo", 3020, cuMemGetInfo_v2),
    ENTRY("cuMemAllocManaged", 6000, cuMemAllocManaged),
    ENTRY("cuMemCreate", 10020, cuMemCreate),
    ENTRY("cuMemRelease", 10020, cuMemRelease),
    ENTRY("cuMemAllocAsync", 11020, cuMemAllocAsync),
    PTSZ("cuMemAllocAsync", 11020, cuMemAllocAsync_ptsz),
    ENTRY("cuMemFreeAsync", 11020, cuMemFreeAsync),
    PTSZ("cuMemFreeAsync", 11020, cuMemFreeAsync_ptsz),
    ENTRY("cuMemAllocFromPoolAsync", 11020, cuMemAllocFromPoolAsync),
    PTSZ("cuMemAllocFromPoolAsync", 11020, cuMemAllocFromPoolAsync_ptsz),
    ENTRY("cuArrayCreate", 3020, cuArrayCreate_v2),
    ENTRY("cuArray3DCreate", 3020, cuArray3DCreate_v2),
    ENTRY("cuArrayDestroy", 2000, cuArrayDestroy),
    ENTRY("cuMemMap", 10020, cuMemMap),
    ENTRY("cuMemUnmap", 10020, cuMemUnmap),
    ENTRY("cuMemExportToShareableHandle", 10020, cuMemExportToShareableHandle),
    ENTRY("cuMemImportFromShareableHandle", 10020, cuMemImportFromShareableHandle),
    ENTRY("cuMemRetainAllocationHandle", 11000, cuMemRetainAllocationHandle),
    ENTRY("cuMemGetAllocationPropertiesFromHandle", 10020, cuMemGetAllocationPropertiesFromHandle),
    ENTRY("cuMemPoolCreate", 11020, cuMemPoolCreate),
    ENTRY("cuMemPoolDestroy", 11020, cuMemPoolDestroy),
    ENTRY("cuMemPoolTrimTo", 11020, cuMemPoolTrimTo),
    ENTRY("cuMemPoolGetAttribute", 11020, cuMemPoolGetAttribute),
    ENTRY("cuDeviceGetMemPool", 11020, cuDeviceGetMemPool),
    ENTRY("cuStreamGetCtx", 9020, cuStreamGetCtx),
    ENTRY("cuStreamSynchronize", 2000, cuStreamSynchronize),
    PTSZ("cuStreamSynchronize", 7000, cuStreamSynchronize_ptsz),
    ENTRY("cuCtxSynchronize", 2000, cuCtxSynchronize),
    ENTRY("cuEventSynchronize", 2000, cuEventSynchronize),
    ENTRY("cuCtxPushCurrent", 4000, cuCtxPushCurrent_v2),
    ENTRY("cuCtxPopCurrent", 4000, cuCtxPopCurrent_v2),
    ENTRY("cuCtxSetLimit", 3010, cuCtxSetLimit),
    ENTRY("cuDeviceGetAttribute", 2000, cuDeviceGetAttribute),
    ENTRY("cuGraphAddMemAllocNode", 11040, cuGraphAddMemAllocNode),
    ENTRY("cuMipmappedArrayCreate", 5000, cuMipmappedArrayCreate),
    ENTRY("cuMipmappedArrayDestroy", 5000, cuMipmappedArrayDestroy),
    ENTRY("cuModuleGetGlobal", 3020, cuModuleGetGlobal_v2),
    ENTRY("cuModuleUnload", 2000, cuModuleUnload),
    ENTRY("cuLibraryGetGlobal", 12000, cuLibraryGetGlobal),
    ENTRY("cuLibraryUnload", 12000, cuLibraryUnload),
    ENTRY("cuGetProcAddress", 11030, cuGetProcAddress),
    ENTRY("cuGetProcAddress", 12000, cuGetProcAddress_v2),
};

#define ENTRIES ((int)(sizeof table / sizeof table[0]))

static int has_ptsz(const char *name)
{
    for (int i = 0; i < ENTRIES; i++)
        if (table[i].ptsz && strcmp(table[i].name, name) == 0)
            return 1;
    return 0;
}

static CUresult look_up(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult *status)
{
    if (symbol == NULL || pfn == NULL || flags > CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)
        return CUDA_ERROR_INVALID_VALUE;
    int ptsz = flags == CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, split = has_ptsz(symbol);
    int best = -1, named = 0;
    for (int i = 0; i < ENTRIES; i++) {
        if (strcmp(table[i].name, symbol) != 0 || (split && table[i].ptsz != ptsz))
            continue;
        named = 1;
        if (table[i].since <= cuda_version && (best < 0 || table[i].since > table[best].since))
            best = i;
    }
    *pfn = best >= 0 ? table[best].function : NULL;
    if (status != NULL)
        *status = best >= 0 ? CU_GET_PROC_ADDRESS_SUCCESS
                  : named   ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                            : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    fake_trace("cuGetProcAddress %s version=%d flags=%llu found=%d", symbol, cuda_version,
               (unsigned long long)flags, best >= 0);
    return best >= 0 ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags)
{
    return look_up(symbol, pfn, cuda_version, flags, NULL);
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *symbol_status)
{
    return look_up(symbol, pfn, cuda_version, flags, symbol_status);
}
