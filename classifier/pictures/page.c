/* page.c -- the report's HTML: summary, failures, the table of scenes and a
 * card per scene with its quick-look and links to its files. Every string
 * read from a file goes through cnp_html_text (text and attributes) or
 * cnp_html_href (links). No script, no external resource. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void text(cnp_buf *b, const char *s)
{
    cnp_html_text(b, s);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void duration(char *buf, size_t n, double s)
{
    if (s < 120)
        snprintf(buf, n, "%.1f s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.1f min", s / 60);
    else
        snprintf(buf, n, "%.1f h", s / 3600);
}

/* Coloured swatch + label + count, as in the quick-look legend. */
static void label_chip(cnp_buf *b, const char *label, int index, long count)
{
    unsigned char rgb[3];
    int dashed;
    cnp_label_style(label, index, rgb, &dashed);
    cnp_buf_printf(b, "<span class=\"lab\"><i%s style=\"background-color:#%02x%02x%02x\"></i>",
                   dashed ? " class=\"dash\"" : "", rgb[0], rgb[1], rgb[2]);
    text(b, label);
    cnp_buf_printf(b, " %ld</span>", count);
}

static void positives(cnp_buf *b, const cnp_scene_record *r)
{
    int i, any = 0;
    for (i = 0; i < r->n_labels; i++) {
        if (r->counts[i] <= 0)
            continue;
        label_chip(b, r->labels[i], i, r->counts[i]);
        any = 1;
    }
    if (!any)
        cnp_buf_puts(b, r->failed ? "" : "none");
}

static void stat_box(cnp_buf *b, const char *cls, const char *value, const char *what)
{
    cnp_buf_printf(b, "<div class=\"stat%s%s\"><b>", *cls ? " " : "", cls);
    text(b, value);
    cnp_buf_puts(b, "</b><span>");
    text(b, what);
    cnp_buf_puts(b, "</span></div>\n");
}

static void head(cnp_buf *b, const cnp_report_options *o)
{
    cnp_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<meta name=\"generator\" content=\"canopy " PACKAGE_VERSION "\">\n<title>");
    if (o->title)
        text(b, o->title);
    else {
        cnp_buf_puts(b, "canopy report: ");
        text(b, base_name(o->outdir));
    }
    cnp_buf_puts(b, "</title>\n<style>\n");
    cnp_buf_puts(b, cnp_report_css());
    cnp_buf_puts(b, "</style>\n</head>\n<body>\n<header>\n<h1>");
    text(b, o->title ? o->title : "canopy report");
    cnp_buf_puts(b, "</h1>\n<p class=\"sub\">");
    text(b, o->outdir);
    cnp_buf_puts(b, "</p>\n");
}

static void summary(cnp_buf *b, const cnp_report_summary *s, cnp_scene_record *const *rec, int n)
{
    char v[64], t[64];
    int i, monitoring = 0;
    for (i = 0; i < n; i++)
        monitoring |= rec[i]->alerts_new >= 0;
    cnp_buf_puts(b, "<div class=\"stats\">\n");
    snprintf(v, sizeof v, "%d", s->scenes);
    snprintf(t, sizeof t, "scene%s, %d classified", s->scenes == 1 ? "" : "s", s->ok);
    stat_box(b, "", v, t);
    snprintf(v, sizeof v, "%d", s->failed);
    stat_box(b, s->failed ? "bad" : "", v, "failed");
    snprintf(v, sizeof v, "%ld", s->chips);
    stat_box(b, "", v, "chips classified");
    duration(v, sizeof v, s->seconds);
    stat_box(b, "", v, "classification time");
    if (monitoring) {
        snprintf(v, sizeof v, "%d", s->alerts_new);
        stat_box(b, s->alerts_new ? "new" : "", v, "new alerts");
    }
    cnp_buf_puts(b, "</div>\n</header>\n<main>\n");
}

static void failures(cnp_buf *b, cnp_scene_record *const *rec, int n)
{
    int i, any = 0;
    for (i = 0; i < n; i++) {
        if (!rec[i]->failed)
            continue;
        if (!any)
            cnp_buf_puts(b, "<h2 id=\"failures\">Failures</h2>\n");
        any = 1;
        cnp_buf_puts(b, "<div class=\"fail\"><b>");
        text(b, rec[i]->name);
        cnp_buf_puts(b, "</b>");
        if (rec[i]->status) {
            cnp_buf_puts(b, " (");
            text(b, rec[i]->status);
            cnp_buf_puts(b, ")");
        }
        cnp_buf_puts(b, "<pre>");
        text(b, rec[i]->message ? rec[i]->message : "no message recorded");
        cnp_buf_puts(b, "</pre></div>\n");
    }
}

