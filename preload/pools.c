/* Memory pools' charges (pools.h). One account per pool (and one per device for plain memory
 * freed on a stream), in a small array under one mutex; the pointers of pool allocations are in
 * the allocation map under their own kind, recording the account and the bytes charged. The
 * mutex is never held while charging (a charge that does not fit settles the pools, which takes
 * it), only around the accounts' arithmetic and the driver's pool queries. */
#include "pools.h"

#include <pthread.h>
#include <stdlib.h>

#include "charges.h"
#include "hooks.h"
#include "logging.h"
#include "maps.h"
#include "process.h"
#include "quota.h"

struct pending {
    uint64_t stream;
    uint64_t bytes;
};

struct account {
    int in_use;
    int plain;             /* plain memory freed on streams: nothing keeps it once the free ran */
    int destroyed;         /* the pool is gone: what comes back is released */
    CUmemoryPool pool;     /* NULL for plain accounts, or when the device's pool is unknown */
    int ordinal;           /* the CUDA device */
    int dev;               /* the config device; -1: not limited, nothing is charged */
    uint64_t live, cached; /* see pools.h */
    struct pending *pending;
    unsigned npending, pending_capacity;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct account *accounts;
static unsigned naccounts, capacity;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static __thread char thread_marker __attribute__((tls_model("initial-exec")));

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

/* The parent's pools are not the child's (CUDA does not survive fork), nor are their charges. */
static void fork_child(void)
{
    for (unsigned i = 0; i < naccounts; i++)
        free(accounts[i].pending);
    free(accounts);
    accounts = NULL;
    naccounts = capacity = 0;
    pthread_mutex_unlock(&lock);
}

static void register_fork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Which stream a free or allocation is ordered on: the per-thread default stream is one per
 * thread, the legacy default stream one per context (per account, here). */
static uint64_t stream_key(CUstream stream, int ptsz)
{
    if (stream == GPUQ_STREAM_PER_THREAD || (stream == NULL && ptsz))
        return (uint64_t)(uintptr_t)&thread_marker;
    return stream == NULL ? (uint64_t)(uintptr_t)GPUQ_STREAM_LEGACY : (uint64_t)(uintptr_t)stream;
}

static struct pending *pending_of(struct account *account, uint64_t stream)
{
    for (unsigned i = 0; i < account->npending; i++)
        if (account->pending[i].stream == stream)
            return &account->pending[i];
    return NULL;
}

static uint64_t pending_total(const struct account *account)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < account->npending; i++)
        total += account->pending[i].bytes;
    return total;
}

static void drop_empty_pending(struct account *account)
{
    for (unsigned i = 0; i < account->npending;)
        if (account->pending[i].bytes == 0)
            account->pending[i] = account->pending[--account->npending];
        else
            i++;
}

/* Adds to a stream's pending bytes; if there is no room to record it, the bytes stay live
 * (counted until the process exits, never too little). */
static void add_pending(struct account *account, uint64_t stream, uint64_t bytes)
{
    static int lost_once;
    if (bytes == 0)
        return;
    struct pending *found = pending_of(account, stream);
    if (found == NULL && account->npending == account->pending_capacity) {
        unsigned more = account->pending_capacity ? account->pending_capacity * 2 : 8;
        struct pending *grown = realloc(account->pending, more * sizeof *grown);
        if (grown == NULL) {
            account->live += bytes;
            gpuq_log_once(&lost_once, GPUQ_LOG_WARN,
                          "cannot record a stream-ordered free (out of memory); it stays "
                          "counted until this process exits");
            return;
        }
        account->pending = grown;
        account->pending_capacity = more;
    }
    if (found == NULL) {
        found = &account->pending[account->npending++];
        *found = (struct pending){stream, 0};
    }
    found->bytes += bytes;
}

static int find_account(CUmemoryPool pool, int plain, int dev_or_ordinal)
{
    for (unsigned i = 0; i < naccounts; i++) {
        const struct account *a = &accounts[i];
        if (!a->in_use || a->destroyed || a->plain != plain)
            continue;
        if (plain ? a->dev == dev_or_ordinal
                  : a->pool == pool && (pool != NULL || a->ordinal == dev_or_ordinal))
            return (int)i;
    }
    return -1;
}

