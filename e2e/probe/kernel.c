/* The "kernel" member: a tiny PTX kernel that the driver JIT-compiles for its GPU, launched once
 * and checked. It proves the container reaches a working GPU (device nodes, the driver's
 * libraries, the JIT), not only NVML-level facts.
 *
 * The PTX is ISA 7.0 (CUDA 11.0, so any driver >= 450 accepts it); its target is sm_70, or the
 * device's own architecture on older GPUs (PTX JIT-compiles forward, never backward). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

#define ELEMENTS 1000u
#define BLOCK 128u

/* out[i] = blockIdx.x * blockDim.x + threadIdx.x, for i < n. `%s` is the target. */
static const char ptx_template[] =
    ".version 7.0\n"
    ".target %s\n"
    ".address_size 64\n"
    "\n"
    ".visible .entry fill_index(\n"
    "    .param .u64 out,\n"
    "    .param .u32 n\n"
    ")\n"
    "{\n"
    "    .reg .pred %%p<2>;\n"
    "    .reg .b32 %%r<6>;\n"
    "    .reg .b64 %%rd<5>;\n"
    "    ld.param.u64 %%rd1, [out];\n"
    "    ld.param.u32 %%r1, [n];\n"
    "    mov.u32 %%r2, %%ctaid.x;\n"
    "    mov.u32 %%r3, %%ntid.x;\n"
    "    mov.u32 %%r4, %%tid.x;\n"
    "    mad.lo.s32 %%r5, %%r2, %%r3, %%r4;\n"
    "    setp.ge.u32 %%p1, %%r5, %%r1;\n"
    "    @%%p1 bra DONE;\n"
    "    cvta.to.global.u64 %%rd2, %%rd1;\n"
    "    mul.wide.u32 %%rd3, %%r5, 4;\n"
    "    add.s64 %%rd4, %%rd2, %%rd3;\n"
    "    st.global.u32 [%%rd4], %%r5;\n"
    "DONE:\n"
    "    ret;\n"
    "}\n";

static const char *missing_entry(const struct driver *driver)
{
    return driver->cuModuleLoadDataEx == NULL    ? "cuModuleLoadDataEx"
           : driver->cuModuleGetFunction == NULL ? "cuModuleGetFunction"
           : driver->cuLaunchKernel == NULL      ? "cuLaunchKernel"
           : driver->cuCtxSynchronize == NULL    ? "cuCtxSynchronize"
           : driver->cuMemcpyDtoH_v2 == NULL     ? "cuMemcpyDtoH_v2"
           : driver->cuMemAlloc_v2 == NULL       ? "cuMemAlloc_v2"
           : driver->cuMemFree_v2 == NULL        ? "cuMemFree_v2"
                                                 : NULL;
}

static const char *target(const struct driver *driver, CUdevice device)
{
    int major = 0;
    if (driver->cuDeviceGetAttribute == NULL ||
        driver->cuDeviceGetAttribute(&major, PROBE_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                     device) != 0)
        return "sm_70";
    return major >= 7 ? "sm_70" : major == 6 ? "sm_60" : "sm_50";
}

/* Loads the module (with the JIT's error log on failure). */
static CUresult load(struct json *json, const struct driver *driver, const char *ptx,
                     CUmodule *module)
{
    char log[2048] = "";
    int keys[] = {PROBE_CU_JIT_ERROR_LOG_BUFFER, PROBE_CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *values[] = {log, (void *)(size_t)sizeof log};
    CUresult rc = driver->cuModuleLoadDataEx(module, ptx, 2, keys, values);
    if (rc != PROBE_CUDA_SUCCESS) {
        driver_error(json, driver, "error", "cuModuleLoadDataEx", rc);
        json_string(json, "jit_log", log);
    }
    return rc;
}

/* Launches fill_index over ELEMENTS ints and counts the wrong ones; the first failing call is
 * reported as "error". */
static void launch(struct json *json, const struct driver *driver, CUmodule module)
{
    CUfunction function = NULL;
    CUdeviceptr out = 0;
    unsigned int n = ELEMENTS;
    unsigned int *host = malloc(sizeof *host * ELEMENTS);
    const char *call = "cuModuleGetFunction";
    CUresult rc = driver->cuModuleGetFunction(&function, module, "fill_index");
    if (rc == PROBE_CUDA_SUCCESS) {
        call = "cuMemAlloc_v2";
        rc = driver->cuMemAlloc_v2(&out, sizeof *host * ELEMENTS);
    }
    if (rc == PROBE_CUDA_SUCCESS) {
        void *parameters[] = {&out, &n};
        call = "cuLaunchKernel";
        rc = driver->cuLaunchKernel(function, (ELEMENTS + BLOCK - 1) / BLOCK, 1, 1, BLOCK, 1, 1, 0,
                                    NULL, parameters, NULL);
    }
    if (rc == PROBE_CUDA_SUCCESS) {
        call = "cuCtxSynchronize";
        rc = driver->cuCtxSynchronize();
    }
    if (rc == PROBE_CUDA_SUCCESS && host != NULL) {
        memset(host, 0xff, sizeof *host * ELEMENTS);
        call = "cuMemcpyDtoH_v2";
        rc = driver->cuMemcpyDtoH_v2(host, out, sizeof *host * ELEMENTS);
    }
    if (out != 0)
        driver->cuMemFree_v2(out);
    unsigned int wrong = 0;
    for (unsigned int i = 0; rc == PROBE_CUDA_SUCCESS && host != NULL && i < ELEMENTS; i++)
        wrong += host[i] != i;
    json_uint(json, "elements", ELEMENTS);
    if (rc == PROBE_CUDA_SUCCESS && host != NULL) {
        json_uint(json, "wrong", wrong);
        json_bool(json, "ok", wrong == 0);
        json_null(json, "error");
    } else {
        json_bool(json, "ok", 0);
        if (host == NULL)
            probe_error(json, "error", "malloc", "out of host memory");
        else
            driver_error(json, driver, "error", call, rc);
    }
    free(host);
}

int kernel_print_ptx(const char *sm)
{
    return printf(ptx_template, sm) < 0 || fflush(stdout) != 0 ? -1 : 0;
}

void kernel_section(struct json *json, const struct driver *driver, int ordinal)
{
    json_object(json, "kernel");
    const char *missing = driver == NULL ? "libcuda.so.1" : missing_entry(driver);
    if (missing != NULL) {
        char reason[128];
        snprintf(reason, sizeof reason, "%s not found", missing);
        json_string(json, "skipped", reason);
        json_end(json, '}');
        return;
    }
    json_int(json, "device", ordinal);
    CUdevice device;
    const char *failed = NULL;
    CUresult rc = driver_use_device(driver, ordinal, &device, &failed);
    if (rc != PROBE_CUDA_SUCCESS) {
        json_bool(json, "ok", 0);
        driver_error(json, driver, "error", failed, rc);
        json_end(json, '}');
        return;
    }
    char ptx[sizeof ptx_template + 16];
    const char *sm = target(driver, device);
    snprintf(ptx, sizeof ptx, ptx_template, sm);
    json_string(json, "ptx_target", sm);
    CUmodule module = NULL;
    if (load(json, driver, ptx, &module) == PROBE_CUDA_SUCCESS) {
        launch(json, driver, module);
        if (driver->cuModuleUnload != NULL)
            driver->cuModuleUnload(module);
    } else {
        json_bool(json, "ok", 0);
    }
    json_end(json, '}');
}
