/* report.c -- `canopy report OUTDIR`: every scene of an output folder (its
 * manifest, or its failure record, or a scene_error event of a JSONL log)
 * on one self-contained HTML page, and the folder's STAC Collection. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/html.h"
#include "pictures/internal.h"

#include <cpl_conv.h>
#include <cpl_string.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct report {
    const cnp_report_options *o;
    cnp_scene_record **rec;
    int n, cap;
    char *collection_id;
    void (*warn)(const char *msg, void *user);
    void *user;
} report;

static void warnf(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(report *r, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    if (!r->warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->warn(msg, r->user);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && !strcmp(s + n - m, suf);
}

static int find(const report *r, const char *name)
{
    int i;
    for (i = 0; i < r->n; i++)
        if (!strcmp(r->rec[i]->name, name))
            return i;
    return -1;
}

static int push_record(report *r, cnp_scene_record *s)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        cnp_scene_record **p = realloc(r->rec, sizeof *p * (size_t)cap);
        if (!p)
            return 0;
        r->rec = p;
        r->cap = cap;
    }
    r->rec[r->n++] = s;
    return 1;
}

static double mtime(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 ? sb.st_mtim.tv_sec + 1e-9 * sb.st_mtim.tv_nsec : 0;
}

/* One NAME: its manifest, or its failure record when that is newer. */
static cnp_status load_one(cnp_ctx *ctx, report *r, const char *name, int is_failure)
{
    cnp_scene_record *s = NULL;
    cnp_ctx local;
    int i = find(r, name);

    if (i >= 0) {
        /* Already read from the other file: keep the newer of the two. */
        const char *other = r->rec[i]->failed ? r->rec[i]->record : r->rec[i]->manifest;
        char *mine = cnp_join_name(r->o->outdir, name, is_failure ? ".failed.json"
                                                                  : ".manifest.json");
        int newer = mine && mtime(mine) > mtime(other);
        free(mine);
        if (!newer)
            return CNP_OK;
    }
    cnp_ctx_clear(&local);
    if ((is_failure ? cnp_failure_read(&local, r->o->outdir, name, &s)
                    : cnp_scene_record_read(&local, r->o->outdir, name, &s)) != CNP_OK) {
        if (local.status == CNP_ERR_NOMEM)
            return cnp_error(ctx, CNP_ERR_NOMEM, "%s", local.msg);
        warnf(r, "%s; left out of the report", local.msg);
        return CNP_OK;
    }
    if (i >= 0) {
        cnp_scene_record_free(r->rec[i]);
        r->rec[i] = s;
        return CNP_OK;
    }
    if (!push_record(r, s)) {
        cnp_scene_record_free(s);
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory reading %s", r->o->outdir);
    }
    return CNP_OK;
}

static cnp_status load_folder(cnp_ctx *ctx, report *r)
{
    DIR *d = opendir(r->o->outdir);
    struct dirent *e;
    cnp_status st = CNP_OK;

    if (!d)
        return cnp_error(ctx, CNP_ERR_IO, "cannot list the folder %s: %s; give canopy classify's "
                         "output folder", r->o->outdir, strerror(errno));
    while (st == CNP_OK && (e = readdir(d)) != NULL) {
        int fail = has_suffix(e->d_name, ".failed.json");
        size_t n = strlen(e->d_name);
        char *name;
        if (e->d_name[0] == '.' || !(fail || has_suffix(e->d_name, ".manifest.json")))
            continue;
        name = strndup(e->d_name, n - strlen(fail ? ".failed.json" : ".manifest.json"));
        if (!name) {
            st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
            break;
        }
        st = load_one(ctx, r, name, fail);
        free(name);
    }
    closedir(d);
    return st;
}

/* scene_error events of a JSONL log, for scenes with no manifest. */
static cnp_status load_events(cnp_ctx *ctx, report *r, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    cnp_status st = CNP_OK;

    if (!f)
        return cnp_error(ctx, CNP_ERR_IO, "cannot read the event log %s: %s", path,
                         strerror(errno));
    while (st == CNP_OK && getline(&line, &cap, f) >= 0) {
        json_object *ev = json_tokener_parse(line), *v;
        const char *scene = NULL, *status = NULL, *msg = NULL;
        cnp_scene_record *s;
        char *name;
        if (ev && json_object_object_get_ex(ev, "event", &v) &&
            !strcmp(json_object_get_string(v), "scene_error")) {
            if (json_object_object_get_ex(ev, "scene", &v))
                scene = json_object_get_string(v);
            if (json_object_object_get_ex(ev, "status", &v))
                status = json_object_get_string(v);
            if (json_object_object_get_ex(ev, "message", &v))
                msg = json_object_get_string(v);
        }
        name = scene ? strdup(CPLGetBasename(scene)) : NULL;
        if (name && *name && find(r, name) < 0) {
            s = calloc(1, sizeof *s);
            if (!s || !push_record(r, s)) {
                free(s);
                st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory reading %s", path);
            } else {
                s->name = name;
                name = NULL;
                s->failed = 1;
                s->alerts_new = -1;
                s->scene = strdup(scene);
                s->status = status ? strdup(status) : NULL;
                s->message = msg ? strdup(msg) : NULL;
            }
        }
        free(name);
        json_object_put(ev);
    }
    free(line);
    fclose(f);
    return st;
}

