/* outputs.c -- the output files of one scene: names, listing, the move of
 * a finished scene from its private folder into place, removal.
 *
 * Only files canopy can prove it made are ever removed: those the scene's
 * own manifest lists, under the scene's own output names (NAME.probs.tif
 * ..., NAME.masks/LABEL.tif|.qml), regular files reached without following
 * a link. */
#define _GNU_SOURCE
#include "config.h"
#include "pipeline/pipeline.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <json-c/json.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "DIR/NAME.SUFFIX" (caller frees). */
static char *out_path(cnp_ctx *ctx, const char *dir, const char *name, const char *suffix)
{
    char *p;
    if (asprintf(&p, "%s/%s%s", dir, name, suffix) < 0) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return p;
}

void cnp_scene_outputs_free(cnp_scene_outputs *w)
{
    free(w->probs);
    free(w->probs_qml);
    free(w->masks);
    free(w->masks_qml);
    free(w->markers);
    free(w->manifest);
    free(w->split_dir);
    free(w->quicklook);
    free(w->quicklook_pgw);
    free(w->quicklook_aux);
    free(w->stac);
    free(w->alerts);
    free(w->dir);
    memset(w, 0, sizeof *w);
}

cnp_status cnp_scene_outputs_init(cnp_ctx *ctx, const char *dir, const char *name,
                                  cnp_scene_outputs *w)
{
    memset(w, 0, sizeof *w);
    w->probs = out_path(ctx, dir, name, ".probs.tif");
    w->probs_qml = out_path(ctx, dir, name, ".probs.qml");
    w->masks = out_path(ctx, dir, name, ".masks.tif");
    w->masks_qml = out_path(ctx, dir, name, ".masks.qml");
    w->markers = out_path(ctx, dir, name, ".markers.geojson");
    w->manifest = out_path(ctx, dir, name, ".manifest.json");
    w->split_dir = out_path(ctx, dir, name, ".masks");
    w->quicklook = out_path(ctx, dir, name, ".quicklook.png");
    w->quicklook_pgw = out_path(ctx, dir, name, ".quicklook.pgw");
    w->quicklook_aux = out_path(ctx, dir, name, ".quicklook.png.aux.xml");
    w->stac = out_path(ctx, dir, name, ".stac.json");
    w->alerts = out_path(ctx, dir, name, ".alerts.geojson");
    w->dir = cnp_strdup(ctx, dir);
    if (!w->alerts || !w->dir || !w->probs || !w->probs_qml || !w->masks || !w->masks_qml || !w->markers ||
        !w->manifest || !w->split_dir || !w->quicklook || !w->quicklook_pgw ||
        !w->quicklook_aux || !w->stac)
        return CNP_ERR_NOMEM;
    return CNP_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cnp_scene_outputs_list_split(const char *dir, char ***list)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **found = NULL;
    int i, n;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            found = CSLAddString(found, CPLFormFilename(dir, e->d_name, NULL));
    closedir(d);
    n = CSLCount(found);
    if (n > 1)
        qsort(found, (size_t)n, sizeof *found, cmp_str);
    for (i = 0; i < n; i++)
        *list = CSLAddString(*list, found[i]);
    CSLDestroy(found);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A label's file name as the mask writer makes it: letters, digits, '-',
 * '_', '.' (not first), then ".tif" or ".qml". */
static int split_file_name(const char *s)
{
    size_t n = strlen(s);
    const char *p;
    if (n < 5 || s[0] == '.' || (strcmp(s + n - 4, ".tif") && strcmp(s + n - 4, ".qml")))
        return 0;
    for (p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* 1 when rel (relative to the output folder) is one of the scene's output
 * names; *in_split = 1 for a file of the split folder. */
static int output_name(const cnp_scene_outputs *w, const char *rel, int *in_split)
{
    const char *const files[] = {w->probs, w->probs_qml, w->masks, w->masks_qml, w->markers,
                                 w->manifest, w->quicklook, w->quicklook_pgw, w->quicklook_aux,
                                 w->stac, w->alerts};
    const char *split = base_name(w->split_dir);
    size_t i, n = strlen(split);

    *in_split = 0;
    for (i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!strcmp(rel, base_name(files[i])))
            return 1;
    if (!strncmp(rel, split, n) && rel[n] == '/' && split_file_name(rel + n + 1)) {
        *in_split = 1;
        return 1;
    }
    return 0;
}

/* rel's name inside its folder: the output folder's, or the split folder's
 * (in_split). */
static const char *leaf(const cnp_scene_outputs *w, const char *rel, int in_split)
{
    return in_split ? rel + strlen(base_name(w->split_dir)) + 1 : rel;
}

/* Unlinks name in the folder dfd when it is a regular file (no link
 * followed); 1 when removed. */
static int unlink_regular(int dfd, const char *name)
{
    struct stat sb;
    return fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
           unlinkat(dfd, name, 0) == 0;
}

/* The scene's manifest, read without following a link; NULL when there is
 * none or it is not a JSON object. */
static json_object *manifest_read(const cnp_scene_outputs *w)
{
    json_object *o;
    struct stat sb;
    int fd = open(w->manifest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (16 << 20)) {
        close(fd);
        return NULL;
    }
    o = json_object_from_fd(fd);
    close(fd);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

void cnp_scene_outputs_remove_listed(const cnp_scene_outputs *w, const char *const *keep)
{
    json_object *man = manifest_read(w), *outs = NULL;
    const char *split = base_name(w->split_dir);
    int dfd, sfd = -1, split_removed = 0;
    size_t i, n;

    if (!man)
        return;
    dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        json_object_put(man);
        return;
    }
    n = json_object_object_get_ex(man, "outputs", &outs) &&
                json_object_is_type(outs, json_type_array)
            ? json_object_array_length(outs) : 0;
    for (i = 0; i < n; i++) {
        json_object *f = NULL;
        const char *rel;
        int in_split;
        if (!json_object_object_get_ex(json_object_array_get_idx(outs, i), "file", &f) ||
            !(rel = json_object_get_string(f)) || !output_name(w, rel, &in_split) ||
            !strcmp(rel, base_name(w->manifest)) || CSLFindStringCaseSensitive((CSLConstList)keep, rel) >= 0)
            continue;
        if (!in_split) {
            unlink_regular(dfd, rel);
            continue;
        }
        if (sfd < 0)
            sfd = openat(dfd, split, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd >= 0)
            split_removed |= unlink_regular(sfd, leaf(w, rel, 1));
    }
    if (sfd >= 0)
        close(sfd);
    if (split_removed)
        unlinkat(dfd, split, AT_REMOVEDIR); /* when it is now empty */
    if (!keep)
        unlink_regular(dfd, base_name(w->manifest));
    close(dfd);
    json_object_put(man);
}

/* The split folder in the output folder dfd, made when missing; never a
 * link. Its descriptor, or -1 with the error in ctx. */
static int split_open(cnp_ctx *ctx, const cnp_scene_outputs *w, int dfd)
{
    const char *split = base_name(w->split_dir);
    int fd;
    if (mkdirat(dfd, split, 0777) != 0 && errno != EEXIST) {
        int e = errno;
        cnp_error(ctx, CNP_ERR_IO, "cannot create the folder %s for per-label masks: %s; %s",
                  w->split_dir, strerror(e), cnp_write_advice(e));
        return -1;
    }
    fd = openat(dfd, split, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        cnp_error(ctx, CNP_ERR_IO, "%s is a link or not a folder; canopy never writes "
                  "through links: remove it (or choose another -o folder)", w->split_dir);
    return fd;
}

cnp_status cnp_scene_outputs_check_split(cnp_ctx *ctx, const cnp_scene_outputs *w)
{
    struct stat sb;
    if (lstat(w->split_dir, &sb) != 0 || S_ISDIR(sb.st_mode))
        return CNP_OK;
    return cnp_error(ctx, CNP_ERR_IO, "%s is %s; canopy never writes through links: remove it "
                     "(or choose another -o folder)", w->split_dir,
                     S_ISLNK(sb.st_mode) ? "a link" : "not a folder");
}

cnp_status cnp_scene_outputs_commit(cnp_ctx *ctx, const cnp_scene_outputs *w,
                                    const char *stage, const char *const *staged)
{
    size_t sl = strlen(stage);
    cnp_status st = CNP_OK;
    char **keep = NULL; /* the relative names, in order */
    int dfd, sfd = -1, i, n_done = 0, in_split, e;

    for (i = 0; staged && staged[i]; i++) {
        if (strncmp(staged[i], stage, sl) != 0 || staged[i][sl] != '/' ||
            !output_name(w, staged[i] + sl + 1, &in_split)) {
            CSLDestroy(keep);
            return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: not one of the scene's outputs "
                             "(canopy bug)", staged[i]);
        }
        keep = CSLAddString(keep, staged[i] + sl + 1);
    }
    dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        e = errno;
        CSLDestroy(keep);
        return cnp_error(ctx, CNP_ERR_IO, "cannot open the output folder %s: %s; %s", w->dir,
                         strerror(e), cnp_write_advice(e));
    }
    /* The previous run's outputs this run does not replace. */
    cnp_scene_outputs_remove_listed(w, (const char *const *)keep);
    for (i = 0; keep && keep[i]; i++, n_done++) {
        output_name(w, keep[i], &in_split);
        if (in_split && sfd < 0 && (sfd = split_open(ctx, w, dfd)) < 0) {
            st = CNP_ERR_IO;
            break;
        }
        if (renameat(AT_FDCWD, staged[i], in_split ? sfd : dfd, leaf(w, keep[i], in_split))) {
            e = errno;
            st = cnp_error(ctx, CNP_ERR_IO, "cannot move %s into place: %s; check the output "
                           "folder's permissions", keep[i], strerror(e));
            break;
        }
    }
    if (st == CNP_OK && ((sfd >= 0 && (e = cnp_sync_fd(sfd, 1)) != 0) ||
                         (e = cnp_sync_fd(dfd, 1)) != 0))
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write the outputs of %s: syncing the output "
                       "folder failed (%s)", base_name(w->manifest), strerror(e));
    if (st != CNP_OK) /* this run's files go again, the manifest first */
        for (i = n_done - 1; i >= 0; i--) {
            output_name(w, keep[i], &in_split);
            unlink_regular(in_split ? sfd : dfd, leaf(w, keep[i], in_split));
        }
    if (sfd >= 0)
        close(sfd);
    close(dfd);
    CSLDestroy(keep);
    return st;
}
