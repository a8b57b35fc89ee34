/* Messages to stderr, one write per line, filtered by GPUQ_LOG_LEVEL
 * (off, error, warn, info, debug; default warn). */
#ifndef GPUQ_LOGGING_H
#define GPUQ_LOGGING_H

enum gpuq_log_level {
    GPUQ_LOG_OFF = 0,
    GPUQ_LOG_ERROR = 1,
    GPUQ_LOG_WARN = 2,
    GPUQ_LOG_INFO = 3,
    GPUQ_LOG_DEBUG = 4,
};

void gpuq_log(enum gpuq_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs only the first time for `once` in this process (a forked child inherits it). */
void gpuq_log_once(int *once, enum gpuq_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
