/* html.c -- the pieces of the HTML report: a growing text buffer, escaping
 * (every string from a file goes through cnp_html_text or cnp_html_href),
 * relative links, data: URIs and the page's style sheet. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/html.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cnp_buf_grow(cnp_buf *b, size_t more)
{
    size_t cap;
    char *p;
    if (b->failed)
        return 0;
    if (b->len + more + 1 <= b->cap)
        return 1;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) {
        if (cap > ((size_t)1 << 40)) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void cnp_buf_add(cnp_buf *b, const char *s, size_t n)
{
    if (!cnp_buf_grow(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cnp_buf_puts(cnp_buf *b, const char *s)
{
    cnp_buf_add(b, s, strlen(s));
}

void cnp_buf_printf(cnp_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !cnp_buf_grow(b, (size_t)n)) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cnp_buf_free(cnp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void cnp_html_text(cnp_buf *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': cnp_buf_puts(b, "&amp;"); break;
        case '<': cnp_buf_puts(b, "&lt;"); break;
        case '>': cnp_buf_puts(b, "&gt;"); break;
        case '"': cnp_buf_puts(b, "&quot;"); break;
        case '\'': cnp_buf_puts(b, "&#39;"); break;
        default:
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                cnp_buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
            else
                cnp_buf_add(b, s, 1);
        }
    }
}

void cnp_url_encode(cnp_buf *b, const char *str)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    for (; s && *s; s++) {
        char e[3];
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.' || *s == '~' || *s == '/') {
            cnp_buf_add(b, (const char *)s, 1);
            continue;
        }
        e[0] = '%';
        e[1] = hex[*s >> 4];
        e[2] = hex[*s & 15];
        cnp_buf_add(b, e, 3);
    }
}

void cnp_html_href(cnp_buf *b, const char *dir, const char *file)
{
    cnp_buf_puts(b, "./");
    cnp_url_encode(b, dir);
    cnp_url_encode(b, file);
}

/* Path components of an absolute path. */
static char **components(const char *abs)
{
    return CSLTokenizeString2(abs, "/", 0);
}

char *cnp_relative_dir(const char *from_dir, const char *to_dir)
{
    char *a = realpath(from_dir, NULL), *b = realpath(to_dir, NULL), **ca = NULL, **cb = NULL;
    cnp_buf out = {0};
    int i = 0, j;

    if (!a || !b)
        goto cleanup;
    ca = components(a);
    cb = components(b);
    while (ca && cb && ca[i] && cb[i] && !strcmp(ca[i], cb[i]))
        i++;
    for (j = i; ca && ca[j]; j++)
        cnp_buf_puts(&out, "../");
    for (j = i; cb && cb[j]; j++) {
        cnp_buf_puts(&out, cb[j]);
        cnp_buf_puts(&out, "/");
    }
    cnp_buf_puts(&out, "");
cleanup:
    CSLDestroy(ca);
    CSLDestroy(cb);
    free(a);
    free(b);
    if (out.failed || (!out.data && (!a || !b))) {
        cnp_buf_free(&out);
        return NULL;
    }
    return out.data ? out.data : strdup("");
}

int cnp_html_data_uri(cnp_buf *b, const char *path, const char *type)
{
    GByte *bytes = NULL;
    vsi_l_offset n = 0;
    char *enc;
    if (!VSIIngestFile(NULL, path, &bytes, &n, (GIntBig)32 << 20) || n > INT32_MAX / 2) {
        VSIFree(bytes);
        return 0;
    }
    enc = CPLBase64Encode((int)n, bytes);
    VSIFree(bytes);
    if (!enc)
        return 0;
    cnp_buf_printf(b, "data:%s;base64,", type);
    cnp_buf_puts(b, enc);
    CPLFree(enc);
    return 1;
}

