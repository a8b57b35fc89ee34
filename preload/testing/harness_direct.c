/* A test program linked directly against libcuda.so.1 and libnvidia-ml.so.1 (-lcuda
 * -lnvidia-ml), as a program built with the driver API is: with the library in LD_PRELOAD, its
 * calls bind to the library's exports. Commands: see harness_commands.c. */
#include "harness.h"

static int load_nvml(struct harness_api *api)
{
    api->nvmlInit_v2 = nvmlInit_v2;
    api->nvmlDeviceGetHandleByIndex_v2 = nvmlDeviceGetHandleByIndex_v2;
    api->nvmlDeviceGetMemoryInfo = nvmlDeviceGetMemoryInfo;
    api->nvmlDeviceGetMemoryInfo_v2 = nvmlDeviceGetMemoryInfo_v2;
    return 0;
}

int main(int argc, char **argv)
{
    struct harness_api api = {
        .cuInit = cuInit,
        .cuDeviceGet = cuDeviceGet,
        .cuDevicePrimaryCtxRetain = cuDevicePrimaryCtxRetain,
        .cuCtxSetCurrent = cuCtxSetCurrent,
        .cuDeviceGetUuid_v2 = cuDeviceGetUuid_v2,
        .cuDeviceGetDefaultMemPool = cuDeviceGetDefaultMemPool,
        .cuMemAlloc_v2 = cuMemAlloc_v2,
        .cuMemFree_v2 = cuMemFree_v2,
        .cuMemAllocPitch_v2 = cuMemAllocPitch_v2,
        .cuMemAllocManaged = cuMemAllocManaged,
        .cuMemCreate = cuMemCreate,
        .cuMemRelease = cuMemRelease,
        .cuMemAllocAsync = cuMemAllocAsync,
        .cuMemFreeAsync = cuMemFreeAsync,
        .cuMemAllocFromPoolAsync = cuMemAllocFromPoolAsync,
        .cuArrayCreate_v2 = cuArrayCreate_v2,
        .cuArray3DCreate_v2 = cuArray3DCreate_v2,
        .cuArrayDestroy = cuArrayDestroy,
        .cuMemGetInfo_v2 = cuMemGetInfo_v2,
        .cuDeviceTotalMem_v2 = cuDeviceTotalMem_v2,
        .load_nvml = load_nvml,
    };
    return harness_main(&api, argc, argv, 1);
}
