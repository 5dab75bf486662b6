/* labels.c -- the Kaggle label file (train_v2.csv): `image_name,tags`. */
#define _GNU_SOURCE
#include "eval/eval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Label files are a few MB (Kaggle's has 40,479 rows in 1.4 MB), read whole
 * with cnp_file_read() up to CNP_FILE_MAX. */
/* Distinct unknown tags kept by name; more are only counted. */
#define MAX_UNKNOWN_NAMES 100

void cnp_label_table_free(cnp_label_table *t)
{
    int i;
    if (!t)
        return;
    for (i = 0; i < t->n_labels; i++)
        free(t->labels[i]);
    free(t->labels);
    for (i = 0; i < t->n_rows; i++)
        free(t->names[i]);
    free(t->names);
    free(t->lines);
    free(t->truth);
    for (i = 0; i < t->n_unknown_names; i++)
        free(t->unknown_names[i]);
    free(t->unknown_names);
    free(t->unknown_counts);
    free(t);
}

/* Grows *p (of *cap elements of elem bytes) to hold at least need. */
static cnp_status grow(cnp_ctx *ctx, void **p, size_t *cap, size_t need, size_t elem,
                       const char *what)
{
    size_t ncap, bytes;
    void *np;
    if (need <= *cap)
        return CNP_OK;
    ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > ((size_t)-1) / 2)
            return cnp_error(ctx, CNP_ERR_NOMEM, "%s: size overflow", what);
        ncap *= 2;
    }
    if (!cnp_mul_size(ncap, elem, &bytes))
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: size overflow", what);
    np = realloc(*p, bytes);
    if (!np)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory for %s (%zu bytes)", what, bytes);
    *p = np;
    *cap = ncap;
    return CNP_OK;
}

/* A growable byte string for one field. */
typedef struct field {
    char *s;
    size_t len, cap;
    int quoted;
} field;

static cnp_status field_put(cnp_ctx *ctx, field *f, char c)
{
    if (f->len + 2 > f->cap) {
        void *p = f->s;
        cnp_status st = grow(ctx, &p, &f->cap, f->len + 2, 1, "a CSV field");
        f->s = p;
        if (st != CNP_OK)
            return st;
    }
    f->s[f->len++] = c;
    f->s[f->len] = '\0';
    return CNP_OK;
}

/* Empties f (allocating its first bytes so that f->s is a string). */
static cnp_status field_reset(cnp_ctx *ctx, field *f)
{
    cnp_status st;
    f->len = 0;
    f->quoted = 0;
    if (!f->s) {
        void *p = NULL;
        if ((st = grow(ctx, &p, &f->cap, 64, 1, "a CSV field")) != CNP_OK)
            return st;
        f->s = p;
    }
    f->s[0] = '\0';
    return CNP_OK;
}

typedef struct reader {
    cnp_ctx *ctx;
    const char *name;
    const char *p, *end;
    int line;          /* 1-based line of *p */
} reader;

/* Reads one record: the first two fields into f[0], f[1], the number of
 * fields into *n_fields, the line it starts on into *line. Returns CNP_OK
 * with *n_fields == 0 at the end of the data. */
