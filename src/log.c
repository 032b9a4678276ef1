#include "borg/log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The longest line written, newline included. Big enough for any sentence the program writes; small enough to
 * sit on a worker thread's stack twice (the line and, in JSON, the sentence before escaping). */
#define LINE_CAP 4096
/* Kept free while the header and fields are written, so the sentence always has room: `,"msg":"`, at least
 * MSG_MIN bytes of it, then `..."}` and the newline. */
#define MSG_MIN 256
#define TAIL_RESERVE (8 + MSG_MIN + 5 + 1)
#define CUT_MARK "..."

/* Set by log_setup before any thread logs (its contract), so read without the lock. */
static int g_json;
static log_level g_min = LOG_INFO;
static FILE *g_sink; /* NULL: stderr, looked up at each write since stderr is not a constant */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_erase_line; /* a progress line may be on the terminal */

void log_erase_line_first(int on) { g_erase_line = on; }
static _Thread_local int t_rank;

typedef struct {
    char b[LINE_CAP];
    size_t n;
} line_buf;

void log_setup(int json, int quiet, int verbose, FILE *sink)
{
    g_json = json != 0;
    g_min = quiet ? LOG_WARN : verbose ? LOG_DEBUG : LOG_INFO;
    g_sink = sink;
}

void log_set_rank(int rank) { t_rank = rank; }

static log_level clamp_level(log_level lv) { return lv < LOG_DEBUG ? LOG_DEBUG : lv > LOG_ERROR ? LOG_ERROR : lv; }

int log_enabled(log_level lv) { return clamp_level(lv) >= g_min; }

/* buf[0, len) less a trailing UTF-8 sequence cut short, so a cut line is still valid UTF-8 for strict readers. */
static size_t utf8_complete(const char *buf, size_t len)
{
    size_t k = 0; /* continuation bytes at the end */
    while (k < len && k < 3 && ((unsigned char)buf[len - 1 - k] & 0xC0) == 0x80)
        k++;
    if (k == len)
        return len;
    unsigned char lead = (unsigned char)buf[len - 1 - k];
    if (lead < 0xC0) /* ASCII or stray continuation bytes: nothing a cut could have broken */
        return len;
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return need > k + 1 ? len - 1 - k : len;
}

/* All or nothing, so a field that does not fit can be left out whole. */
static int put(line_buf *ln, const char *s, size_t len, size_t limit)
{
    if (ln->n + len > limit)
        return 0;
    memcpy(ln->b + ln->n, s, len);
    ln->n += len;
    return 1;
}

static int put_s(line_buf *ln, const char *s, size_t limit) { return put(ln, s, strlen(s), limit); }

/* The JSON escape of byte c into esc (8 bytes); returns its length. */
static size_t json_escape(unsigned char c, char *esc)
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"': memcpy(esc, "\\\"", 2); return 2;
    case '\\': memcpy(esc, "\\\\", 2); return 2;
    case '\n': memcpy(esc, "\\n", 2); return 2;
    case '\r': memcpy(esc, "\\r", 2); return 2;
    case '\t': memcpy(esc, "\\t", 2); return 2;
    case '\b': memcpy(esc, "\\b", 2); return 2;
    case '\f': memcpy(esc, "\\f", 2); return 2;
    default:
        if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            return 6;
        }
        esc[0] = (char)c; /* bytes >= 0x80 go out as they are: the text is UTF-8 */
        return 1;
    }
}

/* Does the escape of s[i, len) end at or before limit, starting at n? (Asked only near the end of the room, so
 * it looks at a few bytes.) */
static int rest_fits(const char *s, size_t i, size_t len, size_t n, size_t limit)
{
    char esc[8];
    for (; i < len && n <= limit; i++)
        n += json_escape((unsigned char)s[i], esc);
    return n <= limit;
}

/* s[0, len) as a quoted JSON string ending at or before limit. cut says s is already a prefix of the real text.
 * Returns 1 when written whole, 0 when written cut (ending in "..."), -1 when not even that fits (nothing
 * written). */
