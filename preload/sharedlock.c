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
 * namespaces. "Still alive" is the slot's process byte (statefile.h), so a holder killed while a
 * forked child of it lives on is taken over too. A holder that lives but does not let go (SIGSTOP)
 * is waited for GPUQ_LOCK_TIMEOUT_MS at most; then the allocation fails closed.
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
    while (fcntl(state->charge_fd, command, &lock) != 0 && errno == EINTR)
        ;
}

int gpuq_lock(struct gpuq_state *state)
{
    pthread_mutex_lock(&threads);
    header_byte(state, F_OFD_SETLKW, F_WRLCK);
    return 0;
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
    return holder >= state->nslots || gpuq_state_process_is_dead(state, holder);
}

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int same_hold(uint32_t a, uint32_t b)
{
    return (a & ~WAITERS) == (b & ~WAITERS);
}

static int give_up(struct gpuq_state *state, uint32_t seen)
{
    uint32_t holder = (seen & HOLDER_MASK) - 1;
    int again = same_hold(__atomic_exchange_n(&state->stuck_word, seen, __ATOMIC_RELAXED), seen);
    if (!again)
        gpuq_log(GPUQ_LOG_ERROR,
                 "%s: the claim's lock is held by process slot %u (pid %llu in its own PID "
                 "namespace), which is alive but has not let go for %d ms (stopped?); "
                 "allocations fail with CUDA_ERROR_OUT_OF_MEMORY until it does",
                 state->path, holder,
                 holder < state->nslots ? (unsigned long long)gpuq_state_slot_pid(state, holder)
                                        : 0ull,
                 GPUQ_LOCK_TIMEOUT_MS);
    return -1;
}

static int lock_slow(struct gpuq_state *state, uint32_t *word, uint32_t me)
{
    static int took_over_once;
    uint32_t stuck = __atomic_load_n(&state->stuck_word, __ATOMIC_RELAXED);
    for (int spin = 0; spin < SPINS + YIELDS; spin++) {
        if (spin < SPINS)
            cpu_relax();
        else /* the holder may be preempted: let it run (more processes than CPUs) */
            sched_yield();
        uint32_t seen = __atomic_load_n(word, __ATOMIC_RELAXED);
        if (try_take(word, &seen, me, 0))
            return 0;
        if (stuck != 0 && same_hold(seen, stuck) && !holder_is_dead(state, seen))
            return give_up(state, seen); /* the same holder as last time, still stuck */
    }
    uint32_t waited_on = 0; /* the hold the deadline is for: it restarts when the holder changes */
    int64_t deadline = 0;
    for (;;) {
        uint32_t seen = __atomic_load_n(word, __ATOMIC_RELAXED);
        if ((seen & HOLDER_MASK) == 0) {
            /* Having waited, take it marked contended: others may still sleep. */
            if (try_take(word, &seen, me, WAITERS))
                return 0;
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
        if (woken == 0 || errno != ETIMEDOUT)
            continue;
        if (!holder_is_dead(state, seen)) {
            if (!same_hold(seen, waited_on)) {
                waited_on = seen;
                deadline = now_ms() + GPUQ_LOCK_TIMEOUT_MS;
            } else if (now_ms() >= deadline) {
                return give_up(state, seen);
            }
            continue;
        }
        if (__atomic_compare_exchange_n(word, &seen, acquired(seen, me, WAITERS), 0,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            gpuq_log_once(&took_over_once, GPUQ_LOG_WARN,
                          "%s: took over the claim's lock from process slot %u, which died "
                          "holding it",
                          state->path, (seen & HOLDER_MASK) - 1);
            gpuq_state_recount(state);
            return 0;
        }
    }
}

int gpuq_lock(struct gpuq_state *state)
{
    uint32_t *word = &state->header->lock, me = state->slot + 1;
    uint32_t seen = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (try_take(word, &seen, me, 0))
        return 0;
    return lock_slow(state, word, me);
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
