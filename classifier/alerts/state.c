/* state.c -- the alert state folder: lock, state.json, atomic commit, and
 * the update and rebuild entry points (alerts.h). */
#define _GNU_SOURCE
#include "alerts/internal.h"
#include "scene/date.h"
#include "writers/writers.h" /* cnp_sha256_file */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <json-c/json.h>

#define STATE_JSON "state.json"
#define LOCK_NAME ".lock"
#define DEFAULT_OBSCURED "cloudy,haze,partly_cloudy"
#define STATE_JSON_MAX (64 << 20)


char *al_join(cnp_ctx *ctx, const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (!p) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

void al_state_free(al_state *s)
{
    int i;
    if (!s)
        return;
    free(s->grid.wkt);
    CSLDestroy(s->labels);
    free(s->obscured);
    for (i = 0; i < s->n_scenes; i++) {
        free(s->scenes[i].id);
        free(s->scenes[i].obs);
        free(s->scenes[i].sha256);
        free(s->scenes[i].probs);
        free(s->scenes[i].path);
    }
    free(s->scenes);
    memset(s, 0, sizeof *s);
}

void cnp_alerts_result_free(cnp_alerts_result *r)
{
    if (!r)
        return;
    CSLDestroy(r->labels_new);
    free(r->summary);
    free(r->changes_path);
    free(r->state_dir);
    free(r);
}

/* ---- folder, lock ------------------------------------------------------- */

static int is_real_dir(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Creates the state folder and obs/ when missing; takes the lock. */
static cnp_status open_dir(cnp_ctx *ctx, const char *dir, int *lock_fd)
{
    char *obs = al_join(ctx, dir, "obs"), *lock = al_join(ctx, dir, LOCK_NAME);
    cnp_status st = CNP_OK;
    struct stat sb;
    int fd = -1;

    *lock_fd = -1;
    if (!obs || !lock) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    if ((mkdir(dir, 0777) != 0 && errno != EEXIST) || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot create the alert state folder (%s); choose "
                       "a writable folder for --alerts", dir, strerror(errno));
        goto cleanup;
    }
    if ((mkdir(obs, 0777) != 0 && errno != EEXIST) || !is_real_dir(obs)) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot create its obs/ folder, or it is not a "
                       "folder (a symbolic link?); use a state folder of canopy's", dir);
        goto cleanup;
    }
    fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot open the lock file (%s); check the folder's "
                       "permissions", lock, fd < 0 ? strerror(errno) : "not a regular file");
        goto cleanup;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot lock (%s)", lock, strerror(errno));
            goto cleanup;
        }
    }
    *lock_fd = fd;
    fd = -1;
cleanup:
    if (fd >= 0)
        close(fd);
    free(obs);
    free(lock);
    return st;
}


static int sync_path(const char *path, int is_dir)
{
    int fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
    int ok;
    if (fd < 0)
        return 0;
    ok = fsync(fd) == 0 || (is_dir && (errno == EINVAL || errno == EROFS));
    close(fd);
    return ok;
}

/* ---- state.json --------------------------------------------------------- */

static json_object *jdouble(double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return json_object_new_double_s(v, buf);
}

