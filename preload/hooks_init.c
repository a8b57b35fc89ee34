/* cuInit: after the driver initializes, load the claim and number the devices by UUID. */
#include "hooks.h"
#include "process.h"

GPUQ_EXPORT CUresult cuInit(unsigned int flags)
{
    __typeof__(&cuInit) real = GPUQ_REAL(cuInit);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    CUresult result = real(flags);
    if (result == CUDA_SUCCESS && gpuq_process_mode() == GPUQ_MODE_ENFORCING)
        gpuq_process_device_of(0);
    return result;
}
