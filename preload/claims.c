/* Finding the claims of this container under the claims root (claims.h). */
#define _GNU_SOURCE
#include "claims.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int skip_dots(const struct dirent *entry)
{
    return strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
}

/* Two configs naming one device: which one's limit holds is unknowable, so neither. */
static int check_unique(const struct gpuq_claim *claims, unsigned count, char *file,
                        size_t file_size, char *why, size_t why_size)
{
    unsigned devices = 0;
    for (unsigned c = 0; c < count; c++) {
        const struct gpuq_config *config = &claims[c].config;
        devices += config->ndev;
        for (unsigned dev = 0; dev < config->ndev; dev++)
            for (unsigned other = 0; other < c; other++) {
                if (gpuq_config_find(&claims[other].config, &config->uuid[dev]) < 0)
                    continue;
                snprintf(file, file_size, "%s", config->path);
                snprintf(why, why_size, "%s is limited here and in %s too", config->uuid_text[dev],
                         claims[other].config.path);
                return -1;
            }
    }
    if (devices > GPUQ_MAX_DEVICES) {
        snprintf(file, file_size, "%s", GPUQ_CLAIMS_ROOT);
        snprintf(why, why_size, "the claims limit %u devices, more than %d", devices,
                 GPUQ_MAX_DEVICES);
        return -1;
    }
    return 0;
}

int gpuq_claims_find(struct gpuq_claim *claims, unsigned *count, char *file, size_t file_size,
                     char *why, size_t why_size)
{
    struct stat status;
    *count = 0;
    snprintf(file, file_size, "%s", GPUQ_CLAIMS_ROOT);
    if (stat(GPUQ_CLAIMS_ROOT, &status) != 0 && errno == ENOENT)
        return 1;
    struct dirent **entries = NULL;
    int found = scandir(GPUQ_CLAIMS_ROOT, &entries, skip_dots, alphasort), result = 0;
    if (found < 0) {
        snprintf(why, why_size, "cannot list the claims: %s", strerror(errno));
        return -1;
    }
    if (found == 0) {
        snprintf(why, why_size, "no claim directory in it");
        result = -1;
    } else if (found > GPUQ_MAX_CLAIMS) {
        snprintf(why, why_size, "%d claim directories, more than %d", found, GPUQ_MAX_CLAIMS);
        result = -1;
    }
    for (int i = 0; result == 0 && i < found; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%.200s/%s", GPUQ_CLAIMS_ROOT, entries[i]->d_name,
                 GPUQ_CLAIM_CONFIG);
        if (gpuq_config_load(path, &claims[i].config, why, why_size) != 0) {
            snprintf(file, file_size, "%s", path);
            result = -1;
            break;
        }
        claims[i].first_dev = i == 0 ? 0 : claims[i - 1].first_dev + claims[i - 1].config.ndev;
        *count = (unsigned)i + 1;
    }
    for (int i = 0; i < found; i++)
        free(entries[i]);
    free(entries);
    if (result == 0)
        result = check_unique(claims, *count, file, file_size, why, why_size);
    return result;
}
