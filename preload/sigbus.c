/* The SIGBUS handler for the state file mappings (sigbus.h). Async-signal-safe: the table is
 * read with atomics, and the handler makes only raw system calls. */
#define _GNU_SOURCE
#include "sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "claims.h"

struct guarded {
    uintptr_t start; /* 0: free */
    size_t size;
    int *damaged;
};

static struct guarded table[GPUQ_MAX_CLAIMS];
static struct sigaction previous;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int installed;

static void pass_on(int signal, siginfo_t *info, void *context)
{
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(signal, info, context);
    } else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
        /* The default action, as if we had never been here: raised again, it is delivered as
         * soon as this handler returns (a fault would also recur when its access re-runs). */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(signal, &dfl, NULL);
        raise(signal);
    } else {
        previous.sa_handler(signal);
    }
}

static void on_sigbus(int signal, siginfo_t *info, void *context)
{
    int saved = errno;
    uintptr_t address = (uintptr_t)info->si_addr;
    for (unsigned i = 0; info->si_code > 0 && i < GPUQ_MAX_CLAIMS; i++) { /* faults, not kill */
        uintptr_t start = __atomic_load_n(&table[i].start, __ATOMIC_ACQUIRE);
        if (start == 0 || address < start || address - start >= table[i].size)
            continue;
        long replaced = syscall(SYS_mmap, (void *)start, table[i].size, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        __atomic_store_n(table[i].damaged, 1, __ATOMIC_RELEASE);
        errno = saved;
        if (replaced != -1)
            return;
        break;
    }
    errno = saved;
    pass_on(signal, info, context);
}

static int install_locked(void)
{
    if (installed)
        return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous) != 0)
        return -1;
    installed = 1;
    return 0;
}

int gpuq_sigbus_guard(void *start, size_t size, int *damaged)
{
    pthread_mutex_lock(&install_lock);
    int result = install_locked();
    unsigned i = 0;
    while (result == 0 && i < GPUQ_MAX_CLAIMS && table[i].start != 0)
        i++;
    if (result == 0 && i == GPUQ_MAX_CLAIMS) {
        errno = ENOSPC;
        result = -1;
    }
    if (result == 0) {
        table[i].size = size;
        table[i].damaged = damaged;
        __atomic_store_n(&table[i].start, (uintptr_t)start, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&install_lock);
    return result;
}

void gpuq_sigbus_unguard(void *start)
{
    pthread_mutex_lock(&install_lock);
    for (unsigned i = 0; i < GPUQ_MAX_CLAIMS; i++)
        if (table[i].start == (uintptr_t)start)
            __atomic_store_n(&table[i].start, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&install_lock);
}
