/* private.c -- canopy's private folders: made with mkdtemp() inside an
 * output folder (mode 0700, unpredictable name ".canopy-XXXXXX"), marked
 * as canopy's by an owner file, removed without ever following a link, and
 * cleaned up by a later run when the process that made them is gone (killed
 * with SIGKILL, a power cut).
 *
 * The owner file (".canopy-owner") says which process made the folder:
 *
 *   canopy private folder 1
 *   host HOSTNAME
 *   boot BOOT-ID          (/proc/sys/kernel/random/boot_id)
 *   pid PID
 *   start START           (field 22 of /proc/PID/stat: start time in ticks)
 *
 * A folder is an orphan when it is a real folder owned by this user, mode
 * 0700, with a regular owner file in that form, and its process is gone:
 * same host and boot and no process PID with that start time; or same host
 * and another boot (the machine restarted); or another host (a shared
 * folder) and the owner file older than CNP_ORPHAN_FOREIGN_S. Anything else
 * is left alone: canopy only deletes what it can prove it made. */
#define _GNU_SOURCE
#include "config.h"
#include "base/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OWNER_FILE ".canopy-owner"
#define OWNER_MAGIC "canopy private folder 1"
#define PREFIX ".canopy-"
#define MAX_DEPTH 4
/* A private folder of another host is only removed after a week. */
#define CNP_ORPHAN_FOREIGN_S (7 * 24 * 3600)

typedef struct owner {
    char host[256];
    char boot[64];
    long pid;
    unsigned long long start;
} owner;

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
    memset(o, 0, sizeof *o);
    if (gethostname(o->host, sizeof o->host - 1) != 0)
        strcpy(o->host, "unknown");
    if (!read_line("/proc/sys/kernel/random/boot_id", o->boot, sizeof o->boot) || !o->boot[0])
        strcpy(o->boot, "unknown");
    o->pid = (long)getpid();
    o->start = proc_start(o->pid);
}

/* Writes the owner file into the folder open as dfd; 0 or errno. */
static int owner_write(int dfd)
{
    char text[512];
    owner o;
    int fd, n, e = 0;

    owner_self(&o);
    n = snprintf(text, sizeof text, OWNER_MAGIC "\nhost %s\nboot %s\npid %ld\nstart %llu\n",
                 o.host, o.boot, o.pid, o.start);
    fd = openat(dfd, OWNER_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    if (write(fd, text, (size_t)n) != n)
        e = errno ? errno : EIO;
    if (close(fd) != 0 && !e)
        e = errno;
    return e;
}

char *cnp_private_dir_new(cnp_ctx *ctx, const char *dir, const char *what)
{
    char *priv = NULL;
    int dfd, e;

    if (asprintf(&priv, "%s/" PREFIX "XXXXXX", dir && *dir ? dir : ".") < 0) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory making a temporary folder for %s", what);
        return NULL;
    }
    if (!mkdtemp(priv)) {
        e = errno;
        cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", what, strerror(e),
                  cnp_write_advice(e));
        free(priv);
        return NULL;
    }
    dfd = open(priv, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    e = dfd < 0 ? errno : owner_write(dfd);
    if (dfd >= 0)
        close(dfd);
    if (e) {
        cnp_private_dir_remove(priv);
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

/* 1 when name is ".canopy-" and six characters of mkdtemp's alphabet. */
static int private_name(const char *name)
{
    size_t i, n = strlen(PREFIX);
    if (strncmp(name, PREFIX, n) != 0 || strlen(name) != n + 6)
        return 0;
    for (i = n; name[i]; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9')))
            return 0;
    return 1;
}

void cnp_private_dir_remove(const char *path)
{
    const char *slash, *base;
    char *parent;
    int pfd;

    if (!path)
        return;
    slash = strrchr(path, '/');
    base = slash ? slash + 1 : path;
    if (!private_name(base))
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

/* Reads the owner file of the private folder open as dfd; 1 when it is one
 * (a regular file of ours in the form above). *age_s: seconds since it was
 * written. */
static int owner_read(int dfd, owner *o, double *age_s)
{
    char buf[1024];
    struct stat sb;
    FILE *f;
    int fd, ok;

    memset(o, 0, sizeof *o);
    fd = openat(dfd, OWNER_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
        sb.st_size > 1024 || !(f = fdopen(fd, "r"))) {
        close(fd);
        return 0;
    }
    *age_s = difftime(time(NULL), sb.st_mtime);
    ok = fgets(buf, sizeof buf, f) && !strcmp(buf, OWNER_MAGIC "\n") &&
         fscanf(f, "host %255s\nboot %63s\npid %ld\nstart %llu", o->host, o->boot, &o->pid,
                &o->start) == 4 && o->pid > 0;
    fclose(f);
    return ok;
}

/* 1 when the folder's process is provably gone. */
static int owner_gone(const owner *o, const owner *self, double age_s)
{
    if (strcmp(o->host, self->host) != 0)
        return age_s > CNP_ORPHAN_FOREIGN_S;
    if (strcmp(o->boot, self->boot) != 0)
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
        double age_s = 0;
        int dfd, gone;
        if (!private_name(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 077) != 0)
            continue;
        dfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            continue;
        gone = owner_read(dfd, &o, &age_s) && owner_gone(&o, &self, age_s);
        close(dfd);
        if (gone) {
            remove_at(dirfd(d), e->d_name);
            removed++;
        }
    }
    closedir(d);
    return removed;
}
