/* The oldest glibc the library loads with: 2.17 on x86_64 (the CUDA driver's own floor).
 *
 * The library is preloaded into any container, so it must not ask for a symbol version newer
 * than the container's glibc: ld.so skips such an ld.so.preload entry with a warning and the
 * process runs without its quota. Built against a newer glibc, a few calls bind to versions added
 * later. The Makefile force-includes this header (-include) into every object so that they bind
 * to versions every glibc since 2.2.5 exports:
 *
 * - dlopen, dlclose, dlvsym (libdl) and pthread_once (libpthread) moved into libc in 2.34, which
 *   keeps their GLIBC_2.2.5 versions; older glibc find them in libdl.so.2 and libpthread.so.0,
 *   which the library links (-ldl -lpthread);
 * - stat and fstat became functions in 2.33: glibc_floor.c defines the library's own (hidden)
 *   ones on top of __xstat and __fxstat, what <sys/stat.h> inlined before and glibc still exports.
 *
 * `.symver` makes the link take these (non-default) versions. dlsym is not pinned: real.c looks
 * up the real one by version at run time. No #include here: this comes before the sources' own
 * feature macros (_GNU_SOURCE). Other architectures build as they are. */
#ifndef GPUQ_GLIBC_FLOOR_H
#define GPUQ_GLIBC_FLOOR_H

#if defined(__x86_64__) && defined(__linux__)
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlclose,dlclose@GLIBC_2.2.5");
__asm__(".symver dlvsym,dlvsym@GLIBC_2.2.5");
__asm__(".symver pthread_once,pthread_once@GLIBC_2.2.5");
__asm__(".symver __xstat,__xstat@GLIBC_2.2.5");
__asm__(".symver __fxstat,__fxstat@GLIBC_2.2.5");
#endif

#endif
