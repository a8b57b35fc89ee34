/* Link-time stand-ins for libdl.so.2 and libpthread.so.0 of glibc before 2.34 (glibc_floor.h),
 * never loaded: the library is linked against them so that its dlopen, dlclose, dlvsym and
 * pthread_once references name the file that defines them on an old glibc. Referenced from
 * libc.so.6, an old ld.so would search libc.so.6, find no dlopen there and stop with "symbol
 * lookup error"; a new glibc has them in libc.so.6 at GLIBC_2.2.5 and finds them there first.
 * Built twice: with GPUQ_STUB_DL (libdl.so.2) and without (libpthread.so.0). */
#ifdef GPUQ_STUB_DL
void dlopen(void) {}
void dlclose(void) {}
void dlvsym(void) {}
#else
void pthread_once(void) {}
#endif