static cnp_status read_record(reader *r, field f[2], field *extra, int *n_fields, int *line)
{
    cnp_status st;
    int n = 0;

    *n_fields = 0;
    *line = r->line;
    if (r->p >= r->end)
        return CNP_OK;
    for (;;) {
        field *cur = n < 2 ? &f[n] : extra;
        if ((st = field_reset(r->ctx, cur)) != CNP_OK)
            return st;
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\t'))
            r->p++;
        if (r->p < r->end && *r->p == '"') {
            int qline = r->line;
            cur->quoted = 1;
            r->p++;
            for (;;) {
                char c;
                if (r->p >= r->end)
                    return cnp_error(r->ctx, CNP_ERR_FORMAT, "%s:%d: a quoted field is never "
                                     "closed; end it with a double quote (\")", r->name, qline);
                c = *r->p++;
                if (c == '"') {
                    if (r->p < r->end && *r->p == '"') {
                        r->p++;
                    } else {
                        break;
                    }
                } else if (c == '\n') {
                    r->line++;
                } else if (c == '\r') {
                    if (!(r->p < r->end && *r->p == '\n'))
                        r->line++;
                }
                if ((st = field_put(r->ctx, cur, c)) != CNP_OK)
                    return st;
            }
            while (r->p < r->end && (*r->p == ' ' || *r->p == '\t'))
                r->p++;
            if (r->p < r->end && *r->p != ',' && *r->p != '\r' && *r->p != '\n')
                return cnp_error(r->ctx, CNP_ERR_FORMAT, "%s:%d: text after the closing quote of "
                                 "a field; put the whole field in quotes and double any quote "
                                 "inside it (\"\")", r->name, r->line);
        } else {
            while (r->p < r->end && *r->p != ',' && *r->p != '\r' && *r->p != '\n') {
                if (*r->p == '"')
                    return cnp_error(r->ctx, CNP_ERR_FORMAT, "%s:%d: a double quote inside an "
                                     "unquoted field; put the whole field in quotes and double "
                                     "the quote (\"\")", r->name, r->line);
                if ((st = field_put(r->ctx, cur, *r->p)) != CNP_OK)
                    return st;
                r->p++;
            }
            while (cur->len > 0 && (cur->s[cur->len - 1] == ' ' || cur->s[cur->len - 1] == '\t'))
                cur->s[--cur->len] = '\0';
        }
        n++; /* at most 2^30 + 1: files are capped at CNP_FILE_MAX */
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        break;
    }
    if (r->p < r->end && *r->p == '\r') {
        r->p++;
        if (r->p < r->end && *r->p == '\n')
            r->p++;
        r->line++;
    } else if (r->p < r->end && *r->p == '\n') {
        r->p++;
        r->line++;
    }
    *n_fields = n;
    return CNP_OK;
}

static int is_blank_record(const field f[2], int n_fields)
{
    return n_fields == 1 && !f[0].quoted && f[0].len == 0;
}

/* Sorted view of the labels for bsearch. */
typedef struct label_key {
    const char *name;
    int index;
} label_key;

static int cmp_label_key(const void *a, const void *b)
{
    return strcmp(((const label_key *)a)->name, ((const label_key *)b)->name);
}

/* Order of rows for finding duplicate names: by name, then by line. */
typedef struct name_order {
    const char *name;
    int row;
} name_order;

static int cmp_name_order(const void *a, const void *b)
{
    const name_order *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return (x->row > y->row) - (x->row < y->row);
}

static int line_of_offset(const char *data, size_t off)
{
    int line = 1;
    size_t i;
    /* off < size, so data[i + 1] is inside the buffer. */
    for (i = 0; i < off; i++) {
        if (data[i] == '\n' || (data[i] == '\r' && data[i + 1] != '\n'))
            line++;
    }
    return line;
}

static cnp_status note_unknown(cnp_ctx *ctx, cnp_label_table *t, size_t *cap, const char *tag)
{
    int i;
    cnp_status st;
    t->n_unknown_tags++;
    for (i = 0; i < t->n_unknown_names; i++) {
        if (!strcmp(t->unknown_names[i], tag)) {
            t->unknown_counts[i]++;
            return CNP_OK;
        }
    }
    if (t->n_unknown_names >= MAX_UNKNOWN_NAMES)
        return CNP_OK;
    if (*cap < (size_t)t->n_unknown_names + 1) {
        size_t c1 = *cap, c2 = *cap;
        void *p1 = t->unknown_names, *p2 = t->unknown_counts;
        st = grow(ctx, &p1, &c1, (size_t)t->n_unknown_names + 1, sizeof(char *), "unknown tags");
        t->unknown_names = p1;
        if (st != CNP_OK)
            return st;
        st = grow(ctx, &p2, &c2, (size_t)t->n_unknown_names + 1, sizeof(long), "unknown tags");
        t->unknown_counts = p2;
        if (st != CNP_OK)
            return st;
        *cap = c1;
    }
    t->unknown_names[t->n_unknown_names] = cnp_strdup(ctx, tag);
    if (!t->unknown_names[t->n_unknown_names])
        return CNP_ERR_NOMEM;
    t->unknown_counts[t->n_unknown_names] = 1;
    t->n_unknown_names++;
    return CNP_OK;
}