/* Quick-looks and Items missing beside finished scenes. */
static void fill_missing(report *r, int *filled)
{
    int i;
    for (i = 0; i < r->n; i++) {
        cnp_scene_record *s = r->rec[i];
        cnp_ctx c;
        if (s->failed || !s->scene)
            continue;
        cnp_ctx_clear(&c);
        if (!s->quicklook) {
            cnp_quicklook_params q;
            char *path = cnp_join_name(r->o->outdir, s->name, ".quicklook.png");
            cnp_scene_record_quicklook(s, &q);
            if (path && cnp_quicklook_write(&c, path, &q, NULL) == CNP_OK) {
                s->quicklook = path;
                path = NULL;
                (*filled)++;
                warnf(r, "made %s", s->quicklook);
            } else if (path) {
                warnf(r, "%s: no quick-look: %s", s->name, c.msg);
            }
            free(path);
        }
        cnp_ctx_clear(&c);
        if (!s->stac) {
            cnp_stac_item_params p;
            char *path = cnp_join_name(r->o->outdir, s->name, ".stac.json");
            cnp_scene_record_stac(s, r->collection_id, &p);
            if (path && cnp_stac_item_write(&c, path, &p) == CNP_OK) {
                s->stac = path;
                path = NULL;
                (*filled)++;
                warnf(r, "made %s", s->stac);
            } else if (path) {
                warnf(r, "%s: no STAC Item: %s", s->name, c.msg);
            }
            free(path);
        }
    }
}

/* Failures first, then new alerts (most first), then by name. */
static int cmp_records(const void *a, const void *b)
{
    const cnp_scene_record *x = *(cnp_scene_record *const *)a, *y = *(cnp_scene_record *const *)b;
    if (x->failed != y->failed)
        return y->failed - x->failed;
    if ((x->alerts_new > 0) != (y->alerts_new > 0) || x->alerts_new != y->alerts_new)
        return x->alerts_new > y->alerts_new ? -1 : 1;
    return strcmp(x->name, y->name);
}

static cnp_status write_html(cnp_ctx *ctx, report *r, const char *html,
                             const cnp_report_summary *sum)
{
    char *dir = strdup(html), *slash, *rel = NULL;
    cnp_buf b = {0};
    cnp_status st;

    if (!dir)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    rel = cnp_relative_dir(slash ? (*dir ? dir : "/") : ".", r->o->outdir);
    if (!rel) {
        free(dir);
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s: its folder does not exist; create "
                         "it or choose another -o", html);
    }
    cnp_report_html(&b, r->o, r->rec, r->n, rel, sum);
    if (b.failed)
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", html);
    else
        st = cnp_atomic_write(ctx, html, b.data, b.len);
    cnp_buf_free(&b);
    free(rel);
    free(dir);
    return st;
}

cnp_status cnp_report_write(cnp_ctx *ctx, const cnp_report_options *o, cnp_report_summary *sum,
                            void (*warn)(const char *msg, void *user), void *user)
{
    report r;
    cnp_report_summary s;
    cnp_status st = CNP_OK;
    char *html = NULL, *coll = NULL;
    int i;

    memset(&r, 0, sizeof r);
    memset(&s, 0, sizeof s);
    r.o = o;
    r.warn = warn;
    r.user = user;
    if (!(r.collection_id = cnp_stac_collection_id(ctx, o->outdir)))
        return CNP_ERR_NOMEM;
    if ((st = load_folder(ctx, &r)) != CNP_OK)
        goto cleanup;
    for (i = 0; o->events && o->events[i]; i++)
        if ((st = load_events(ctx, &r, o->events[i])) != CNP_OK)
            goto cleanup;
    if (r.n == 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s holds no scene (no NAME.manifest.json or "
                       "NAME.failed.json); give canopy classify's output folder", o->outdir);
        goto cleanup;
    }
    if (o->fill)
        fill_missing(&r, &s.filled);
    qsort(r.rec, (size_t)r.n, sizeof *r.rec, cmp_records);
    for (i = 0; i < r.n; i++) {
        s.scenes++;
        s.failed += r.rec[i]->failed;
        s.ok += !r.rec[i]->failed;
        s.chips += r.rec[i]->classified;
        s.seconds += r.rec[i]->seconds;
        s.alerts_new += r.rec[i]->alerts_new > 0 ? (int)r.rec[i]->alerts_new : 0;
    }
    coll = cnp_join_name(o->outdir, "collection", ".json");
    html = o->html ? strdup(o->html) : cnp_join_name(o->outdir, "report", ".html");
    if (!coll || !html) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((st = cnp_stac_collection_write(ctx, coll, r.collection_id, o, r.rec, r.n)) != CNP_OK ||
        (st = write_html(ctx, &r, html, &s)) != CNP_OK)
        goto cleanup;
    if (sum)
        *sum = s;
cleanup:
    for (i = 0; i < r.n; i++)
        cnp_scene_record_free(r.rec[i]);
    free(r.rec);
    free(r.collection_id);
    free(coll);
    free(html);
    return st;
}
