/* html.h -- text buffer and HTML helpers of the report (inside
 * classifier/pictures/ only). */
#ifndef CNP_PICTURES_HTML_H
#define CNP_PICTURES_HTML_H

#include <stddef.h>

/* A growing NUL-terminated buffer; failed = 1 after an allocation failure
 * (later appends do nothing). Zero-initialise; free with cnp_buf_free. */
typedef struct cnp_buf {
    char *data;
    size_t len, cap;
    int failed;
} cnp_buf;

int cnp_buf_grow(cnp_buf *b, size_t more);
void cnp_buf_add(cnp_buf *b, const char *s, size_t n);
void cnp_buf_puts(cnp_buf *b, const char *s);
void cnp_buf_printf(cnp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cnp_buf_free(cnp_buf *b);

/* Appends s as HTML text (also safe inside a quoted attribute): & < > " '
 * escaped, control characters other than newline and tab replaced. */
void cnp_html_text(cnp_buf *b, const char *s);

/* Appends s percent-encoded: all but letters, digits, - _ . ~ and /. */
void cnp_url_encode(cnp_buf *b, const char *s);

/* Appends "./" + dir + file percent-encoded (all but letters, digits,
 * - _ . ~ /): a relative URL that no browser reads as a scheme or a query.
 * The result still goes through cnp_html_text-safe characters only. */
void cnp_html_href(cnp_buf *b, const char *dir, const char *file);

/* The relative path from one folder to another ("" when the same,
 * "../out/" ...), through realpath. Caller frees; NULL when either folder
 * cannot be resolved. */
char *cnp_relative_dir(const char *from_dir, const char *to_dir);

/* Appends "data:TYPE;base64,..." of a file; 0 when it cannot be read. */
int cnp_html_data_uri(cnp_buf *b, const char *path, const char *type);

/* The report's style sheet (screen, phone, print). Static. */
const char *cnp_report_css(void);

#endif
