/* private.c -- canopy's private folders: made with mkdtemp() inside an
 * output folder (mode 0700, an unpredictable suffix), removed without ever
 * following a link, and cleaned up by a later run when the process that
 * made them is gone (killed with SIGKILL, a power cut).
 *
 * The folder's name says which process made it, so that no moment exists
 * when the folder is there but its maker is not recorded:
 *
 *   .canopy-HHHHHHHHBBBBBBBB-PID-START-XXXXXX
 *
 * HHHHHHHH: FNV-1a hash of the host name; BBBBBBBB: of the boot id
 * (/proc/sys/kernel/random/boot_id); PID; START: the process's start time
 * (field 22 of /proc/PID/stat, clock ticks since boot); XXXXXX: mkdtemp's.
 *
 * A folder is an orphan when it is a real folder owned by this user, mode
 * 0700, named in that form, and its process is gone: same host and boot and
 * no process PID with that start time; or same host and another boot (the
 * machine restarted); or another host (a shared folder) and the folder
 * untouched for CNP_ORPHAN_FOREIGN_S. Anything else is left alone: canopy
 * only deletes what it can prove it made. */
#define _GNU_SOURCE
#include "config.h"
#include "base/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PREFIX ".canopy-"
#define MAX_DEPTH 4
/* A private folder of another host is only removed after a week. */
#define CNP_ORPHAN_FOREIGN_S (7 * 24 * 3600)

typedef struct owner {
    uint32_t host, boot;
    long pid;
    unsigned long long start;
} owner;

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The first line of a small file, without its newline, into buf; 0 when it
 * cannot be read. */
static int read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");
    int ok;
    if (!f)
        return 0;
    ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

/* Start time (field 22 of /proc/PID/stat) of process pid; 0 when there is
 * no such process (or no /proc). */
static unsigned long long proc_start(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long long start = 0;
    int field;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (!read_line(path, buf, sizeof buf))
        return 0;
    p = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
    if (!p)
        return 0;
    p++;
    for (field = 3; field < 22 && p; field++) /* p: the space before field 3, then 4... */
        p = strchr(p + 1, ' ');
    if (p)
        start = strtoull(p + 1, NULL, 10);
    return start;
}

static void owner_self(owner *o)
{
    char host[256] = "", boot[64] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "unknown");
    if (!read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot))
        strcpy(boot, "unknown");
    o->host = fnv1a(host);
    o->boot = fnv1a(boot);
    o->pid = (long)getpid();
    o->start = proc_start(o->pid);
}

char *cnp_private_dir_new(cnp_ctx *ctx, const char *dir, const char *what)
{
    char *priv = NULL;
    owner o;

    owner_self(&o);
    if (asprintf(&priv, "%s/" PREFIX "%08" PRIx32 "%08" PRIx32 "-%ld-%llu-XXXXXX",
                 dir && *dir ? dir : ".", o.host, o.boot, o.pid, o.start) < 0) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory making a temporary folder for %s", what);
        return NULL;
    }
    if (!mkdtemp(priv)) {
        int e = errno;
        cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", what, strerror(e),
                  cnp_write_advice(e));
        free(priv);
        return NULL;
    }
    return priv;
}

/* Removes everything in the folder open as dfd (closed here), depth levels
 * of sub-folders at most; links are removed, never followed. */
static void empty_dir(int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    struct dirent *e;
    if (!d) {
        close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            int sub;
            if (depth <= 0)
                continue;
            sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                empty_dir(sub, depth - 1);
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        } else {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
}

/* Removes the private folder `name` inside the folder open as pfd. */
static void remove_at(int pfd, const char *name)
{
    int dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return;
    empty_dir(dfd, MAX_DEPTH);
    unlinkat(pfd, name, AT_REMOVEDIR);
}

/* 1 when name is a private folder's name (the form above); its maker into
 * *o. */
static int private_name(const char *name, owner *o)
{
    size_t n = strlen(PREFIX), len = strlen(name), i;
    unsigned long long pid, v[2];
    const char *p;
    char hex[9], *end;

    if (strncmp(name, PREFIX, n) != 0 || len < n + 16 + 5 + 7 || name[len - 7] != '-')
        return 0;
    for (i = len - 6; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9')))
            return 0;
    for (i = n; i < n + 16; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    memcpy(hex, name + n, 8);
    hex[8] = '\0';
    o->host = (uint32_t)strtoul(hex, NULL, 16);
    memcpy(hex, name + n + 8, 8);
    o->boot = (uint32_t)strtoul(hex, NULL, 16);
    /* "-PID-START-": digits only */
    p = name + n + 16;
    for (i = 0; i < 2; i++) {
        if (*p != '-' || p[1] < '0' || p[1] > '9')
            return 0;
        v[i] = strtoull(p + 1, &end, 10);
        p = end;
    }
    if (p != name + len - 7 || v[0] == 0 || v[0] > 0x7fffffffULL)
        return 0;
    pid = v[0];
    o->start = v[1];
    o->pid = (long)pid;
    return 1;
}

void cnp_private_dir_remove(const char *path)
{
    owner o;
    const char *slash, *base;
    char *parent;
    int pfd;

    if (!path)
        return;
    slash = strrchr(path, '/');
    base = slash ? slash + 1 : path;
    if (!private_name(base, &o))
        return;
    parent = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!parent)
        return;
    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(parent);
    if (pfd < 0)
        return;
    remove_at(pfd, base);
    close(pfd);
}

/* 1 when the folder's process is provably gone. */
static int owner_gone(const owner *o, const owner *self, double age_s)
{
    if (o->host != self->host)
        return age_s > CNP_ORPHAN_FOREIGN_S;
    if (o->boot != self->boot)
        return 1; /* the machine has restarted since */
    if (o->pid == self->pid && o->start == self->start)
        return 0; /* this very process */
    if (o->start == 0 || self->start == 0) /* no /proc */
        return kill((pid_t)o->pid, 0) != 0 && errno == ESRCH;
    return proc_start(o->pid) != o->start;
}

int cnp_private_dirs_clean(const char *dir)
{
    DIR *d = opendir(dir && *dir ? dir : ".");
    struct dirent *e;
    owner self, o;
    int removed = 0;

    if (!d)
        return 0;
    owner_self(&self);
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (!private_name(e->d_name, &o) ||
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 077) != 0 ||
            !owner_gone(&o, &self, difftime(time(NULL), sb.st_mtime)))
            continue;
        remove_at(dirfd(d), e->d_name);
        removed++;
    }
    closedir(d);
    return removed;
}
