/* The allocation map (maps.h): 16 shards, each a mutex and a linear-probing table kept at most
 * half full, with backward-shift deletion (no tombstones, so probes stay short). */
#include "maps.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define INITIAL_CAPACITY 64

struct entry {
    uint64_t key; /* 0: empty */
    uint32_t kind;
    int32_t dev;
    uint64_t bytes;
};

struct shard {
    pthread_mutex_t lock;
    struct entry *entries;
    size_t capacity, count;
};

static struct shard shards[SHARDS] = {
#define SHARD_INIT {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0}
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
};

static uint64_t hash(uint32_t kind, uint64_t key)
{
    uint64_t x = key ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static struct shard *shard_of(uint64_t h)
{
    return &shards[h >> 60];
}

static size_t find(const struct shard *shard, uint32_t kind, uint64_t key, uint64_t h)
{
    size_t mask = shard->capacity - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct entry *entry = &shard->entries[i];
        if (entry->key == 0 || (entry->key == key && entry->kind == kind))
            return i;
    }
}

static int grow(struct shard *shard)
{
    size_t capacity = shard->capacity ? shard->capacity * 2 : INITIAL_CAPACITY;
    struct entry *old = shard->entries, *fresh = calloc(capacity, sizeof *fresh);
    if (fresh == NULL)
        return -1;
    size_t old_capacity = shard->capacity;
    shard->entries = fresh;
    shard->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].key != 0)
            shard->entries[find(shard, old[i].kind, old[i].key, hash(old[i].kind, old[i].key))] =
                old[i];
    free(old);
    return 0;
}

int gpuq_map_put(enum gpuq_kind kind, uint64_t key, struct gpuq_record record)
{
    if (key == 0)
        return -1;
    uint64_t h = hash(kind, key);
    struct shard *shard = shard_of(h);
    int result = 0;
    pthread_mutex_lock(&shard->lock);
    if ((shard->count + 1) * 2 > shard->capacity && grow(shard) != 0) {
        result = -1;
    } else {
        struct entry *entry = &shard->entries[find(shard, kind, key, h)];
        if (entry->key == 0)
            shard->count++;
        *entry = (struct entry){key, kind, record.dev, record.bytes};
    }
    pthread_mutex_unlock(&shard->lock);
    return result;
}

static void remove_at(struct shard *shard, size_t hole)
{
    size_t mask = shard->capacity - 1;
    for (size_t i = (hole + 1) & mask; shard->entries[i].key != 0; i = (i + 1) & mask) {
        size_t home = hash(shard->entries[i].kind, shard->entries[i].key) & mask;
        /* Move the entry back into the hole unless its home lies cyclically in (hole, i]. */
        int stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            shard->entries[hole] = shard->entries[i];
            hole = i;
        }
    }
    shard->entries[hole].key = 0;
    shard->count--;
}

int gpuq_map_take(enum gpuq_kind kind, uint64_t key, struct gpuq_record *record)
{
    if (key == 0)
        return 0;
    uint64_t h = hash(kind, key);
    struct shard *shard = shard_of(h);
    int found = 0;
    pthread_mutex_lock(&shard->lock);
    if (shard->capacity != 0) {
        size_t i = find(shard, kind, key, h);
        if (shard->entries[i].key != 0) {
            record->dev = shard->entries[i].dev;
            record->bytes = shard->entries[i].bytes;
            remove_at(shard, i);
            found = 1;
        }
    }
    pthread_mutex_unlock(&shard->lock);
    return found;
}

void gpuq_map_clear(void)
{
    for (int s = 0; s < SHARDS; s++) {
        pthread_mutex_lock(&shards[s].lock);
        free(shards[s].entries);
        shards[s].entries = NULL;
        shards[s].capacity = shards[s].count = 0;
        pthread_mutex_unlock(&shards[s].lock);
    }
}

void gpuq_map_fork_prepare(void)
{
    for (int s = 0; s < SHARDS; s++)
        pthread_mutex_lock(&shards[s].lock);
}

void gpuq_map_fork_release(void)
{
    for (int s = SHARDS - 1; s >= 0; s--)
        pthread_mutex_unlock(&shards[s].lock);
}
