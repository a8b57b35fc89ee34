/* The claim's lock (sharedlock.h).
 *
 * Default: a futex word in the mapped state file (header offset 64), so an uncontended lock and
 * unlock are one atomic instruction each and no system call. A waiter spins briefly, then yields
 * the CPU a while (with more processes than CPUs the holder is often preempted, and sleeping at
 * once would make a convoy of every process behind it), then sleeps on the futex. The word holds the holder's slot + 1
 * (11 bits), a waiters bit and a 20-bit sequence bumped on every acquisition. A waiter sleeps on
 * the futex with a timeout; when it wakes to find the same holder, it asks whether the holder's
 * slot lock (an OFD lock, statefile.h) is still held, and if not (the holder was killed inside the
 * critical section) takes the lock over with a compare-and-swap on the exact word it saw, which
 * the sequence makes safe against reuse of the slot, then recounts the claim's usage (the dead
 * holder may have been midway through an update). Slot numbers, not PIDs, so it works across PID
 * namespaces.
 *
 * With -DGPUQ_LOCK_FCNTL (built only for bench/quota.py): the literal design, an OFD write lock
 * on that header byte (F_OFD_SETLKW, then F_OFD_SETLK to unlock) plus a mutex between our own
 * threads, which share one open file description. Two system calls per allocation. */
#define _GNU_SOURCE
#include "sharedlock.h"

#ifdef GPUQ_LOCK_FCNTL

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

static pthread_mutex_t threads = PTHREAD_MUTEX_INITIALIZER;

static void header_byte(const struct gpuq_state *state, int command, short type)
{
    struct flock lock = {.l_type = type, .l_whence = SEEK_SET, .l_start = 64, .l_len = 1};
    while (fcntl(state->fd, command, &lock) != 0 && errno == EINTR)
        ;
}

void gpuq_lock(const struct gpuq_state *state)
{
    pthread_mutex_lock(&threads);
    header_byte(state, F_OFD_SETLKW, F_WRLCK);
}

void gpuq_unlock(const struct gpuq_state *state)
{
    header_byte(state, F_OFD_SETLK, F_UNLCK);
    pthread_mutex_unlock(&threads);
}

void gpuq_lock_clear_stale(const struct gpuq_state *state)
{
    (void)state; /* the kernel dropped a dead holder's fcntl lock already */
}

#else

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "logging.h"

#define HOLDER_MASK 0x7ffu
#define WAITERS 0x800u
#define SEQUENCE_SHIFT 12
#define SPINS 64
#define YIELDS 128
#define WAIT_NS 2000000 /* then check whether the holder is still alive */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static uint32_t acquired(uint32_t seen, uint32_t holder, uint32_t waiters)
{
    return (((seen >> SEQUENCE_SHIFT) + 1) << SEQUENCE_SHIFT) | waiters | holder;
}

static int try_take(uint32_t *word, uint32_t *seen, uint32_t holder, uint32_t waiters)
{
    return (*seen & HOLDER_MASK) == 0 &&
           __atomic_compare_exchange_n(word, seen, acquired(*seen, holder, waiters), 0,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static int holder_is_dead(const struct gpuq_state *state, uint32_t seen)
{
    uint32_t holder = (seen & HOLDER_MASK) - 1;
    if (holder == state->slot) /* another thread of ours */
        return 0;
    return holder >= state->nslots || gpuq_state_slot_is_dead(state, holder);
}

static void lock_slow(const struct gpuq_state *state, uint32_t *word, uint32_t me)
{
    static int took_over_once;
    for (int spin = 0; spin < SPINS + YIELDS; spin++) {
        if (spin < SPINS)
            cpu_relax();
        else /* the holder may be preempted: let it run (more processes than CPUs) */
            sched_yield();
        uint32_t seen = __atomic_load_n(word, __ATOMIC_RELAXED);
        if (try_take(word, &seen, me, 0))
            return;
    }
    for (;;) {
        uint32_t seen = __atomic_load_n(word, __ATOMIC_RELAXED);
        if ((seen & HOLDER_MASK) == 0) {
            /* Having waited, take it marked contended: others may still sleep. */
            if (try_take(word, &seen, me, WAITERS))
                return;
            continue;
        }
        if (!(seen & WAITERS)) {
            if (!__atomic_compare_exchange_n(word, &seen, seen | WAITERS, 0, __ATOMIC_RELAXED,
                                             __ATOMIC_RELAXED))
                continue;
            seen |= WAITERS;
        }
        struct timespec timeout = {0, WAIT_NS};
        long woken = syscall(SYS_futex, word, FUTEX_WAIT, seen, &timeout, NULL, 0);
        if (woken == 0 || errno != ETIMEDOUT || !holder_is_dead(state, seen))
            continue;
        if (__atomic_compare_exchange_n(word, &seen, acquired(seen, me, WAITERS), 0,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            gpuq_log_once(&took_over_once, GPUQ_LOG_WARN,
                          "%s: took over the claim's lock from process slot %u, which died "
                          "holding it",
                          state->path, (seen & HOLDER_MASK) - 1);
            gpuq_state_recount(state);
            return;
        }
    }
}

void gpuq_lock(const struct gpuq_state *state)
{
    uint32_t *word = &state->header->lock, me = state->slot + 1;
    uint32_t seen = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (!try_take(word, &seen, me, 0))
        lock_slow(state, word, me);
}

void gpuq_unlock(const struct gpuq_state *state)
{
    uint32_t *word = &state->header->lock;
    /* While we hold it, others only ever add the waiters bit. */
    uint32_t held = __atomic_load_n(word, __ATOMIC_RELAXED);
    uint32_t released = held & ~(HOLDER_MASK | WAITERS);
    uint32_t before = __atomic_exchange_n(word, released, __ATOMIC_RELEASE);
    if (before & WAITERS)
        syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void gpuq_lock_clear_stale(const struct gpuq_state *state)
{
    uint32_t *word = &state->header->lock, me = state->slot + 1;
    uint32_t seen = __atomic_load_n(word, __ATOMIC_RELAXED);
    /* Take it over as our own; a waiter taking it over at the same moment makes this fail. */
    if ((seen & HOLDER_MASK) != me ||
        !__atomic_compare_exchange_n(word, &seen, acquired(seen, me, seen & WAITERS), 0,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    gpuq_log(GPUQ_LOG_WARN,
             "%s: released the claim's lock left by the previous owner of process slot %u, which "
             "died holding it",
             state->path, state->slot);
    gpuq_state_recount(state);
    gpuq_unlock(state);
}

#endif
