/* Graph memory nodes: cuGraphAddMemAllocNode reserves memory on the device its pool properties
 * name whenever the graph runs, and the driver keeps it in the device's graph memory pool until
 * cuDeviceGraphMemTrim, beyond the life of any one graph. The library cannot tell from the
 * outside when that memory is really gone, so a node is charged when it is added and stays
 * charged until the process exits (conservative). A node that does not fit is refused with
 * CUDA_ERROR_OUT_OF_MEMORY. Allocations made under stream capture are stream-ordered
 * allocations (pools.h). */
#include "charges.h"
#include "hooks.h"

GPUQ_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph graph,
                                            const CUgraphNode *dependencies, size_t count,
                                            CUDA_MEM_ALLOC_NODE_PARAMS *params)
{
    __typeof__(&cuGraphAddMemAllocNode) real = GPUQ_REAL(cuGraphAddMemAllocNode);
    if (real == NULL)
        return CUDA_ERROR_NOT_FOUND;
    if (params == NULL)
        return real(node, graph, dependencies, count, params);
    int ordinal = params->poolProps.location.type == CU_MEM_LOCATION_TYPE_DEVICE
                      ? params->poolProps.location.id
                      : GPUQ_NO_DEVICE;
    struct gpuq_charge charge;
    CUresult result = gpuq_charge_begin(&charge, ordinal, params->bytesize);
    if (result != CUDA_SUCCESS)
        return result;
    result = real(node, graph, dependencies, count, params);
    if (result != CUDA_SUCCESS) /* undone; on success nothing is recorded: it stays charged */
        gpuq_charge_end(&charge, result, GPUQ_KIND_POINTER, 0);
    return result;
}