const char *cnp_report_css(void)
{
    return
":root{--fg:#1d2327;--mute:#5f6b73;--line:#d5dbdf;--bg:#f6f7f8;--card:#fff;--bad:#b3261e;"
"--badbg:#fdecea;--ok:#1b6e3a;--new:#7a4b00;--newbg:#fff4dc}\n"
"*{box-sizing:border-box}\n"
"body{margin:0;font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"DejaVu Sans\","
"sans-serif;color:var(--fg);background:var(--bg)}\n"
"header,main,footer{max-width:1200px;margin:0 auto;padding:0 16px}\n"
"header{padding-top:20px}\n"
"h1{font-size:1.5rem;margin:0 0 4px}h2{font-size:1.2rem;margin:28px 0 10px}"
"h3{font-size:1.05rem;margin:0 0 8px;overflow-wrap:anywhere}\n"
".sub{color:var(--mute);margin:0;overflow-wrap:anywhere}\n"
".stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;"
"margin-top:16px}\n"
".stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}\n"
".stat b{display:block;font-size:1.45rem}.stat span{color:var(--mute);font-size:.85rem}\n"
".stat.bad{border-color:var(--bad);background:var(--badbg)}"
".stat.new{border-color:#c98a00;background:var(--newbg)}\n"
".fail{background:var(--badbg);border:1px solid var(--bad);border-radius:8px;padding:10px 12px;"
"margin:8px 0}\n"
".fail pre,.msg{white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0 0;"
"font:13px/1.4 ui-monospace,\"DejaVu Sans Mono\",monospace}\n"
".wrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:8px}\n"
"table{border-collapse:collapse;width:100%;font-size:.92rem}\n"
"th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}\n"
"th{background:#eef1f3;font-weight:600;white-space:nowrap}td.n{text-align:right;"
"font-variant-numeric:tabular-nums;white-space:nowrap}\n"
"td a{overflow-wrap:anywhere}\n"
".st{font-weight:600;white-space:nowrap}.st.ok{color:var(--ok)}.st.failed{color:var(--bad)}\n"
".lab{display:inline-block;white-space:nowrap;margin:0 10px 2px 0}\n"
".lab i{display:inline-block;width:.9em;height:.9em;border:1px solid #333;border-radius:2px;"
"margin-right:4px;vertical-align:-1px}\n"
".lab i.dash{background-image:repeating-linear-gradient(90deg,transparent 0 3px,#fff 3px 5px)}\n"
".scenes{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(540px,100%),1fr));gap:16px}\n"
".scene{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px;min-width:0}\n"
".scene.failed{border-color:var(--bad)}.scene.alerts{border-color:#c98a00}\n"
".scene img{display:block;width:100%;height:auto;border:1px solid var(--line)}\n"
".files{margin:8px 0 0;font-size:.88rem}.files a{margin-right:10px;white-space:nowrap}\n"
".meta{color:var(--mute);font-size:.88rem;margin:0 0 8px}\n"
"footer{color:var(--mute);font-size:.8rem;padding:24px 16px}\n"
"a{color:#0b57a4}\n"
"@media (max-width:640px){body{font-size:14px}.scenes{grid-template-columns:1fr}"
"table.scenes-table thead{display:none}"
"table.scenes-table,table.scenes-table tbody,table.scenes-table tr,table.scenes-table td"
"{display:block;width:100%}"
"table.scenes-table tr{border-bottom:2px solid var(--line);padding:6px 0}"
"table.scenes-table td{border:0;padding:3px 10px;text-align:left}"
"table.scenes-table td:empty{display:none}"
"table.scenes-table td::before{content:attr(data-label);display:inline-block;min-width:9em;"
"color:var(--mute);font-weight:600}}\n"
"@media print{body{background:#fff;font-size:10pt}header,main,footer{max-width:none;padding:0}"
".wrap{overflow:visible;border:0}.stat,.scene,.fail{break-inside:avoid}"
".scenes{display:block}.scene{margin:0 0 12pt;page-break-inside:avoid;border-color:#999}"
".scene img{max-height:16cm;width:auto;max-width:100%}a{color:inherit;text-decoration:none}"
".files{display:none}th{background:#eee}}\n";
}