static cnp_status state_write(cnp_ctx *ctx, const al_state *s, const char *path)
{
    json_object *root = json_object_new_object(), *grid = json_object_new_object();
    json_object *gt = json_object_new_array(), *labels = json_object_new_array();
    json_object *par = json_object_new_object(), *scenes = json_object_new_array();
    const char *text;
    cnp_status st = CNP_OK;
    int i, fd = -1;
    size_t len;

    for (i = 0; i < 6; i++)
        json_object_array_add(gt, jdouble(s->grid.gt[i]));
    json_object_object_add(grid, "cols", json_object_new_int(s->grid.cols));
    json_object_object_add(grid, "rows", json_object_new_int(s->grid.rows));
    json_object_object_add(grid, "geotransform", gt);
    json_object_object_add(grid, "crs_wkt", json_object_new_string(s->grid.wkt));
    for (i = 0; i < s->n_labels; i++)
        json_object_array_add(labels, json_object_new_string(s->labels[i]));
    json_object_object_add(par, "baseline", json_object_new_int(s->baseline));
    json_object_object_add(par, "high", jdouble(s->high));
    json_object_object_add(par, "dismiss", json_object_new_int(s->dismiss));
    json_object_object_add(par, "obscured_labels", json_object_new_string(s->obscured));
    for (i = 0; i < s->n_scenes; i++) {
        json_object *o = json_object_new_object();
        char day[11];
        cnp_date_format(s->scenes[i].day, day);
        json_object_object_add(o, "id", json_object_new_string(s->scenes[i].id));
        json_object_object_add(o, "date", json_object_new_string(day));
        json_object_object_add(o, "obs", json_object_new_string(s->scenes[i].obs));
        json_object_object_add(o, "sha256", json_object_new_string(s->scenes[i].sha256));
        json_object_object_add(o, "probs", json_object_new_string(s->scenes[i].probs));
        json_object_array_add(scenes, o);
    }
    json_object_object_add(root, "canopy_alerts", json_object_new_int(AL_STATE_VERSION));
    json_object_object_add(root, "generation", json_object_new_int64(s->generation));
    json_object_object_add(root, "grid", grid);
    json_object_object_add(root, "labels", labels);
    json_object_object_add(root, "parameters", par);
    json_object_object_add(root, "scenes", scenes);
    text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    len = strlen(text);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0)
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s (%s); check free space", path,
                       strerror(errno));
    if (fd >= 0 && close(fd) != 0 && st == CNP_OK)
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s (%s)", path, strerror(errno));
    json_object_put(root);
    return st;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int jint(json_object *o, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return 0;
    *out = json_object_get_int64(v);
    return 1;
}

static int parse_scenes(al_state *s, json_object *arr, const char *dir)
{
    int i, n = (int)json_object_array_length(arr);
    s->scenes = calloc((size_t)n + 1, sizeof *s->scenes);
    if (!s->scenes)
        return 0;
    for (i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, (size_t)i);
        const char *id = jstr(o, "id"), *date = jstr(o, "date"), *obs = jstr(o, "obs");
        const char *sha = jstr(o, "sha256"), *probs = jstr(o, "probs");
        al_scene *sc = &s->scenes[s->n_scenes];
        if (!id || !date || !obs || !sha || !cnp_date_parse(date, &sc->day) ||
            strncmp(obs, "obs/", 4) != 0 || strchr(obs + 4, '/') || strstr(obs, ".."))
            return 0;
        s->n_scenes++;
        sc->id = strdup(id);
        sc->obs = strdup(obs);
        sc->sha256 = strdup(sha);
        sc->probs = strdup(probs ? probs : "");
        sc->path = malloc(strlen(dir) + strlen(obs) + 2);
        if (!sc->id || !sc->obs || !sc->sha256 || !sc->probs || !sc->path)
            return 0;
        sprintf(sc->path, "%s/%s", dir, obs);
    }
    return 1;
}

/* Reads DIR/state.json into s; *exists = 0 when there is none yet. */
static cnp_status state_read(cnp_ctx *ctx, const char *dir, al_state *s, int *exists)
{
    char *path = al_join(ctx, dir, STATE_JSON);
    json_object *root = NULL, *grid, *gt, *labels, *par, *scenes;
    struct stat sb;
    cnp_status st = CNP_OK;
    int64_t v64;
    int i, ok;

    memset(s, 0, sizeof *s);
    *exists = 0;
    if (!path)
        return CNP_ERR_NOMEM;
    if (lstat(path, &sb) != 0 && errno == ENOENT)
        goto cleanup;
    *exists = 1;
    if (!S_ISREG(sb.st_mode) || sb.st_size > STATE_JSON_MAX || !(root = json_object_from_file(path))) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: not a readable alert state (not a regular JSON "
                       "file); use another --alerts folder, or move this one away", path);
        goto cleanup;
    }
    ok = jint(root, "canopy_alerts", &v64) && v64 == AL_STATE_VERSION &&
         jint(root, "generation", &v64) &&
         json_object_object_get_ex(root, "grid", &grid) &&
         json_object_object_get_ex(grid, "geotransform", &gt) &&
         json_object_is_type(gt, json_type_array) && json_object_array_length(gt) == 6 &&
         json_object_object_get_ex(root, "labels", &labels) &&
         json_object_is_type(labels, json_type_array) &&
         json_object_object_get_ex(root, "parameters", &par) &&
         json_object_object_get_ex(root, "scenes", &scenes) &&
         json_object_is_type(scenes, json_type_array) && jstr(grid, "crs_wkt");
    if (ok) {
        int64_t c, r, b, d;
        s->generation = (long)v64;
        ok = jint(grid, "cols", &c) && jint(grid, "rows", &r) && c > 0 && r > 0 &&
             c <= 1000000 && r <= 1000000 && jint(par, "baseline", &b) &&
             jint(par, "dismiss", &d) && b >= 1 && d >= 1 && b < 65535 && d < 65535;
        s->grid.cols = (int)c;
        s->grid.rows = (int)r;
        s->baseline = (int)b;
        s->dismiss = (int)d;
    }
    if (ok) {
        json_object *h;
        for (i = 0; i < 6; i++)
            s->grid.gt[i] = json_object_get_double(json_object_array_get_idx(gt, (size_t)i));
        s->grid.wkt = strdup(jstr(grid, "crs_wkt"));
        s->high = json_object_object_get_ex(par, "high", &h) ? json_object_get_double(h)
                                                             : CNP_ALERTS_DEFAULT_HIGH;
        s->obscured = strdup(jstr(par, "obscured_labels") ? jstr(par, "obscured_labels")
                                                           : DEFAULT_OBSCURED);
        for (i = 0; i < (int)json_object_array_length(labels); i++) {
            const char *l = json_object_get_string(json_object_array_get_idx(labels, (size_t)i));
            s->labels = CSLAddString(s->labels, l ? l : "");
        }
        s->n_labels = CSLCount(s->labels);
        ok = s->grid.wkt && s->obscured && s->n_labels > 0 && s->n_labels < 128 &&
             parse_scenes(s, scenes, dir);
    }
    if (!ok)
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: not an alert state of this canopy (missing or "
                       "bad fields); use another --alerts folder", path);
