/* The simulated GPUs, read from the environment (fake_gpus.h). */
#include "fake_gpus.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fake_gpu_count;
struct fake_gpu fake_gpus[FAKE_MAX_DEVICES];
char fake_driver_version[80];
int fake_cuda_driver_version;

static int parse_uuids(const char *list)
{
    int count = 0;
    for (const char *start = list; *start != '\0' && count < FAKE_MAX_DEVICES;) {
        size_t length = strcspn(start, ",");
        struct fake_gpu *gpu = &fake_gpus[count];
        if (gpuq_uuid_parse(start, length, &gpu->uuid) != 0) {
            fprintf(stderr, "fake: FAKE_GPU_UUIDS: '%.*s' is no GPU/MIG UUID\n", (int)length,
                    start);
            return -1;
        }
        memcpy(gpu->uuid_text, start, length);
        gpu->uuid_text[length] = '\0';
        count++;
        start += length + (start[length] == ',');
    }
    return count;
}

static void parse_memory(const char *list)
{
    uint64_t last = FAKE_DEFAULT_MEMORY;
    for (int i = 0; i < FAKE_MAX_DEVICES; i++) {
        if (list != NULL && *list != '\0') {
            char *end;
            last = strtoull(list, &end, 10);
            list = *end == ',' ? end + 1 : end;
        }
        fake_gpus[i].memory = last;
    }
}

/* Copies item `index` of a comma-separated list (the last item when the list is shorter) into
 * `out`; 0 if it fits, 1 if the list is empty or absent, -1 if the item is too long. */
static int list_item(const char *list, int index, char *out, size_t size)
{
    if (list == NULL || *list == '\0')
        return 1;
    for (int i = 0; i < index && strchr(list, ',') != NULL; i++)
        list = strchr(list, ',') + 1;
    size_t length = strcspn(list, ",");
    if (length >= size)
        return -1;
    memcpy(out, list, length);
    out[length] = '\0';
    return 0;
}

static int load_identity(void)
{
    const char *minors = getenv("FAKE_GPU_MINORS"), *buses = getenv("FAKE_GPU_PCI_BUS_IDS");
    const char *names = getenv("FAKE_GPU_NAMES"), *cuda = getenv("FAKE_CUDA_DRIVER_VERSION");
    for (int i = 0; i < fake_gpu_count; i++) {
        struct fake_gpu *gpu = &fake_gpus[i];
        char minor[16];
        unsigned domain, bus, device, function;
        gpu->minor = list_item(minors, i, minor, sizeof minor) == 0 ? (unsigned)atoi(minor)
                                                                   : (unsigned)i;
        if (list_item(buses, i, gpu->pci_bus_id, sizeof gpu->pci_bus_id) != 0)
            snprintf(gpu->pci_bus_id, sizeof gpu->pci_bus_id, "0000:%02x:00.0", 0x10 + i);
        if (sscanf(gpu->pci_bus_id, "%x:%x:%x.%x", &domain, &bus, &device, &function) != 4) {
            fprintf(stderr, "fake: FAKE_GPU_PCI_BUS_IDS: '%s' is no PCI bus id\n",
                    gpu->pci_bus_id);
            return -1;
        }
        if (list_item(names, i, gpu->name, sizeof gpu->name) != 0)
            strcpy(gpu->name, "NVIDIA A100-SXM4-40GB");
    }
    if (list_item(getenv("FAKE_DRIVER_VERSION"), 0, fake_driver_version,
                  sizeof fake_driver_version) != 0)
        strcpy(fake_driver_version, "580.95.05");
    fake_cuda_driver_version = cuda != NULL && *cuda != '\0' ? atoi(cuda) : 13000;
    return 0;
}

static int load(void)
{
    const char *uuids = getenv("FAKE_GPU_UUIDS"), *count = getenv("FAKE_GPU_COUNT");
    int named = uuids != NULL ? parse_uuids(uuids) : 0;
    if (named < 0)
        return -1;
    fake_gpu_count = count != NULL ? atoi(count) : (named > 0 ? named : 1);
    if (fake_gpu_count < 0 || fake_gpu_count > FAKE_MAX_DEVICES) {
        fprintf(stderr, "fake: FAKE_GPU_COUNT must be 0..%d\n", FAKE_MAX_DEVICES);
        return -1;
    }
    for (int i = named; i < fake_gpu_count; i++) {
        memset(&fake_gpus[i].uuid, 0, sizeof fake_gpus[i].uuid);
        fake_gpus[i].uuid.bytes[0] = 0xfa;
        fake_gpus[i].uuid.bytes[1] = 0x4e;
        fake_gpus[i].uuid.bytes[15] = (unsigned char)i;
        gpuq_uuid_format(&fake_gpus[i].uuid, "GPU", fake_gpus[i].uuid_text);
    }
    parse_memory(getenv("FAKE_GPU_MEM_BYTES"));
    return load_identity();
}

static int load_result;

static void load_once(void)
{
    load_result = load();
}

int fake_gpus_load(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load_once);
    return load_result;
}

void fake_trace(const char *fmt, ...)
{
    static int enabled = -1;
    if (enabled < 0)
        enabled = getenv("FAKE_TRACE") != NULL;
    if (!enabled)
        return;
    char line[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    fprintf(stderr, "fake: %s\n", line);
}