static int add_account(CUmemoryPool pool, int plain, int ordinal, int dev)
{
    unsigned slot = 0;
    while (slot < naccounts && accounts[slot].in_use)
        slot++;
    if (slot == naccounts) {
        if (naccounts == capacity) {
            unsigned more = capacity ? capacity * 2 : 8;
            struct account *grown = realloc(accounts, more * sizeof *grown);
            if (grown == NULL)
                return -1;
            accounts = grown;
            capacity = more;
        }
        naccounts++;
    }
    pthread_once(&fork_once, register_fork);
    accounts[slot] = (struct account){.in_use = 1, .plain = plain, .pool = pool,
                                      .ordinal = ordinal, .dev = dev};
    return (int)slot;
}

static void forget_if_done(struct account *account)
{
    if (account->destroyed && account->live == 0 && account->npending == 0 &&
        account->cached == 0) {
        free(account->pending);
        *account = (struct account){0};
    }
}

/* The CUDA device of a pool we have not seen created: one whose default or current pool it is. */
static int pool_ordinal(CUmemoryPool pool)
{
    __typeof__(&cuDeviceGetMemPool) current = GPUQ_REAL(cuDeviceGetMemPool);
    __typeof__(&cuDeviceGetDefaultMemPool) fallback = GPUQ_REAL(cuDeviceGetDefaultMemPool);
    __typeof__(&cuDeviceGetCount) get_count = GPUQ_REAL(cuDeviceGetCount);
    int count = 0;
    if (get_count == NULL || get_count(&count) != CUDA_SUCCESS)
        return -1;
    for (int ordinal = 0; ordinal < count; ordinal++) {
        CUmemoryPool found;
        if ((current != NULL && current(&found, ordinal) == CUDA_SUCCESS && found == pool) ||
            (fallback != NULL && fallback(&found, ordinal) == CUDA_SUCCESS && found == pool))
            return ordinal;
    }
    return -1;
}

/* The account of an allocation from `pool` (NULL: the current pool of the stream's device), or -1
 * when nothing is charged; *refuse when the process failed closed. */
static int account_for(CUmemoryPool pool, CUstream stream, int *refuse)
{
    CUdevice ordinal = -1;
    if (pool == NULL) {
        __typeof__(&cuDeviceGetMemPool) current = GPUQ_REAL(cuDeviceGetMemPool);
        if (gpuq_stream_device(stream, &ordinal) != CUDA_SUCCESS)
            return -1; /* no context: the driver refuses the allocation itself */
        if (current == NULL || current(&pool, ordinal) != CUDA_SUCCESS)
            pool = NULL;
    }
    pthread_mutex_lock(&lock);
    int found = find_account(pool, 0, ordinal);
    int known_dev = found >= 0 ? accounts[found].dev : -1;
    pthread_mutex_unlock(&lock);
    if (found >= 0)
        return known_dev < 0 ? -1 : found;
    if (ordinal < 0)
        ordinal = pool_ordinal(pool);
    if (ordinal < 0 && gpuq_stream_device(stream, &ordinal) != CUDA_SUCCESS)
        return -1;
    int dev = gpuq_charge_device(ordinal, refuse);
    pthread_mutex_lock(&lock);
    found = find_account(pool, 0, ordinal);
    if (found < 0)
        found = add_account(pool, 0, ordinal, dev);
    pthread_mutex_unlock(&lock);
    if (found < 0 && dev >= 0)
        *refuse = 1; /* cannot keep the account: refuse rather than lose count */
    return found < 0 || dev < 0 ? -1 : found;
}