cleanup:
    json_object_put(root);
    free(path);
    if (st != CNP_OK)
        al_state_free(s);
    return st;
}

/* ---- helpers ------------------------------------------------------------ */

static int cmp_scene(const void *a, const void *b)
{
    const al_scene *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void apply_params(al_state *s, const cnp_alerts_options *opt)
{
    if (opt->baseline > 0)
        s->baseline = opt->baseline;
    if (opt->dismiss > 0)
        s->dismiss = opt->dismiss;
    if (opt->high > 0)
        s->high = opt->high;
    if (opt->obscured_labels) {
        char *o = strdup(opt->obscured_labels);
        if (o) {
            free(s->obscured);
            s->obscured = o;
        }
    }
    if (s->baseline <= 0)
        s->baseline = CNP_ALERTS_DEFAULT_BASELINE;
    if (s->dismiss <= 0)
        s->dismiss = CNP_ALERTS_DEFAULT_DISMISS;
    if (s->high <= 0)
        s->high = CNP_ALERTS_DEFAULT_HIGH;
    if (!s->obscured)
        s->obscured = strdup(DEFAULT_OBSCURED);
}

/* obs/ file name of a scene: its id made safe, a hash of the id (names
 * differing only in unsafe characters stay apart) and of the content. */
static char *obs_name(const char *id, const char *sha)
{
    uint64_t h = 1469598103934665603ULL;
    char safe[81], *out;
    size_t i, n = 0;
    for (i = 0; id[i]; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ULL;
    for (i = 0; id[i] && n < 80; i++) {
        char c = id[i];
        safe[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' ? c : '_';
    }
    safe[n] = '\0';
    if (safe[0] == '.')
        safe[0] = '_';
    out = malloc(n + 48);
    if (out)
        sprintf(out, "obs/%s_%016llx_%.8s.tif", safe, (unsigned long long)h, sha);
    return out;
}

/* Generation recorded in DIR/alerts.tif, -1 when missing or unreadable. */
static long outputs_generation(const char *dir)
{
    char path[4096];
    GDALDatasetH ds;
    long g = -1;
    snprintf(path, sizeof path, "%s/alerts.tif", dir);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (ds) {
        const char *v = GDALGetMetadataItem(ds, "CANOPY_ALERTS_GENERATION", NULL);
        if (v)
            g = atol(v);
        GDALClose(ds);
    }
    return g;
}

/* Renames tmpdir/name to dir/final (fsync'd first). */
static cnp_status move_in(cnp_ctx *ctx, const char *tmpdir, const char *name, const char *dir,
                          const char *final)
{
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", tmpdir, name);
    snprintf(to, sizeof to, "%s/%s", dir, final);
    if (!sync_path(from, 0) || rename(from, to) != 0)
        return cnp_error(ctx, CNP_ERR_IO, "cannot put %s in place (%s); check the folder's "
                         "permissions and free space", to, strerror(errno));
    return CNP_OK;
}

static int hex_run(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* 1 when name has the form obs_name() gives: SAFE_<16 hex>_<8 hex>.tif. */
static int is_obs_name(const char *name)
{
    size_t n = strlen(name), i, k;
    if (n < 1 + 1 + 16 + 1 + 8 + 4 || strcmp(name + n - 4, ".tif") != 0)
        return 0;
    k = n - 4 - 8; /* the content hash */
    if (!hex_run(name + k, 8) || name[k - 1] != '_' || !hex_run(name + k - 17, 16) ||
        name[k - 18] != '_' || name[0] == '.')
        return 0;
    for (i = 0; i < k - 18; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '_' ||
              name[i] == '.'))
            return 0;
    return 1;
}

/* Removes obs/ files that the state does not name (a killed update's):
 * regular files named as canopy names observations, nothing else. */
static void remove_unreferenced_obs(const al_state *s, const char *dir)
{
    char path[4096];
    DIR *d;
    struct dirent *e;
    snprintf(path, sizeof path, "%s/obs", dir);
    if (!(d = opendir(path)))
        return;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        int i, used = 0;
        if (!is_obs_name(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        for (i = 0; i < s->n_scenes && !used; i++)
            used = !strcmp(s->scenes[i].obs + 4, e->d_name);
        if (!used)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* ---- update and rebuild ------------------------------------------------- */

/* One update in progress. */
typedef struct job {
    const cnp_alerts_options *opt;
    al_state s;
    int lock_fd;
    char *tmpdir;
    char *new_obs;       /* "obs/NAME.tif" of the scene added, or NULL */
    char *old_obs;       /* its previous observation (replaced scene), or NULL */
    al_timeline tl;
    double *areas;
} job;

static cnp_status job_open(cnp_ctx *ctx, job *j, const cnp_alerts_options *opt, int *exists)
{
    cnp_status st;
    memset(j, 0, sizeof *j);
    j->opt = opt;
    j->lock_fd = -1;
    if (!opt || !opt->dir || !*opt->dir)
        return cnp_error(ctx, CNP_ERR_USAGE, "no alert state folder given (--alerts DIR)");
    if ((st = open_dir(ctx, opt->dir, &j->lock_fd)) != CNP_OK)
        return st;
    cnp_private_dirs_clean(opt->dir); /* a killed update's, provably */
    return state_read(ctx, opt->dir, &j->s, exists);
}

static cnp_status job_tmpdir(cnp_ctx *ctx, job *j)
{
    j->tmpdir = cnp_private_dir_new(ctx, j->opt->dir, j->opt->dir);
    return j->tmpdir ? CNP_OK : ctx->status;
}

static void job_close(job *j)
{
    cnp_private_dir_remove(j->tmpdir);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* releases the lock */
    al_timeline_free(&j->tl);
    al_state_free(&j->s);
    free(j->areas);
    free(j->tmpdir);
    free(j->new_obs);
    free(j->old_obs);
}

/* Replays the observations, writes the outputs and state.json into the
 * temporary folder, and renames them into place. */
static cnp_status job_commit(cnp_ctx *ctx, job *j, int target)
{
    const char *dir = j->opt->dir;
    char *state_tmp = NULL;
    cnp_status st;

    j->s.generation++;
    if ((st = al_replay(ctx, &j->s, target, &j->tl)) != CNP_OK ||
        (st = al_cell_areas(ctx, &j->s.grid, &j->areas)) != CNP_OK ||
        (st = al_write_state_outputs(ctx, &j->s, &j->tl, j->areas, j->tmpdir)) != CNP_OK)
        return st;
    if (!(state_tmp = al_join(ctx, j->tmpdir, STATE_JSON)))
        return CNP_ERR_NOMEM;
    st = state_write(ctx, &j->s, state_tmp);
    free(state_tmp);
    if (st != CNP_OK)
        return st;
    if (j->opt->kill_at == CNP_ALERTS_KILL_BEFORE_COMMIT)
        raise(SIGKILL);
    if (j->new_obs && (st = move_in(ctx, j->tmpdir, j->new_obs + 4, dir, j->new_obs)) != CNP_OK)
        return st;
    if ((st = move_in(ctx, j->tmpdir, STATE_JSON, dir, STATE_JSON)) != CNP_OK)
        return st;
    sync_path(dir, 1);
    if (j->opt->kill_at == CNP_ALERTS_KILL_AFTER_COMMIT)
        raise(SIGKILL);
    if ((st = move_in(ctx, j->tmpdir, "alerts.geojson", dir, "alerts.geojson")) != CNP_OK ||
        (st = move_in(ctx, j->tmpdir, "alerts.qml", dir, "alerts.qml")) != CNP_OK ||
        (st = move_in(ctx, j->tmpdir, "alerts.tif", dir, "alerts.tif")) != CNP_OK)
        return st;
    sync_path(dir, 1);
    remove_unreferenced_obs(&j->s, dir);
    return CNP_OK;
}

/* A new state: the grid (reference raster or the scene's), its labels. */
static cnp_status state_init(cnp_ctx *ctx, al_state *s, const cnp_alerts_options *opt,
                             const char *probs)
{
    cnp_status st;
    if ((st = al_grid_from_raster(ctx, opt->grid_ref ? opt->grid_ref : probs, &s->grid)) != CNP_OK ||
        (st = al_markers_of(ctx, probs, &s->labels)) != CNP_OK)
        return st;
    s->n_labels = CSLCount(s->labels);
    if (s->n_labels >= 128)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: %d marker labels; the alert state tracks "
                         "at most 127", probs, s->n_labels);
    return CNP_OK;
}

/* Adds (or replaces) the scene's entry; *target = its index after sorting. */
static cnp_status add_scene(cnp_ctx *ctx, job *j, const cnp_alerts_scene *sc, const char *sha,
                            int found, int *target)
{
    al_state *s = &j->s;
    al_scene *e;
    int i;

    if (!(j->new_obs = obs_name(sc->scene_id, sha)))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (found < 0) {
        al_scene *g = realloc(s->scenes, sizeof *g * (size_t)(s->n_scenes + 1));
        if (!g)
            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        s->scenes = g;
        e = &s->scenes[s->n_scenes++];
        memset(e, 0, sizeof *e);
    } else {
        e = &s->scenes[found];
        j->old_obs = e->obs;
        free(e->id);
        free(e->sha256);
        free(e->probs);
        free(e->path);
    }
    e->id = strdup(sc->scene_id);
    e->obs = strdup(j->new_obs);
    e->sha256 = strdup(sha);
    e->probs = strdup(sc->probs_path);
    e->path = al_join(ctx, j->tmpdir, j->new_obs + 4);
    e->day = sc->day;
    if (!e->id || !e->obs || !e->sha256 || !e->probs || !e->path)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    if (al_observe(ctx, s, sc->probs_path, sc->scene_id, sc->day, e->path) != CNP_OK)
        return ctx->status;
    qsort(s->scenes, (size_t)s->n_scenes, sizeof *s->scenes, cmp_scene);
    for (i = 0; i < s->n_scenes; i++)
        if (!strcmp(s->scenes[i].id, sc->scene_id))
            *target = i;
    return CNP_OK;
}

static char *make_summary(const cnp_alerts_result *r)
{
    char labels[512] = "", *out;
    int i;
    for (i = 0; r->labels_new && r->labels_new[i]; i++)
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s", i ? ", " : "",
                 r->labels_new[i]);
    if (r->unchanged) {
        if (asprintf(&out, "already in the alert state (%s); nothing changed", r->date) < 0)
            return NULL;
        return out;
    }
    if (asprintf(&out, "%d new alert%s%s%s%s, %d confirmed, %d dismissed, %.1f ha", r->n_new,
                 r->n_new == 1 ? "" : "s", *labels ? " (" : "", labels, *labels ? ")" : "",
                 r->n_confirmed, r->n_dismissed, r->area_new_m2 / 10000.0) < 0)
        return NULL;
    return out;
}

static int scene_index(const al_state *s, const char *id)
{
    int i;
    for (i = 0; i < s->n_scenes; i++)
        if (!strcmp(s->scenes[i].id, id))
            return i;
    return -1;
}

static int params_differ(const al_state *s, const cnp_alerts_options *opt)
{
    return (opt->baseline > 0 && opt->baseline != s->baseline) ||
           (opt->dismiss > 0 && opt->dismiss != s->dismiss) ||
           (opt->high > 0 && opt->high != s->high) ||
           (opt->obscured_labels && strcmp(opt->obscured_labels, s->obscured) != 0);
}

cnp_status cnp_alerts_update(cnp_ctx *ctx, const cnp_alerts_options *opt,
                             const cnp_alerts_scene *sc, cnp_alerts_result **out)
{
    cnp_alerts_result *r = NULL;
    double t0 = cnp_now();
    char sha[65];
    int exists, found, target = -1, differ;
    cnp_status st;
    job j;

    *out = NULL;
    if (!sc || !sc->probs_path || !sc->scene_id || !*sc->scene_id)
        return cnp_error(ctx, CNP_ERR_USAGE, "alerts: a scene needs its probabilities raster "
                         "and an id");
    if (!(r = calloc(1, sizeof *r)))
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    cnp_date_format(sc->day, r->date);
    if ((st = job_open(ctx, &j, opt, &exists)) != CNP_OK)
        goto cleanup;
    if (!exists && (st = state_init(ctx, &j.s, opt, sc->probs_path)) != CNP_OK)
        goto cleanup;
    differ = exists && params_differ(&j.s, opt);
    apply_params(&j.s, opt);
    if (!j.s.obscured) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((st = cnp_sha256_file(ctx, sc->probs_path, sha)) != CNP_OK)
        goto cleanup;
    found = scene_index(&j.s, sc->scene_id);
    if (found >= 0 && !strcmp(j.s.scenes[found].sha256, sha) && j.s.scenes[found].day == sc->day) {
        r->unchanged = 1;
        if (!differ && outputs_generation(opt->dir) == j.s.generation)
            goto done;
        /* remake what a killed update or new parameters left behind */
        if ((st = job_tmpdir(ctx, &j)) != CNP_OK || (st = job_commit(ctx, &j, -1)) != CNP_OK)
            goto cleanup;
        goto done;
    }
    r->replaced = found >= 0;
    if ((st = job_tmpdir(ctx, &j)) != CNP_OK ||
        (st = add_scene(ctx, &j, sc, sha, found, &target)) != CNP_OK ||
        (st = job_commit(ctx, &j, target)) != CNP_OK)
        goto cleanup;
    if (j.old_obs && strcmp(j.old_obs, j.new_obs) != 0) {
        char *p = al_join(ctx, opt->dir, j.old_obs);
        if (p)
            unlink(p);
        free(p);
    }
    if ((st = al_write_changes(ctx, &j.s, &j.tl, j.areas, sc->changes_path, r)) != CNP_OK)
        goto cleanup;
    if (sc->changes_path && !(r->changes_path = strdup(sc->changes_path))) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    r->clear = j.tl.clear;
    r->obscured = j.tl.obscured;
    r->unclassified = j.tl.unclassified;
done:
    {
        size_t i, n = j.tl.cells * (size_t)j.tl.n_labels;
        for (i = 0; i < n; i++)
            r->alert_cells += j.tl.cell[i].active;
    }
    r->n_scenes = j.s.n_scenes;
    r->summary = make_summary(r);
    r->seconds = cnp_now() - t0;
    r->state_dir = strdup(opt->dir);
    if (!r->summary || !r->state_dir)
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
cleanup:
    job_close(&j);
    if (st != CNP_OK)
        cnp_alerts_result_free(r);
    else
        *out = r;
    return st;
}

cnp_status cnp_alerts_rebuild(cnp_ctx *ctx, const cnp_alerts_options *opt, long *n_alert_cells)
{
    cnp_status st;
    int exists;
    job j;

    if (n_alert_cells)
        *n_alert_cells = 0;
    if ((st = job_open(ctx, &j, opt, &exists)) != CNP_OK)
        goto cleanup;
    if (!exists) {
        st = cnp_error(ctx, CNP_ERR_USAGE, "%s: no alert state here (no state.json); add scenes "
                       "first", opt->dir);
        goto cleanup;
    }
    apply_params(&j.s, opt);
    if ((st = job_tmpdir(ctx, &j)) != CNP_OK || (st = job_commit(ctx, &j, -1)) != CNP_OK)
        goto cleanup;
    if (n_alert_cells) {
        size_t i, n = j.tl.cells * (size_t)j.tl.n_labels;
        for (i = 0; i < n; i++)
            *n_alert_cells += j.tl.cell[i].active;
    }
cleanup:
    job_close(&j);
    return st;
}