static int put_json_str(line_buf *ln, const char *s, size_t len, int cut, size_t limit)
{
    const size_t mark_len = sizeof CUT_MARK - 1;
    if (ln->n + 2 + mark_len > limit)
        return -1;
    ln->b[ln->n++] = '"';
    /* Keep room for the cut mark and the closing quote until the end is in sight. */
    size_t stop = limit - mark_len - 1;
    size_t i = 0;
    for (; i < len; i++) {
        char esc[8];
        size_t k = json_escape((unsigned char)s[i], esc);
        if (ln->n + k > stop) {
            if (!cut && rest_fits(s, i, len, ln->n, limit - 1)) {
                for (; i < len; i++)
                    ln->n += json_escape((unsigned char)s[i], ln->b + ln->n);
            }
            break;
        }
        memcpy(ln->b + ln->n, esc, k);
        ln->n += k;
    }
    int whole = i == len && !cut;
    if (!whole) {
        ln->n = utf8_complete(ln->b, ln->n);
        memcpy(ln->b + ln->n, CUT_MARK, mark_len);
        ln->n += mark_len;
    }
    ln->b[ln->n++] = '"';
    return whole;
}

static int put_json_cstr(line_buf *ln, const char *s, size_t limit) { return put_json_str(ln, s, strlen(s), 0, limit); }

/* The shortest of %.15g and %.17g that reads back as v, so 0.12 prints as 0.12 and nothing is lost. */
static void format_double(char *out, size_t cap, double v)
{
    if (!isfinite(v)) { /* JSON has no infinity or NaN */
        snprintf(out, cap, "null");
        return;
    }
    snprintf(out, cap, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, cap, "%.17g", v);
}

/* `,"key":value`, or nothing when the room is spent (a key is never left without its value); a string value may be
 * cut. Returns 0 when nothing was written. */
static int put_field(line_buf *ln, const log_field *f, size_t limit)
{
    size_t mark = ln->n;
    char num[40];
    int ok = put_s(ln, ",", limit) && put_json_cstr(ln, f->key, limit) == 1 && put_s(ln, ":", limit);
    if (ok) {
        switch (f->kind) {
        case 'i':
            snprintf(num, sizeof num, "%" PRId64, f->i);
            ok = put_s(ln, num, limit);
            break;
        case 'f':
            format_double(num, sizeof num, f->f);
            ok = put_s(ln, num, limit);
            break;
        case 'b': ok = put_s(ln, f->i ? "true" : "false", limit); break;
        case 's':
            if (!f->s) {
                ok = put_s(ln, "null", limit);
            } else {
                ok = put_json_cstr(ln, f->s, limit) >= 0;
            }
            break;
        default: ok = put_s(ln, "null", limit); break; /* a kind this version does not know */
        }
    }
    if (!ok)
        ln->n = mark;
    return ok;
}

static const char *level_name(log_level lv)
{
    switch (lv) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "warning";
    default: return "error";
    }
}

/* Formats the sentence into buf (cap bytes), without one trailing newline; *cut when it did not fit. */
static size_t format_msg(char *buf, size_t cap, int *cut, const char *fmt, va_list ap)
{
    int r = vsnprintf(buf, cap, fmt, ap);
    size_t len = r < 0 ? 0 : (size_t)r; /* an encoding error leaves an empty sentence rather than no line */
    *cut = len >= cap;
    if (*cut)
        len = utf8_complete(buf, cap - 1);
    if (!*cut && len > 0 && buf[len - 1] == '\n')
        len--;
    return len;
}