CUresult gpuq_pooled_begin(struct gpuq_pooled *pooled, CUmemoryPool pool, CUstream stream,
                           int ptsz, uint64_t bytes)
{
    pooled->account = -1;
    enum gpuq_mode mode = gpuq_process_mode();
    if (mode == GPUQ_MODE_FAILED_CLOSED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (mode != GPUQ_MODE_ENFORCING || bytes == 0)
        return CUDA_SUCCESS;
    int refuse = 0, index = account_for(pool, stream, &refuse);
    if (index < 0)
        return refuse ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    uint64_t wanted = gpuq_charge_rounded(bytes), key = stream_key(stream, ptsz);
    pthread_mutex_lock(&lock);
    struct account *account = &accounts[index];
    int dev = account->dev;
    uint64_t from_cached = wanted < account->cached ? wanted : account->cached;
    account->cached -= from_cached;
    struct pending *same_stream = pending_of(account, key);
    uint64_t from_pending = 0;
    if (same_stream != NULL) {
        from_pending = wanted - from_cached < same_stream->bytes ? wanted - from_cached
                                                                 : same_stream->bytes;
        same_stream->bytes -= from_pending;
        drop_empty_pending(account);
    }
    account->live += wanted;
    pthread_mutex_unlock(&lock);
    uint64_t need = wanted - from_cached - from_pending;
    *pooled = (struct gpuq_pooled){index, wanted, from_cached, from_pending, 0, key};
    if (need > 0 && gpuq_charge_bytes((unsigned)dev, need) != 0) {
        gpuq_pooled_end(pooled, CUDA_ERROR_OUT_OF_MEMORY, 0);
        pooled->account = -1;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pooled->charged = need;
    return CUDA_SUCCESS;
}

void gpuq_pooled_end(struct gpuq_pooled *pooled, CUresult result, CUdeviceptr dptr)
{
    static int untracked_once;
    if (pooled->account < 0)
        return;
    if (result == CUDA_SUCCESS) {
        struct gpuq_record record = {pooled->account, pooled->bytes};
        if (gpuq_map_put(GPUQ_KIND_POOLED, dptr, record) != 0) /* stays live until the process exits */
            gpuq_log_once(&untracked_once, GPUQ_LOG_WARN,
                          "cannot record an allocation (out of memory); it stays counted until "
                          "this process exits");
        return;
    }
    pthread_mutex_lock(&lock);
    struct account *account = &accounts[pooled->account];
    account->live -= pooled->bytes;
    account->cached += pooled->reused_cached;
    add_pending(account, pooled->stream, pooled->reused_pending);
    int dev = account->dev;
    pthread_mutex_unlock(&lock);
    if (pooled->charged > 0)
        gpuq_quota_release((unsigned)dev, pooled->charged);
}

int gpuq_pool_take(struct gpuq_pool_free *freeing, CUdeviceptr dptr)
{
    struct gpuq_record record;
    if (gpuq_process_mode() != GPUQ_MODE_ENFORCING || !gpuq_map_take(GPUQ_KIND_POOLED, dptr, &record))
        return 0;
    freeing->key = dptr;
    freeing->account = record.dev;
    freeing->bytes = record.bytes;
    return 1;
}

void gpuq_pool_freed(const struct gpuq_pool_free *freeing, CUresult result, CUstream stream,
                     int ptsz, int stream_ordered)
{
    if (result != CUDA_SUCCESS) { /* the driver kept it: so do we */
        gpuq_map_put(GPUQ_KIND_POOLED, freeing->key, (struct gpuq_record){freeing->account, freeing->bytes});
        return;
    }
    uint64_t released = 0;
    pthread_mutex_lock(&lock);
    struct account *account = &accounts[freeing->account];
    int dev = account->dev;
    account->live -= freeing->bytes;
    if (account->destroyed)
        released = freeing->bytes;
    else if (stream_ordered)
        add_pending(account, stream_key(stream, ptsz), freeing->bytes);
    else
        account->cached += freeing->bytes;
    forget_if_done(account);
    pthread_mutex_unlock(&lock);
    if (released > 0)
        gpuq_quota_release((unsigned)dev, released);
}

void gpuq_pool_plain_freed(int dev, uint64_t bytes, CUstream stream, int ptsz)
{
    int ordinal = -1;
    for (int i = 0; i < GPUQ_MAX_ORDINALS && ordinal < 0; i++)
        if (gpuq_process.ordinal_dev[i] == dev)
            ordinal = i;
    pthread_mutex_lock(&lock);
    int index = find_account(NULL, 1, dev);
    if (index < 0)
        index = add_account(NULL, 1, ordinal, dev);
    if (index >= 0)
        add_pending(&accounts[index], stream_key(stream, ptsz), bytes);
    pthread_mutex_unlock(&lock);
    /* Without an account the bytes stay charged until the process exits: never too little. */
}

void gpuq_pool_created(CUmemoryPool pool, const CUmemPoolProps *props)
{
    if (gpuq_process_mode() != GPUQ_MODE_ENFORCING || pool == NULL)
        return;
    int ordinal = props != NULL && props->location.type == CU_MEM_LOCATION_TYPE_DEVICE
                      ? props->location.id
                      : -1;
    int refuse, dev = ordinal >= 0 ? gpuq_charge_device(ordinal, &refuse) : -1;
    pthread_mutex_lock(&lock);
    if (find_account(pool, 0, ordinal) < 0)
        add_account(pool, 0, ordinal, dev); /* without it, the pool is found again later */
    pthread_mutex_unlock(&lock);
}

/* Gives back what an account holds beyond what its pool reports reserved (and never below live
 * and pending memory); the caller holds the lock. Returns the bytes released. */
static uint64_t settle_locked(struct account *account)
{
    if (!account->in_use || account->cached == 0)
        return 0;
    uint64_t floor = account->live + pending_total(account), keep = floor;
    if (!account->plain && !account->destroyed && account->pool != NULL) {
        __typeof__(&cuMemPoolGetAttribute) get = GPUQ_REAL(cuMemPoolGetAttribute);
        cuuint64_t reserved = 0;
        if (get == NULL ||
            get(account->pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) != CUDA_SUCCESS)
            return 0; /* cannot tell: keep counting it */
        if (reserved > floor)
            keep = reserved;
    }
    uint64_t total = floor + account->cached;
    if (keep >= total)
        return 0;
    account->cached = keep - floor;
    if (account->dev >= 0)
        gpuq_quota_release((unsigned)account->dev, total - keep);
    forget_if_done(account);
    return total - keep;
}

void gpuq_pool_destroyed(CUmemoryPool pool)
{
    pthread_mutex_lock(&lock);
    int index = find_account(pool, 0, -1);
    if (index >= 0) {
        accounts[index].destroyed = 1;
        settle_locked(&accounts[index]);
        forget_if_done(&accounts[index]);
    }
    pthread_mutex_unlock(&lock);
}

void gpuq_pools_synchronized(CUstream stream, int ptsz, int whole_device)
{
    if (__atomic_load_n(&naccounts, __ATOMIC_RELAXED) == 0)
        return;
    uint64_t key = stream_key(stream, ptsz);
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < naccounts; i++) {
        struct account *account = &accounts[i];
        if (!account->in_use)
            continue;
        for (unsigned p = 0; p < account->npending; p++)
            if (whole_device >= 0 ? account->ordinal == whole_device
                                  : account->pending[p].stream == key) {
                account->cached += account->pending[p].bytes;
                account->pending[p].bytes = 0;
            }
        drop_empty_pending(account);
        settle_locked(account);
    }
    pthread_mutex_unlock(&lock);
}

int gpuq_pools_settle(void)
{
    if (__atomic_load_n(&naccounts, __ATOMIC_RELAXED) == 0)
        return 0;
    uint64_t released = 0;
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < naccounts; i++)
        released += settle_locked(&accounts[i]);
    pthread_mutex_unlock(&lock);
    return released > 0;
}

void gpuq_pool_settle(CUmemoryPool pool)
{
    pthread_mutex_lock(&lock);
    int index = find_account(pool, 0, -1);
    if (index >= 0)
        settle_locked(&accounts[index]);
    pthread_mutex_unlock(&lock);
}
