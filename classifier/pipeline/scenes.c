/* scenes.c -- the inputs of a run expanded into scenes (folders, @lists),
 * scene names, and the output folder. */
#define _GNU_SOURCE
#include "config.h"
#include "pipeline/pipeline.h"
#include "base/gdal.h"
#include "scene/product.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* Files in a folder that are not rasters to classify: canopy's own outputs
 * and GDAL's side files. */
static int skip_in_folder(const char *name)
{
    static const char *const skip[] = {
        ".probs.tif", ".masks.tif", ".markers.geojson", ".manifest.json", ".qml", ".aux.xml",
        ".quicklook.png", ".pgw",
        ".ovr", ".msk", ".json", ".geojson", ".csv", ".txt", ".md", ".xml", ".prj", ".tfw",
        ".wld", ".log", NULL
    };
    int i;
    if (name[0] == '.' || cnp_product_is_side_file(name))
        return 1;
    for (i = 0; skip[i]; i++)
        if (has_suffix(name, skip[i]))
            return 1;
    return 0;
}

static int looks_raster(const char *name)
{
    static const char *const ext[] = {".tif", ".tiff", ".vrt", ".jp2", ".img", ".ntf", NULL};
    int i;
    for (i = 0; ext[i]; i++)
        if (has_suffix(name, ext[i]))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the rasters of a folder, sorted; a Sentinel-2 .SAFE folder in it
 * is one scene. */
static cnp_status add_folder(cnp_ctx *ctx, const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **found = NULL;
    int i, n;

    if (!d)
        return cnp_error(ctx, CNP_ERR_IO, "cannot list the folder %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char *path;
        struct stat sb;
        GDALDriverH drv;
        int take = 0;
        if (skip_in_folder(e->d_name))
            continue;
        /* A copy: CPLFormFilename's buffer is reused by GDAL's identify. */
        path = CPLStrdup(CPLFormFilename(dir, e->d_name, NULL));
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            take = cnp_product_is_safe_dir(path); /* a .SAFE is one scene */
        } else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            cnp_gdal_quiet_begin();
            drv = GDALIdentifyDriverEx(path, GDAL_OF_RASTER, NULL, NULL);
            cnp_gdal_quiet_end();
            take = drv || looks_raster(e->d_name);
        }
        if (take)
            found = CSLAddString(found, path);
        CPLFree(path);
    }
    closedir(d);
    n = CSLCount(found);
    if (n > 1)
        qsort(found, (size_t)n, sizeof *found, cmp_str);
    if (n == 0) {
        CSLDestroy(found);
        return cnp_error(ctx, CNP_ERR_IO, "the folder %s holds no raster to classify", dir);
    }
    for (i = 0; i < n; i++)
        *out = CSLAddString(*out, found[i]);
    CSLDestroy(found);
    return CNP_OK;
}

cnp_status cnp_list_file_read(cnp_ctx *ctx, const char *list, const char *what, char ***out,
                              int *n)
{
    FILE *f = fopen(list, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int first = 1;

    *n = 0;
    if (!f)
        return cnp_error(ctx, CNP_ERR_IO, "cannot read the list of %s %s: %s", what, list,
                         strerror(errno));
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *s = line, *end = line + len;
        if (first && len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) /* a UTF-8 byte order mark */
            s += 3;
        first = 0;
        while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        *out = CSLAddString(*out, s);
        ++*n;
    }
    free(line);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        return cnp_error(ctx, CNP_ERR_IO, "reading the list of %s %s failed: %s", what, list,
                         strerror(e));
    }
    fclose(f);
    return CNP_OK;
}

/* Appends the scenes of an @list file. */
static cnp_status add_list(cnp_ctx *ctx, const char *list, char ***out)
{
    int n;
    cnp_status st = cnp_list_file_read(ctx, list, "scenes", out, &n);
    if (st == CNP_OK && n == 0)
        return cnp_error(ctx, CNP_ERR_IO, "the scene list %s names no scene", list);
    return st;
}

char *cnp_classify_scene_name(const char *path)
{
    /* X.SAFE, X.zip, X.SAFE/MTD_MSIL2A.xml -> X; other files: base name */
    return cnp_product_name(path);
}

