/* replay.c -- a main for libFuzzer targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput on each file named on the command line (folders:
 * every file inside, in name order), or, with no arguments, on the saved
 * inputs of the target, $CANOPY_SRCDIR/cnp_fuzz_corpus (fuzz.h), so that
 * `make check` replays every corpus entry and saved crash. Exit 0 when all
 * ran, 99 when an input could not be read (a crash is the test's failure).
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    struct stat sb;
    size_t size;
    int ok = 0;

    if (!f || fstat(fileno(f), &sb) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        goto cleanup;
    }
    size = (size_t)sb.st_size;
    buf = malloc(size ? size : 1);
    if (!buf || (size && fread(buf, 1, size, f) != size)) {
        fprintf(stderr, "replay: %s: could not read\n", path);
        goto cleanup;
    }
    LLVMFuzzerTestOneInput(buf, size);
    ok = 1;
cleanup:
    if (f)
        fclose(f);
    free(buf);
    return ok;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Runs a file or every file of a folder; returns inputs run, -1 on error. */
static long run_path(const char *path)
{
    struct stat sb;
    struct dirent **list = NULL;
    long count = 0;
    int n;

    if (stat(path, &sb) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return run_file(path) ? 1 : -1;
    n = scandir(path, &list, skip_hidden, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char *p = malloc(strlen(path) + strlen(list[i]->d_name) + 2);
        if (p && count >= 0) {
            sprintf(p, "%s/%s", path, list[i]->d_name);
            count = run_file(p) ? count + 1 : -1;
        } else {
            count = -1;
        }
        free(p);
        free(list[i]);
    }
    free(list);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            long c = run_path(argv[i]);
            if (c < 0)
                return 99;
            total += c;
        }
    } else {
        const char *src = getenv("CANOPY_SRCDIR");
        char *dir = malloc(strlen(src ? src : ".") + strlen(cnp_fuzz_corpus) + 2);
        if (!dir)
            return 99;
        sprintf(dir, "%s/%s", src ? src : ".", cnp_fuzz_corpus);
        total = run_path(dir);
        free(dir);
        if (total < 0)
            return 99;
        if (total == 0) {
            fprintf(stderr, "replay: no inputs in %s\n", cnp_fuzz_corpus);
            return 99;
        }
    }
    printf("replayed %ld input%s\n", total, total == 1 ? "" : "s");
    return 0;
}
