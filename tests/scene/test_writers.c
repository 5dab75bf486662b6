/* test_writers.c -- drives classifier/writers alone.
 *
 *   test_writers
 *       Self-test (run by `make check`): temporary names, commit/discard,
 *       SHA-256 against FIPS 180-2 vectors, bad input, and failures half-way
 *       (file size limit, read-only folder, blocked per-label folder) that
 *       must leave nothing behind.
 *   test_writers write IN.tif OUTDIR NAME [--float] [--cog] [--split DIR]
 *                [--co NAME=VALUE]... [--no-crs]
 *       Reads a synthetic result from IN.tif (Float32, one band per label,
 *       band description = label, band metadata THRESHOLD and MARKER=0/1,
 *       NaN = not classified; its geotransform and CRS are the chip grid)
 *       and writes OUTDIR/NAME.{probs.tif,masks.tif,markers.geojson} for
 *       tests/scene/test_writers_check.py to check with independent readers.
 *       Prints "features N"; exit 1 with the writer's message on failure.
 *   test_writers sha256 FILE
 *       Prints the SHA-256 of FILE.
 */
#define _XOPEN_SOURCE 700
#include "base/base.h"
#include "scene/scene.h"
#include "writers/writers.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gdal.h>
#include <cpl_string.h>

static int failures;

#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            failures++; \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
        } \
    } while (0)

/* ---- helpers ------------------------------------------------------------ */