/* Shortens s for quoting in a message. */
static const char *excerpt(const char *s, char buf[64])
{
    size_t n = strlen(s);
    if (n < 60)
        return s;
    memcpy(buf, s, 56);
    memcpy(buf + 56, "...", 4);
    return buf;
}

cnp_status cnp_label_table_parse(cnp_ctx *ctx, const char *data, size_t size, const char *name,
                                 const char *const *labels, int n_labels, cnp_label_table **out)
{
    cnp_status st = CNP_OK;
    cnp_label_table *t = NULL;
    label_key *keys = NULL;
    name_order *order = NULL;
    unsigned char *keep = NULL;
    field f[2] = { { NULL, 0, 0, 0 }, { NULL, 0, 0, 0 } }, extra = { NULL, 0, 0, 0 };
    size_t cap_rows = 0, cap_lines = 0, cap_truth = 0, cap_unknown = 0;
    reader r;
    const char *nul;
    int header_seen = 0, i, n_fields, line, group;

    *out = NULL;
    if (n_labels < 1 || !labels) {
        st = cnp_error(ctx, CNP_ERR_USAGE, "%s: no labels to read the tags against", name);
        goto cleanup;
    }
    nul = memchr(data, '\0', size);
    if (nul) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s:%d: a NUL byte; this is not a text CSV file "
                       "(expected the Kaggle layout: image_name,tags)", name,
                       line_of_offset(data, (size_t)(nul - data)));
        goto cleanup;
    }
    t = cnp_calloc(ctx, 1, sizeof *t, "the label table");
    if (!t) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    t->labels = cnp_calloc(ctx, (size_t)n_labels, sizeof *t->labels, "label names");
    keys = cnp_calloc(ctx, (size_t)n_labels, sizeof *keys, "label names");
    if (!t->labels || !keys) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    for (i = 0; i < n_labels; i++) {
        t->labels[i] = cnp_strdup(ctx, labels[i]);
        if (!t->labels[i]) {
            st = CNP_ERR_NOMEM;
            goto cleanup;
        }
        t->n_labels = i + 1;
        keys[i].name = t->labels[i];
        keys[i].index = i;
    }
    qsort(keys, (size_t)n_labels, sizeof *keys, cmp_label_key);

    r.ctx = ctx;
    r.name = name;
    r.p = data;
    r.end = data + size;
    r.line = 1;
    if (size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
        r.p += 3;

    for (;;) {
        char *tok, *save = NULL;
        unsigned char *row;
        size_t need;
        char buf[64];

        if ((st = read_record(&r, f, &extra, &n_fields, &line)) != CNP_OK)
            goto cleanup;
        if (n_fields == 0)
            break;
        if (is_blank_record(f, n_fields))
            continue;
        if (!header_seen) {
            if (n_fields != 2 || strcasecmp(f[0].s, "image_name") != 0 ||
                strcasecmp(f[1].s, "tags") != 0) {
                st = cnp_error(ctx, CNP_ERR_FORMAT, "%s:%d: expected the header line "
                               "'image_name,tags' (the Kaggle train_v2.csv layout), found '%s%s'",
                               name, line, excerpt(f[0].s, buf), n_fields > 1 ? ",..." : "");
                goto cleanup;
            }
            header_seen = 1;
            continue;
        }
        if (n_fields != 2) {
            st = cnp_error(ctx, CNP_ERR_FORMAT, "%s:%d: expected 2 fields (image_name,tags), "
                           "found %d; tags are separated by spaces, and a field containing a "
                           "comma must be quoted", name, line, n_fields);
            goto cleanup;
        }
        if (f[0].len == 0) {
            st = cnp_error(ctx, CNP_ERR_FORMAT, "%s:%d: empty image name", name, line);
            goto cleanup;
        }
        if (t->n_records == 0x7fffffff) {
            st = cnp_error(ctx, CNP_ERR_FORMAT, "%s:%d: too many records", name, line);
            goto cleanup;
        }
        need = (size_t)t->n_rows + 1;
        {
            void *p = t->names;
            st = grow(ctx, &p, &cap_rows, need, sizeof(char *), "image names");
            t->names = p;
            if (st != CNP_OK)
                goto cleanup;
            p = t->lines;
            st = grow(ctx, &p, &cap_lines, need, sizeof(int), "image names");
            t->lines = p;
            if (st != CNP_OK)
                goto cleanup;
            if (!cnp_mul_size(need, (size_t)n_labels, &need)) {
                st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: too many rows", name);
                goto cleanup;
            }
            p = t->truth;
            st = grow(ctx, &p, &cap_truth, need, 1, "the label table");
            t->truth = p;
            if (st != CNP_OK)
                goto cleanup;
        }
        t->names[t->n_rows] = cnp_strdup(ctx, f[0].s);
        if (!t->names[t->n_rows]) {
            st = CNP_ERR_NOMEM;
            goto cleanup;
        }
        t->lines[t->n_rows] = line;
        row = t->truth + (size_t)t->n_rows * (size_t)n_labels;
        memset(row, 0, (size_t)n_labels);
        t->n_rows++;
        t->n_records++;
        {
            int unknown_here = 0;
            for (tok = strtok_r(f[1].s, " \t\r\n", &save); tok;
                 tok = strtok_r(NULL, " \t\r\n", &save)) {
                label_key k = { tok, 0 };
                label_key *hit = bsearch(&k, keys, (size_t)n_labels, sizeof *keys, cmp_label_key);
                if (hit) {
                    row[hit->index] = 1;
                } else {
                    unknown_here = 1;
                    if ((st = note_unknown(ctx, t, &cap_unknown, tok)) != CNP_OK)
                        goto cleanup;
                }
            }
            t->n_unknown_rows += unknown_here;
        }
    }
    if (!header_seen) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: empty file; expected the header line "
                       "'image_name,tags' and one line per image", name);
        goto cleanup;
    }
    if (t->n_rows == 0) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: no images listed after the header line; "
                       "expected one line 'NAME,tag tag ...' per image", name);
        goto cleanup;
    }

    /* Repeated names: keep the first record of each. */
    order = cnp_calloc(ctx, (size_t)t->n_rows, sizeof *order, "image names");
    keep = cnp_calloc(ctx, (size_t)t->n_rows, 1, "image names");
    if (!order || !keep) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    for (i = 0; i < t->n_rows; i++) {
        order[i].name = t->names[i];
        order[i].row = i;
        keep[i] = 1;
    }
    qsort(order, (size_t)t->n_rows, sizeof *order, cmp_name_order);
    for (i = 1, group = 0; i < t->n_rows; i++) {
        if (strcmp(order[i].name, order[group].name) != 0) {
            group = i;
        } else {
            int first = order[group].row;
            keep[order[i].row] = 0;
            t->n_duplicates++;
            if (memcmp(t->truth + (size_t)first * (size_t)n_labels,
                       t->truth + (size_t)order[i].row * (size_t)n_labels, (size_t)n_labels))
                t->n_duplicates_conflicting++;
            if (!t->duplicate_line || t->lines[order[i].row] < t->duplicate_line)
                t->duplicate_line = t->lines[order[i].row];
        }
    }
    if (t->n_duplicates) {
        int w = 0;
        for (i = 0; i < t->n_rows; i++) {
            if (!keep[i]) {
                free(t->names[i]);
                continue;
            }
            t->names[w] = t->names[i];
            t->lines[w] = t->lines[i];
            if (w != i)
                memmove(t->truth + (size_t)w * (size_t)n_labels,
                        t->truth + (size_t)i * (size_t)n_labels, (size_t)n_labels);
            w++;
        }
        t->n_rows = w;
    }
    *out = t;
    t = NULL;
cleanup:
    free(f[0].s);
    free(f[1].s);
    free(extra.s);
    free(keys);
    free(order);
    free(keep);
    cnp_label_table_free(t);
    return st;
}

cnp_status cnp_label_table_read(cnp_ctx *ctx, const char *path, const char *const *labels,
                                int n_labels, cnp_label_table **out)
{
    char *data = NULL;
    size_t size = 0;
    cnp_status st;

    *out = NULL;
    st = cnp_file_read(ctx, path, CNP_FILE_MAX, &data, &size);
    if (st == CNP_OK)
        st = cnp_label_table_parse(ctx, data, size, path, labels, n_labels, out);
    free(data);
    return st;
}