static void build_json(line_buf *ln, log_level lv, const char *event, const char *req, const log_field *fields, int n,
                       const char *fmt, va_list ap)
{
    const size_t head_limit = LINE_CAP - TAIL_RESERVE;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) /* cannot fail with CLOCK_REALTIME; a zero time if it does */
        ts.tv_sec = 0, ts.tv_nsec = 0;
    int r = snprintf(ln->b, LINE_CAP,
                     "{\"time\":%lld.%03ld,\"level\":\"%s\",\"rank\":%d,\"event\":", (long long)ts.tv_sec,
                     ts.tv_nsec / 1000000L, level_name(lv), t_rank);
    ln->n = r < 0 ? 0 : (size_t)r; /* a few dozen bytes, far below head_limit: the event always fits, if cut */
    put_json_cstr(ln, event, head_limit);
    if (req) {
        size_t mark = ln->n;
        if (!put_s(ln, ",\"job\":", head_limit) || put_json_cstr(ln, req, head_limit) < 0)
            ln->n = mark; /* only after an event of thousands of bytes */
    }
    for (int i = 0; fields && i < n; i++) {
        if (!fields[i].key)
            continue;
        if (!put_field(ln, &fields[i], head_limit))
            break; /* later fields are left out too, so what is there keeps the caller's order */
    }
    char msg[LINE_CAP];
    int msg_cut;
    size_t msg_len = format_msg(msg, sizeof msg, &msg_cut, fmt, ap);
    put_s(ln, ",\"msg\":", LINE_CAP);
    put_json_str(ln, msg, msg_len, msg_cut, LINE_CAP - 2);
    ln->b[ln->n++] = '}';
    ln->b[ln->n++] = '\n';
}

/* Bounded append for the human prefix: a job id too long for the line is cut, and the sentence keeps MSG_MIN
 * bytes. */
static void put_prefix(line_buf *ln, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_prefix(line_buf *ln, const char *fmt, ...)
{
    size_t room = LINE_CAP - MSG_MIN - ln->n; /* at least 1: each call leaves ln->n below LINE_CAP - MSG_MIN */
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(ln->b + ln->n, room, fmt, ap);
    va_end(ap);
    if (r > 0)
        ln->n += (size_t)r < room ? (size_t)r : room - 1;
}

static void build_human(line_buf *ln, log_level lv, const char *req, const char *fmt, va_list ap)
{
    ln->n = 0;
    put_prefix(ln, "borg-infer: ");
    if (t_rank != 0)
        put_prefix(ln, "rank %d: ", t_rank);
    if (lv == LOG_WARN)
        put_prefix(ln, "warning: ");
    else if (lv == LOG_ERROR)
        put_prefix(ln, "error: ");
    if (req)
        put_prefix(ln, "[job %s] ", req);
    int cut;
    size_t len = format_msg(ln->b + ln->n, LINE_CAP - 1 - ln->n, &cut, fmt, ap);
    if (cut) {
        len = len > sizeof CUT_MARK - 1 ? utf8_complete(ln->b + ln->n, len - (sizeof CUT_MARK - 1)) : 0;
        memcpy(ln->b + ln->n + len, CUT_MARK, sizeof CUT_MARK - 1);
        len += sizeof CUT_MARK - 1;
    }
    ln->n += len;
    ln->b[ln->n++] = '\n';
}

static void write_line(const line_buf *ln)
{
    FILE *out = g_sink ? g_sink : stderr;
    /* A logger has nowhere to report its own failures: a lost line (full disk, closed pipe) is let go, and a lock
     * that fails (it cannot, for a default mutex) still lets the line out rather than losing it. */
    int locked = pthread_mutex_lock(&g_lock) == 0;
    if (g_erase_line && !g_json)
        (void)fputs("\r\033[K", out);
    (void)fwrite(ln->b, 1, ln->n, out);
    (void)fflush(out);
    if (locked)
        pthread_mutex_unlock(&g_lock);
}

static void log_vevent(log_level lv, const char *event, const char *req, const log_field *fields, int n,
                       const char *fmt, va_list ap)
{
    lv = clamp_level(lv);
    if (lv < g_min)
        return;
    int saved_errno = errno; /* callers log between a failing call and their use of errno */
    line_buf ln;
    if (g_json)
        build_json(&ln, lv, event ? event : "message", req, fields, n, fmt ? fmt : "", ap);
    else
        build_human(&ln, lv, req, fmt ? fmt : "", ap);
    write_line(&ln);
    errno = saved_errno;
}

void log_event(log_level lv, const char *event, const char *req, const log_field *fields, int n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vevent(lv, event, req, fields, n, fmt, ap);
    va_end(ap);
}

void log_msg(log_level lv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vevent(lv, "message", NULL, NULL, 0, fmt, ap);
    va_end(ap);
}
