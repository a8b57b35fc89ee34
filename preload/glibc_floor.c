/* stat and fstat for glibc before 2.33, where they were inline calls of __xstat and __fxstat
 * (glibc_floor.h). Hidden, like everything of the library: the library's own calls bind here and
 * the process's stat is left alone. */
#include <sys/stat.h>

#if defined(__x86_64__) && defined(__linux__)
/* _STAT_VER_LINUX of the old <bits/stat.h> on x86_64: today's struct stat layout. */
enum { GPUQ_STAT_VER = 1 };

extern int __xstat(int version, const char *path, struct stat *buf);
extern int __fxstat(int version, int fd, struct stat *buf);

int stat(const char *path, struct stat *buf)
{
    return __xstat(GPUQ_STAT_VER, path, buf);
}

int fstat(int fd, struct stat *buf)
{
    return __fxstat(GPUQ_STAT_VER, fd, buf);
}
#endif