static int add_error(cnp_scene_list *l, const char *input, const cnp_ctx *c)
{
    cnp_status *s = realloc(l->error_status, sizeof *s * (size_t)(l->n_errors + 1));
    if (!s)
        return 0;
    l->error_status = s;
    s[l->n_errors] = c->status;
    l->error_inputs = CSLAddString(l->error_inputs, input);
    l->error_messages = CSLAddString(l->error_messages, c->msg);
    l->n_errors++;
    return 1;
}

cnp_status cnp_scene_list_new(cnp_ctx *ctx, const char *const *inputs, cnp_scene_list **out)
{
    cnp_scene_list *l = cnp_calloc(ctx, 1, sizeof *l, "the scene list");
    int i;

    *out = NULL;
    if (!l)
        return CNP_ERR_NOMEM;
    for (i = 0; inputs && inputs[i]; i++) {
        const char *a = inputs[i];
        struct stat sb;
        cnp_ctx one;
        cnp_ctx_clear(&one);
        if (a[0] == '@')
            add_list(&one, a + 1, &l->paths);
        else if (stat(a, &sb) == 0 && S_ISDIR(sb.st_mode) && !cnp_product_is_safe_dir(a))
            add_folder(&one, a, &l->paths);
        else
            l->paths = CSLAddString(l->paths, a);
        if (one.status != CNP_OK && !add_error(l, a, &one))
            goto nomem;
    }
    l->n = CSLCount(l->paths);
    for (i = 0; i < l->n; i++) {
        char *name = cnp_classify_scene_name(l->paths[i]);
        if (!name)
            goto nomem;
        l->names = CSLAddString(l->names, name);
        free(name);
    }
    *out = l;
    return CNP_OK;
nomem:
    cnp_scene_list_free(l);
    return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory listing the scenes");
}

void cnp_scene_list_free(cnp_scene_list *l)
{
    if (!l)
        return;
    CSLDestroy(l->paths);
    CSLDestroy(l->names);
    CSLDestroy(l->error_inputs);
    CSLDestroy(l->error_messages);
    free(l->error_status);
    free(l);
}

/* ------------------------------------------------------ output folder */

static cnp_status make_dirs(cnp_ctx *ctx, char *p, const char *dir)
{
    char *s;
    for (s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return cnp_error(ctx, CNP_ERR_IO, "cannot create the output folder %s: %s; choose a "
                             "writable -o folder", dir, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return cnp_error(ctx, CNP_ERR_IO, "cannot create the output folder %s: %s; choose a "
                         "writable -o folder", dir, strerror(errno));
    return CNP_OK;
}

cnp_status cnp_classify_outdir_make(cnp_ctx *ctx, const cnp_classify_options *o)
{
    const char *dir = o->outdir;
    char *p, *path = NULL;
    cnp_status st;
    struct stat sb;
    int fd;

    if (!dir || !*dir)
        return cnp_error(ctx, CNP_ERR_USAGE, "no output folder; give one with -o OUTDIR");
    if (!(p = cnp_strdup(ctx, dir)))
        return CNP_ERR_NOMEM;
    if ((st = make_dirs(ctx, p, dir)) != CNP_OK)
        goto cleanup;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = cnp_error(ctx, CNP_ERR_IO, "the output %s is not a folder; choose a folder for -o",
                       dir);
        goto cleanup;
    }
    /* Probe: a file can be created there (permissions, read-only mounts);
     * an unpredictable name, created exclusively. */
    if (asprintf(&path, "%s/.canopy-probe-XXXXXX", dir) < 0) {
        path = NULL;
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    fd = mkstemp(path);
    if (fd < 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write to the output folder %s: %s; choose a "
                       "writable -o folder", dir, strerror(errno));
        goto cleanup;
    }
    close(fd);
    unlink(path);
    /* What killed runs left behind: their private folders, provably ours
     * and their makers gone (base/private.c). */
    cnp_private_dirs_clean(dir);
cleanup:
    free(path);
    free(p);
    return st;
}