static int exists(const char *p)
{
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static int write_text(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    if (!f)
        return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

/* Number of entries in a folder (without . and ..); -1 if unreadable. */
static int count_entries(const char *dir, char *first, size_t first_len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (first && first_len)
        first[0] = '\0';
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == 0 && first)
            snprintf(first, first_len, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    chmod(p, 0700);
    return remove(p);
}

static void rm_tree(const char *dir)
{
    chmod(dir, 0755);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A small UTM 20S grid with four labels, two of them markers, NaN cells and
 * values on both sides of the thresholds. Storage owned by the struct. */
typedef struct synth {
    cnp_grid grid;
    cnp_result res;
    float *probs;
    const char *labels[4];
    float thr[4];
    unsigned char marker[4];
} synth;

static const char utm20s_wkt[] =
    "PROJCS[\"WGS 84 / UTM zone 20S\",GEOGCS[\"WGS 84\",DATUM[\"WGS_1984\",SPHEROID["
    "\"WGS 84\",6378137,298.257223563]],PRIMEM[\"Greenwich\",0],UNIT[\"degree\","
    "0.0174532925199433]],PROJECTION[\"Transverse_Mercator\"],PARAMETER["
    "\"latitude_of_origin\",0],PARAMETER[\"central_meridian\",-63],PARAMETER["
    "\"scale_factor\",0.9996],PARAMETER[\"false_easting\",500000],PARAMETER["
    "\"false_northing\",10000000],UNIT[\"metre\",1],AUTHORITY[\"EPSG\",\"32720\"]]";

static int synth_make(synth *s, int cols, int rows, unsigned seed)
{
    size_t i, n = (size_t)cols * (size_t)rows * 4;
    memset(s, 0, sizeof *s);
    s->grid.cols = cols;
    s->grid.rows = rows;
    s->grid.gt[0] = 300000.0;
    s->grid.gt[1] = 768.0;
    s->grid.gt[3] = 8900000.0;
    s->grid.gt[5] = -768.0;
    s->grid.crs_wkt = utm20s_wkt;
    s->labels[0] = "agriculture";
    s->labels[1] = "clear";
    s->labels[2] = "road";
    s->labels[3] = "water";
    s->thr[0] = 0.2f;
    s->thr[1] = 0.5f;
    s->thr[2] = 0.35f;
    s->thr[3] = 0.6f;
    s->marker[0] = 1;
    s->marker[2] = 1;
    s->probs = malloc(n * sizeof *s->probs);
    if (!s->probs)
        return 0;
    srand(seed);
    for (i = 0; i < n; i++)
        s->probs[i] = (float)rand() / (float)RAND_MAX;
    for (i = 0; i < n; i += 37)
        s->probs[i] = NAN;
    s->res.n_labels = 4;
    s->res.labels = s->labels;
    s->res.thresholds = s->thr;
    s->res.is_marker = s->marker;
    s->res.probs = s->probs;
    return 1;
}

/* ---- self-test parts ---------------------------------------------------- */

/* The atomic writer (base.h): the temporary lives in a private folder of
 * the destination ("DIR/.canopy-XXXXXX/NAME", mode 0700, a new name each
 * time), never at a name another user could predict. */
static void test_tmp_path(const char *dir)
{
    cnp_ctx ctx;
    char final[512], prefix[600];
    char *t, *t2;
    struct stat sb;

    cnp_ctx_clear(&ctx);
    snprintf(final, sizeof final, "%s/x.probs.tif", dir);
    snprintf(prefix, sizeof prefix, "%s/.canopy-", dir);
    t = cnp_atomic_begin(&ctx, final);
    t2 = cnp_atomic_begin(&ctx, final);
    CHECK(t && t2 && strcmp(t, t2) != 0, "two temporaries for one name must differ: %s %s",
          t ? t : "NULL", t2 ? t2 : "NULL");
    CHECK(t && !strncmp(t, prefix, strlen(prefix)) && strlen(t) > strlen(prefix) + 6 &&
              !strcmp(t + strlen(t) - strlen("/x.probs.tif"), "/x.probs.tif"),
          "temporary of %s: %s", final, t ? t : "NULL");
    if (t) {
        char *slash = strrchr(t, '/');
        *slash = '\0';
        CHECK(lstat(t, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700,
              "the private folder %s must be a 0700 folder", t);
        *slash = '/';
    }
    cnp_atomic_discard(t);
    cnp_atomic_discard(t2);
    free(t);
    free(t2);
    CHECK(count_entries(dir, NULL, 0) == 0, "discard must remove the private folders");
    t = cnp_atomic_begin(&ctx, "a/b/");
    CHECK(!t && ctx.status == CNP_ERR_USAGE, "a folder path must be refused");
    free(t);
    cnp_ctx_clear(&ctx);
    t = cnp_atomic_begin(&ctx, "");
    CHECK(!t && ctx.status == CNP_ERR_USAGE, "an empty path must be refused");
    free(t);
}

static void test_commit_discard(const char *dir)
{
    cnp_ctx ctx;
    char final[512], side[600], first[256], victim[512], text[64];
    char *t;
    FILE *f;
    int fd;

    cnp_ctx_clear(&ctx);
    snprintf(final, sizeof final, "%s/c.txt", dir);
    t = cnp_atomic_begin(&ctx, final);
    CHECK(t != NULL, "cnp_atomic_begin: %s", ctx.msg);
    if (!t)
        return;
    fd = cnp_atomic_open(&ctx, t, final);
    CHECK(fd >= 0 && write(fd, "hello\n", 6) == 6 && close(fd) == 0, "writing %s", t);
    CHECK(cnp_atomic_open(&ctx, t, final) < 0 && ctx.status == CNP_ERR_IO,
          "a second exclusive create of %s must fail", t);
    cnp_ctx_clear(&ctx);
    snprintf(side, sizeof side, "%s.aux.xml", t);
    CHECK(write_text(side, "<PAMDataset/>\n"), "writing %s", side);
    CHECK(cnp_atomic_commit(&ctx, t, final) == CNP_OK, "commit: %s", ctx.msg);
    CHECK(exists(final) && !exists(t) && !exists(side), "commit must leave only the final file");
    CHECK(count_entries(dir, first, sizeof first) == 1, "one file after commit");
    free(t);

    t = cnp_atomic_begin(&ctx, final);
    CHECK(t && write_text(t, "partial"), "writing a temporary");
    snprintf(side, sizeof side, "%s.ovr", t);
    CHECK(write_text(side, "x"), "writing %s", side);
    cnp_atomic_discard(t);
    CHECK(!exists(t) && !exists(side), "discard must remove the temporary and its .ovr");
    cnp_atomic_discard(NULL);
    free(t);

    /* A link planted at the final name is replaced, not written through. */
    snprintf(victim, sizeof victim, "%s/victim", dir);
    CHECK(write_text(victim, "precious\n"), "writing %s", victim);
    unlink(final);
    CHECK(symlink(victim, final) == 0, "planting a link at %s", final);
    CHECK(cnp_atomic_write(&ctx, final, "new\n", 4) == CNP_OK, "cnp_atomic_write: %s", ctx.msg);
    f = fopen(victim, "r");
    CHECK(f && fgets(text, sizeof text, f) && !strcmp(text, "precious\n"),
          "the link's target must be untouched");
    if (f)
        fclose(f);
    {
        struct stat sb;
        CHECK(lstat(final, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 4,
              "the final name must now be the new regular file");
    }
    unlink(victim);

    /* A commit whose rename fails (target is a non-empty folder) reports the
     * final name and removes the temporary. */
    snprintf(final, sizeof final, "%s/blocked", dir);
    mkdir(final, 0755);
    snprintf(side, sizeof side, "%s/blocked/f", dir);
    write_text(side, "x");
    t = cnp_atomic_begin(&ctx, final);
    CHECK(t && write_text(t, "data"), "writing a temporary");
    CHECK(cnp_atomic_commit(&ctx, t, final) == CNP_ERR_IO && strstr(ctx.msg, final),
          "a failed rename must be an I/O error naming %s: %s", final, ctx.msg);
    CHECK(t && !exists(t), "a failed commit must remove its temporary");
    free(t);
    unlink(side);
    rmdir(final);
    snprintf(final, sizeof final, "%s/c.txt", dir);
    unlink(final);
}

static void test_sha256(const char *dir)
{
    static const struct { const char *text; const char *hex; } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    };
    cnp_ctx ctx;
    char path[512], hex[65];
    size_t i;
    FILE *f;

    snprintf(path, sizeof path, "%s/sha.bin", dir);
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        cnp_ctx_clear(&ctx);
        CHECK(write_text(path, v[i].text), "writing %s", path);
        CHECK(cnp_sha256_file(&ctx, path, hex) == CNP_OK && !strcmp(hex, v[i].hex),
              "sha256('%s') = %s, want %s", v[i].text, hex, v[i].hex);
    }
    /* One million 'a' (FIPS 180-2, B.3). */
    f = fopen(path, "wb");
    CHECK(f != NULL, "writing %s", path);
    if (f) {
        for (i = 0; i < 1000000; i++)
            fputc('a', f);
        fclose(f);
        cnp_ctx_clear(&ctx);
        CHECK(cnp_sha256_file(&ctx, path, hex) == CNP_OK &&
              !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
              "sha256 of a million 'a' = %s", hex);
    }
    unlink(path);
    cnp_ctx_clear(&ctx);
    CHECK(cnp_sha256_file(&ctx, path, hex) == CNP_ERR_IO && strstr(ctx.msg, path),
          "checksum of a missing file must be an I/O error naming it: %s", ctx.msg);
}

/* Bad input: refused with a message naming the output, nothing written. */
static void test_bad_input(const char *dir)
{
    cnp_ctx ctx;
    synth s;
    char path[512];
    float bad_thr[4];
    const char *bad_co[] = { "COMPRESS", NULL };
    const char *unknown_co[] = { "NO_SUCH_OPTION=1", NULL };
    cnp_raster_options opt = { CNP_FORMAT_GTIFF, 0, NULL, 0 };

    if (!synth_make(&s, 7, 5, 1)) {
        CHECK(0, "out of memory");
        return;
    }
    snprintf(path, sizeof path, "%s/bad.probs.tif", dir);

    cnp_ctx_clear(&ctx);
    s.grid.cols = 0;
    CHECK(cnp_write_probs(&ctx, path, &s.grid, &s.res, NULL) == CNP_ERR_SHAPE &&
          strstr(ctx.msg, path), "an empty grid must be refused: %s", ctx.msg);
    s.grid.cols = 7;

    cnp_ctx_clear(&ctx);
    s.grid.gt[1] = 0.0;
    CHECK(cnp_write_masks(&ctx, path, NULL, &s.grid, &s.res, NULL) == CNP_ERR_FORMAT,
          "a zero pixel size must be refused: %s", ctx.msg);
    s.grid.gt[1] = 768.0;

    cnp_ctx_clear(&ctx);
    memcpy(bad_thr, s.thr, sizeof bad_thr);
    bad_thr[2] = NAN;
    s.res.thresholds = bad_thr;
    CHECK(cnp_write_masks(&ctx, path, NULL, &s.grid, &s.res, NULL) == CNP_ERR_USAGE &&
          strstr(ctx.msg, "road"), "a NaN threshold must be refused naming the label: %s",
          ctx.msg);
    s.res.thresholds = s.thr;

    cnp_ctx_clear(&ctx);
    s.labels[3] = "clear";
    CHECK(cnp_write_probs(&ctx, path, &s.grid, &s.res, NULL) == CNP_ERR_USAGE,
          "duplicate labels must be refused: %s", ctx.msg);
    s.labels[3] = "water";

    cnp_ctx_clear(&ctx);
    opt.creation_options = bad_co;
    CHECK(cnp_write_probs(&ctx, path, &s.grid, &s.res, &opt) == CNP_ERR_USAGE &&
          strstr(ctx.msg, "NAME=VALUE"), "-co without '=' must be a usage error: %s", ctx.msg);

    cnp_ctx_clear(&ctx);
    opt.creation_options = unknown_co;
    CHECK(cnp_write_probs(&ctx, path, &s.grid, &s.res, &opt) == CNP_ERR_USAGE &&
          strstr(ctx.msg, "NO_SUCH_OPTION"), "an unknown -co must be a usage error naming it: "
          "%s", ctx.msg);

    cnp_ctx_clear(&ctx);
    s.grid.crs_wkt = "";
    snprintf(path, sizeof path, "%s/bad.markers.geojson", dir);
    CHECK(cnp_write_markers(&ctx, path, &s.grid, &s.res, NULL, NULL) == CNP_ERR_UNSUPPORTED &&
          strstr(ctx.msg, path), "markers without a CRS must be refused: %s", ctx.msg);

    cnp_ctx_clear(&ctx);
    s.grid.crs_wkt = "PROJCS[nonsense";
    CHECK(cnp_write_markers(&ctx, path, &s.grid, &s.res, NULL, NULL) == CNP_ERR_FORMAT,
          "a broken CRS must be a format error: %s", ctx.msg);

    cnp_ctx_clear(&ctx);
    snprintf(path, sizeof path, "%s/no/such/folder/x.probs.tif", dir);
    s.grid.crs_wkt = utm20s_wkt;
    CHECK(cnp_write_probs(&ctx, path, &s.grid, &s.res, NULL) == CNP_ERR_IO &&
          strstr(ctx.msg, path) && strstr(ctx.msg, "No such file"),
          "a missing folder must be an I/O error naming the file: %s", ctx.msg);

    CHECK(count_entries(dir, path, sizeof path) == 0, "bad input left %s behind", path);
    free(s.probs);
}

/* Every writer under a file size limit: each must fail, name its output and
 * leave the folder empty. `limit` is small enough to hit mid-file. */
static void test_size_limit(const char *dir)
{
    cnp_ctx ctx;
    synth s;
    struct rlimit old, lim;
    char path[512], split[512], first[256];
    cnp_raster_options fopt = { CNP_FORMAT_GTIFF, 1, NULL, 0 };
    cnp_raster_options cog = { CNP_FORMAT_COG, 0, NULL, 0 };
    cnp_markers_info info = { "scene", "model", "2024-01-01T00:00:00Z", NULL };
    cnp_status st;
    int nf = -1;

    if (!synth_make(&s, 300, 200, 2)) {
        CHECK(0, "out of memory");
        return;
    }
    s.thr[0] = 0.0f; /* agriculture everywhere but NaN: big outlines */
    s.thr[2] = 0.5f;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 20000;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit: %s", strerror(errno));

    cnp_ctx_clear(&ctx);
    snprintf(path, sizeof path, "%s/big.probs.tif", dir);
    st = cnp_write_probs(&ctx, path, &s.grid, &s.res, &fopt);
    CHECK(st == CNP_ERR_IO && strstr(ctx.msg, path), "probs past the size limit: %s (%s)",
          cnp_status_name(st), ctx.msg);
    CHECK(count_entries(dir, first, sizeof first) == 0, "a failed probs write left %s", first);

    cnp_ctx_clear(&ctx);
    st = cnp_write_probs(&ctx, path, &s.grid, &s.res, &cog);
    CHECK(st == CNP_ERR_IO && strstr(ctx.msg, path), "COG probs past the size limit: %s (%s)",
          cnp_status_name(st), ctx.msg);
    CHECK(count_entries(dir, first, sizeof first) == 0, "a failed COG write left %s", first);

    cnp_ctx_clear(&ctx);
    snprintf(path, sizeof path, "%s/big.masks.tif", dir);
    snprintf(split, sizeof split, "%s/split", dir);
    s.res.probs = s.probs;
    st = cnp_write_masks(&ctx, path, split, &s.grid, &s.res, NULL);
    CHECK(st == CNP_ERR_IO, "masks past the size limit: %s (%s)", cnp_status_name(st),
          ctx.msg);
    rmdir(split); /* the folder itself may stay: it was asked for */
    CHECK(count_entries(dir, first, sizeof first) == 0, "a failed masks write left %s", first);

    cnp_ctx_clear(&ctx);
    snprintf(path, sizeof path, "%s/big.markers.geojson", dir);
    st = cnp_write_markers(&ctx, path, &s.grid, &s.res, &info, &nf);
    CHECK(st == CNP_ERR_IO && strstr(ctx.msg, path) && nf == 0,
          "markers past the size limit: %s (%s)", cnp_status_name(st), ctx.msg);
    CHECK(count_entries(dir, first, sizeof first) == 0, "a failed markers write left %s",
          first);

    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);

    /* Without the limit the same calls succeed. */
    cnp_ctx_clear(&ctx);
    CHECK(cnp_write_markers(&ctx, path, &s.grid, &s.res, &info, &nf) == CNP_OK && nf > 0,
          "markers without the limit: %s", ctx.msg);
    unlink(path);
    free(s.probs);
}

/* The per-label folder is blocked by a file: masks.tif must not appear
 * either, since the files of one call are committed together. */
static void test_split_blocked(const char *dir)
{
    cnp_ctx ctx;
    synth s;
    char path[512], split[512], first[256], qml[512], inner[600];

    if (!synth_make(&s, 9, 6, 3)) {
        CHECK(0, "out of memory");
        return;
    }
    snprintf(path, sizeof path, "%s/s.masks.tif", dir);
    snprintf(split, sizeof split, "%s/labels", dir);
    CHECK(write_text(split, "in the way"), "writing %s", split);
    cnp_ctx_clear(&ctx);
    CHECK(cnp_write_masks(&ctx, path, split, &s.grid, &s.res, NULL) == CNP_ERR_IO &&
          strstr(ctx.msg, split), "a blocked per-label folder must fail naming it: %s",
          ctx.msg);
    unlink(split);
    CHECK(count_entries(dir, first, sizeof first) == 0, "a blocked split left %s", first);

    /* The style cannot be renamed into place (a non-empty folder holds its
     * name) after masks.tif was: masks.tif must be taken back. */
    snprintf(qml, sizeof qml, "%s/s.masks.qml", dir);
    snprintf(inner, sizeof inner, "%s/s.masks.qml/x", dir);
    CHECK(mkdir(qml, 0755) == 0 && write_text(inner, "x"), "making %s", inner);
    cnp_ctx_clear(&ctx);
    CHECK(cnp_write_masks(&ctx, path, NULL, &s.grid, &s.res, NULL) == CNP_ERR_IO &&
          strstr(ctx.msg, qml), "a blocked style must fail naming it: %s", ctx.msg);
    CHECK(!exists(path), "masks.tif must be removed when its style cannot be committed");
    unlink(inner);
    rmdir(qml);
    CHECK(count_entries(dir, first, sizeof first) == 0, "a failed commit left %s", first);

    cnp_ctx_clear(&ctx);
    CHECK(cnp_write_masks(&ctx, path, split, &s.grid, &s.res, NULL) == CNP_OK,
          "masks with a per-label folder: %s", ctx.msg);
    CHECK(count_entries(dir, NULL, 0) == 3, "masks.tif, masks.qml and the folder expected");
    CHECK(count_entries(split, NULL, 0) == 8, "four per-label files and styles expected");
    free(s.probs);
}

/* A folder the process may not write: as root, a child drops to an
 * unprivileged user, since root writes anywhere. */
static void test_read_only(const char *dir)
{
    char ro[512], first[256];
    pid_t pid;
    int status = 0;

    snprintf(ro, sizeof ro, "%s/ro", dir);
    CHECK(mkdir(ro, 0755) == 0, "mkdir %s", ro);
    chmod(dir, 0755);
    chmod(ro, 0555);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        cnp_ctx ctx;
        synth s;
        char path[600];
        cnp_markers_info info = { "s", "m", "t", NULL };
        int bad = 0;
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        if (!synth_make(&s, 9, 6, 4))
            _exit(4);
        snprintf(path, sizeof path, "%s/x.probs.tif", ro);
        cnp_ctx_clear(&ctx);
        if (cnp_write_probs(&ctx, path, &s.grid, &s.res, NULL) != CNP_ERR_IO ||
            !strstr(ctx.msg, path) || !strstr(ctx.msg, "Permission denied") ||
            !strstr(ctx.msg, "writable")) {
            fprintf(stderr, "read-only probs: %s\n", ctx.msg);
            bad = 1;
        }
        snprintf(path, sizeof path, "%s/x.masks.tif", ro);
        cnp_ctx_clear(&ctx);
        if (cnp_write_masks(&ctx, path, NULL, &s.grid, &s.res, NULL) != CNP_ERR_IO ||
            !strstr(ctx.msg, path)) {
            fprintf(stderr, "read-only masks: %s\n", ctx.msg);
            bad = 1;
        }
        snprintf(path, sizeof path, "%s/x.markers.geojson", ro);
        cnp_ctx_clear(&ctx);
        if (cnp_write_markers(&ctx, path, &s.grid, &s.res, &info, NULL) != CNP_ERR_IO ||
            !strstr(ctx.msg, path)) {
            fprintf(stderr, "read-only markers: %s\n", ctx.msg);
            bad = 1;
        }
        _exit(bad);
    }
    CHECK(pid > 0, "fork: %s", strerror(errno));
    if (pid > 0) {
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
            fprintf(stderr, "test_writers: note: root cannot drop privileges here (no "
                    "CAP_SETUID), so the read-only folder part was not run\n");
        else
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "read-only folder checks failed");
    }
    chmod(ro, 0755);
    CHECK(count_entries(ro, first, sizeof first) == 0, "read-only folder got %s", first);
    rmdir(ro);
}