static void table_row(cnp_buf *b, const cnp_scene_record *r, int i, int monitoring)
{
    char t[64];
    cnp_buf_printf(b, "<tr><td data-label=\"Scene\"><a href=\"#scene-%d\">", i + 1);
    text(b, r->name);
    cnp_buf_printf(b, "</a></td><td data-label=\"Status\"><span class=\"st %s\">%s</span></td>",
                   r->failed ? "failed" : "ok", r->failed ? "failed" : "ok");
    cnp_buf_puts(b, "<td data-label=\"Date\">");
    text(b, r->date ? r->date : r->failed ? "" : "unknown");
    cnp_buf_puts(b, "</td>");
    if (r->failed)
        cnp_buf_puts(b, "<td class=\"n\" data-label=\"Chips\"></td>");
    else
        cnp_buf_printf(b, "<td class=\"n\" data-label=\"Chips\">%ld / %ld</td>", r->classified,
                       r->cells);
    cnp_buf_puts(b, "<td data-label=\"Positive chips\">");
    positives(b, r);
    cnp_buf_puts(b, "</td>");
    if (monitoring) {
        if (r->alerts_new >= 0)
            cnp_buf_printf(b, "<td class=\"n\" data-label=\"New alerts\">%ld</td>", r->alerts_new);
        else
            cnp_buf_puts(b, "<td class=\"n\" data-label=\"New alerts\"></td>");
    }
    duration(t, sizeof t, r->seconds);
    cnp_buf_printf(b, "<td class=\"n\" data-label=\"Time\">%s</td></tr>\n", r->failed ? "" : t);
}

static void table(cnp_buf *b, cnp_scene_record *const *rec, int n)
{
    int i, monitoring = 0;
    for (i = 0; i < n; i++)
        monitoring |= rec[i]->alerts_new >= 0;
    cnp_buf_puts(b, "<h2 id=\"scenes\">Scenes</h2>\n<div class=\"wrap\">\n"
                 "<table class=\"scenes-table\">\n<thead><tr><th>Scene</th><th>Status</th>"
                 "<th>Date</th><th>Chips</th><th>Positive chips per marker</th>");
    if (monitoring)
        cnp_buf_puts(b, "<th>New alerts</th>");
    cnp_buf_puts(b, "<th>Time</th></tr></thead>\n<tbody>\n");
    for (i = 0; i < n; i++)
        table_row(b, rec[i], i, monitoring);
    cnp_buf_puts(b, "</tbody>\n</table>\n</div>\n");
}

static void file_link(cnp_buf *b, const char *rel, const char *path, const char *what)
{
    if (!path)
        return;
    cnp_buf_puts(b, "<a href=\"");
    cnp_html_href(b, rel, base_name(path));
    cnp_buf_puts(b, "\">");
    text(b, what);
    cnp_buf_puts(b, "</a>");
}

static void card(cnp_buf *b, const cnp_report_options *o, const cnp_scene_record *r, int i,
                 const char *rel)
{
    cnp_buf_printf(b, "<article class=\"scene%s\" id=\"scene-%d\">\n<h3>",
                   r->failed ? " failed" : r->alerts_new > 0 ? " alerts" : "", i + 1);
    text(b, r->name);
    cnp_buf_puts(b, "</h3>\n<p class=\"meta\">");
    if (r->failed) {
        cnp_buf_puts(b, "failed");
        if (r->status) {
            cnp_buf_puts(b, " (");
            text(b, r->status);
            cnp_buf_puts(b, ")");
        }
        cnp_buf_puts(b, "</p>\n<div class=\"msg\">");
        text(b, r->message ? r->message : "no message recorded");
        cnp_buf_puts(b, "</div>\n");
    } else {
        text(b, r->date ? r->date : "date unknown");
        cnp_buf_puts(b, " &middot; model ");
        text(b, r->model ? r->model : "unknown");
        if (r->alerts_summary) {
            cnp_buf_puts(b, " &middot; ");
            text(b, r->alerts_summary);
        }
        cnp_buf_puts(b, "</p>\n");
    }
    if (r->quicklook) {
        cnp_buf_puts(b, "<a href=\"");
        cnp_html_href(b, rel, base_name(r->quicklook));
        cnp_buf_puts(b, "\"><img src=\"");
        if (!o->inline_images || !cnp_html_data_uri(b, r->quicklook, "image/png"))
            cnp_html_href(b, rel, base_name(r->quicklook));
        cnp_buf_puts(b, "\" alt=\"quick-look of ");
        text(b, r->name);
        cnp_buf_puts(b, "\" loading=\"lazy\"></a>\n");
    }
    cnp_buf_puts(b, "<p class=\"files\">");
    file_link(b, rel, r->probs, "probabilities");
    file_link(b, rel, r->masks, "masks");
    file_link(b, rel, r->markers, "markers");
    file_link(b, rel, r->alerts, "alerts");
    file_link(b, rel, r->manifest, "manifest");
    file_link(b, rel, r->stac, "STAC item");
    file_link(b, rel, r->record, "failure record");
    cnp_buf_puts(b, "</p>\n</article>\n");
}

void cnp_report_html(cnp_buf *b, const cnp_report_options *o, cnp_scene_record *const *rec,
                     int n, const char *rel, const cnp_report_summary *sum)
{
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    int i;

    if (!gmtime_r(&t, &tm) || !strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(now, sizeof now, "unknown time");
    head(b, o);
    summary(b, sum, rec, n);
    failures(b, rec, n);
    table(b, rec, n);
    cnp_buf_puts(b, "<h2>Quick-looks</h2>\n<div class=\"scenes\">\n");
    for (i = 0; i < n; i++)
        card(b, o, rec[i], i, rel);
    cnp_buf_puts(b, "</div>\n</main>\n<footer>Made by canopy " PACKAGE_VERSION " on ");
    text(b, now);
    cnp_buf_puts(b, ". STAC: <a href=\"");
    cnp_html_href(b, rel, "collection.json");
    cnp_buf_puts(b, "\">collection.json</a>.</footer>\n</body>\n</html>\n");
}
