/* Messages to stderr. Each line is formatted first and written with one write(2), so lines from
 * the processes of a claim do not interleave; nothing here allocates. */
#include "logging.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int level_from_env(void)
{
    static const char *const names[] = {"off", "error", "warn", "info", "debug"};
    const char *value = getenv("GPUQ_LOG_LEVEL");
    if (value == NULL || *value == '\0')
        return GPUQ_LOG_WARN;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(value, names[i]) == 0 || (value[0] == '0' + i && value[1] == '\0'))
            return i;
    return GPUQ_LOG_WARN;
}

static int current_level(void)
{
    static int level = -1;
    int current = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (current < 0) {
        current = level_from_env();
        __atomic_store_n(&level, current, __ATOMIC_RELAXED);
    }
    return current;
}

static void vlog(const char *fmt, va_list args)
{
    char line[1024];
    int used = snprintf(line, sizeof line, "gpuquota[%d]: ", (int)getpid());
    int more = vsnprintf(line + used, sizeof line - (size_t)used - 1, fmt, args);
    size_t length = (size_t)used + (more < 0 ? 0 : (size_t)more);
    if (length > sizeof line - 2)
        length = sizeof line - 2;
    line[length++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, length);
    (void)ignored;
}

void gpuq_log(enum gpuq_log_level level, const char *fmt, ...)
{
    if ((int)level > current_level())
        return;
    va_list args;
    va_start(args, fmt);
    vlog(fmt, args);
    va_end(args);
}

void gpuq_log_once(int *once, enum gpuq_log_level level, const char *fmt, ...)
{
    if ((int)level > current_level() || __atomic_exchange_n(once, 1, __ATOMIC_RELAXED))
        return;
    va_list args;
    va_start(args, fmt);
    vlog(fmt, args);
    va_end(args);
}
