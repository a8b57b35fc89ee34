/* Resolves driver functions the two ways a program reaches them through a libcuda.so.1 handle,
 * and says whose function each way gave (dladdr):
 *
 *   resolve_check NAME BASE PTSZ …
 *
 * for each triple: dlsym(handle, NAME), and cuGetProcAddress_v2(BASE, cudaVersion 12080, the
 * per-thread-default-stream flag when PTSZ is 1); prints
 * "resolve NAME via=dlsym|getproc in=<file> symbol=<symbol>". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda_abi.h"

static void show(const char *name, const char *via, void *function)
{
    Dl_info info = {0};
    if (function == NULL || dladdr(function, &info) == 0) {
        printf("resolve %s via=%s in=? symbol=?\n", name, via);
        return;
    }
    const char *file = info.dli_fname != NULL ? strrchr(info.dli_fname, '/') : NULL;
    printf("resolve %s via=%s in=%s symbol=%s\n", name, via, file != NULL ? file + 1 : "?",
           info.dli_sname != NULL ? info.dli_sname : "?");
}

int main(int argc, char **argv)
{
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (cuda == NULL)
        return 2;
    __typeof__(&cuGetProcAddress_v2) getproc =
        (__typeof__(&cuGetProcAddress_v2))dlsym(cuda, "cuGetProcAddress_v2");
    if (getproc == NULL)
        return 2;
    for (int i = 1; i + 2 < argc; i += 3) {
        show(argv[i], "dlsym", dlsym(cuda, argv[i]));
        void *function = NULL;
        cuuint64_t flags = atoi(argv[i + 2]) ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
                                             : CU_GET_PROC_ADDRESS_DEFAULT;
        if (getproc(argv[i + 1], &function, 12080, flags, NULL) != CUDA_SUCCESS)
            function = NULL;
        show(argv[i], "getproc", function);
    }
    fflush(stdout);
    return 0;
}
