/* outputs.c -- the output files of one scene: names, listing, removal. */
#define _GNU_SOURCE
#include "config.h"
#include "pipeline/pipeline.h"

#include <cpl_conv.h>
#include <cpl_string.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    if (!w->probs || !w->probs_qml || !w->masks || !w->masks_qml || !w->markers ||
        !w->manifest || !w->split_dir)
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

void cnp_scene_outputs_remove(const cnp_scene_outputs *w, const cnp_model_meta *meta)
{
    int i;
    unlink(w->manifest);
    unlink(w->probs);
    unlink(w->probs_qml);
    unlink(w->masks);
    unlink(w->masks_qml);
    unlink(w->markers);
    for (i = 0; meta && i < meta->n_labels; i++) {
        unlink(CPLFormFilename(w->split_dir, meta->labels[i], "tif"));
        unlink(CPLFormFilename(w->split_dir, meta->labels[i], "qml"));
    }
    rmdir(w->split_dir);
}