/* Plain success of all three, and that no side file appears. */
static void test_happy(const char *dir)
{
    cnp_ctx ctx;
    synth s;
    char path[512];
    cnp_markers_info info = { "scene", "model", "2024-01-01T00:00:00Z", NULL };
    int nf = -1;

    if (!synth_make(&s, 12, 8, 5)) {
        CHECK(0, "out of memory");
        return;
    }
    cnp_ctx_clear(&ctx);
    snprintf(path, sizeof path, "%s/h.probs.tif", dir);
    CHECK(cnp_write_probs(&ctx, path, &s.grid, &s.res, NULL) == CNP_OK, "probs: %s", ctx.msg);
    snprintf(path, sizeof path, "%s/h.masks.tif", dir);
    CHECK(cnp_write_masks(&ctx, path, NULL, &s.grid, &s.res, NULL) == CNP_OK, "masks: %s",
          ctx.msg);
    snprintf(path, sizeof path, "%s/h.markers.geojson", dir);
    CHECK(cnp_write_markers(&ctx, path, &s.grid, &s.res, &info, &nf) == CNP_OK && nf > 0,
          "markers: %s", ctx.msg);
    CHECK(count_entries(dir, NULL, 0) == 5, "expected exactly 5 files (2 tif, 2 qml, geojson)");
    free(s.probs);
}

static int self_test(void)
{
    char dir[] = "test_writers.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "test_writers: cannot make a work folder here: %s\n", strerror(errno));
        return 99;
    }
    test_tmp_path(dir);
    test_commit_discard(dir);
    test_sha256(dir);
    test_bad_input(dir);
    test_size_limit(dir);
    test_split_blocked(dir);
    rm_tree(dir);
    mkdir(dir, 0700);
    test_read_only(dir);
    test_happy(dir);
    rm_tree(dir);
    if (failures)
        fprintf(stderr, "test_writers: %d check%s failed\n", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}

/* ---- write mode: a result read from a GeoTIFF --------------------------- */

static int write_mode(int argc, char **argv)
{
    const char *in = argv[2], *outdir = argv[3], *name = argv[4];
    const char *split = NULL;
    char **co = NULL;
    cnp_raster_options opt = { CNP_FORMAT_GTIFF, 0, NULL, 0 };
    cnp_markers_info info = { NULL, "test-model", "2024-05-06T07:08:09Z", NULL };
    cnp_grid grid;
    cnp_result res;
    cnp_ctx ctx;
    GDALDatasetH ds;
    float *probs = NULL, *band = NULL, *thr = NULL;
    char **labels = NULL;
    unsigned char *marker = NULL;
    char path[4096], *wkt = NULL;
    int i, l, nl, no_crs = 0, nf = 0, rc = 1;
    size_t cells, c;

    memset(&grid, 0, sizeof grid);
    for (i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--float"))
            opt.float_probs = 1;
        else if (!strcmp(argv[i], "--cog"))
            opt.format = CNP_FORMAT_COG;
        else if (!strcmp(argv[i], "--no-crs"))
            no_crs = 1;
        else if (!strcmp(argv[i], "--split") && i + 1 < argc)
            split = argv[++i];
        else if (!strcmp(argv[i], "--co") && i + 1 < argc)
            co = CSLAddString(co, argv[++i]);
        else {
            fprintf(stderr, "test_writers: unknown argument %s\n", argv[i]);
            return 99;
        }
    }
    opt.creation_options = (const char *const *)co;
    cnp_gdal_init();
    ds = GDALOpen(in, GA_ReadOnly);
    if (!ds) {
        fprintf(stderr, "test_writers: cannot open %s\n", in);
        return 99;
    }
    nl = GDALGetRasterCount(ds);
    grid.cols = GDALGetRasterXSize(ds);
    grid.rows = GDALGetRasterYSize(ds);
    GDALGetGeoTransform(ds, grid.gt);
    wkt = CPLStrdup(GDALGetProjectionRef(ds));
    grid.crs_wkt = no_crs ? "" : wkt;
    info.scene = name;
    cells = (size_t)grid.cols * (size_t)grid.rows;
    probs = malloc(cells * (size_t)nl * sizeof *probs);
    band = malloc(cells * sizeof *band);
    thr = calloc((size_t)nl, sizeof *thr);
    labels = calloc((size_t)nl, sizeof *labels);
    marker = calloc((size_t)nl, 1);
    if (!probs || !band || !thr || !labels || !marker) {
        fprintf(stderr, "test_writers: out of memory\n");
        rc = 99;
        goto done;
    }
    for (l = 0; l < nl; l++) {
        GDALRasterBandH b = GDALGetRasterBand(ds, l + 1);
        const char *t = GDALGetMetadataItem(b, "THRESHOLD", NULL);
        const char *m = GDALGetMetadataItem(b, "MARKER", NULL);
        labels[l] = CPLStrdup(GDALGetDescription(b));
        thr[l] = t ? strtof(t, NULL) : 0.5f;
        marker[l] = m && atoi(m) != 0;
        if (GDALRasterIO(b, GF_Read, 0, 0, grid.cols, grid.rows, band, grid.cols, grid.rows,
                         GDT_Float32, 0, 0) != CE_None) {
            fprintf(stderr, "test_writers: reading %s failed\n", in);
            rc = 99;
            goto done;
        }
        for (c = 0; c < cells; c++)
            probs[c * (size_t)nl + (size_t)l] = band[c];
    }
    res.n_labels = nl;
    res.labels = (const char *const *)labels;
    res.thresholds = thr;
    res.is_marker = marker;
    res.probs = probs;

    cnp_ctx_clear(&ctx);
    snprintf(path, sizeof path, "%s/%s.probs.tif", outdir, name);
    if (cnp_write_probs(&ctx, path, &grid, &res, &opt) != CNP_OK)
        goto failed;
    snprintf(path, sizeof path, "%s/%s.masks.tif", outdir, name);
    if (cnp_write_masks(&ctx, path, split, &grid, &res, &opt) != CNP_OK)
        goto failed;
    snprintf(path, sizeof path, "%s/%s.markers.geojson", outdir, name);
    if (cnp_write_markers(&ctx, path, &grid, &res, &info, &nf) != CNP_OK)
        goto failed;
    printf("features %d\n", nf);
    rc = 0;
    goto done;
failed:
    fprintf(stderr, "test_writers: %s\n", ctx.msg);
    rc = 1;
done:
    if (labels)
        for (l = 0; l < nl; l++)
            CPLFree(labels[l]);
    free(labels);
    free(marker);
    free(thr);
    free(band);
    free(probs);
    CPLFree(wkt);
    CSLDestroy(co);
    GDALClose(ds);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return self_test();
    if (argc == 3 && !strcmp(argv[1], "sha256")) {
        cnp_ctx ctx;
        char hex[65];
        cnp_ctx_clear(&ctx);
        if (cnp_sha256_file(&ctx, argv[2], hex) != CNP_OK) {
            fprintf(stderr, "test_writers: %s\n", ctx.msg);
            return 1;
        }
        printf("%s\n", hex);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "write"))
        return write_mode(argc, argv);
    fprintf(stderr, "usage: test_writers [write IN.tif OUTDIR NAME [options] | sha256 FILE]\n");
    return 99;
}
