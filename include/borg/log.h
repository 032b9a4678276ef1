/* The one logger every rank and thread writes through.
 *
 * Each line is an event: a fixed name that tests and tools match on (so they
 * need not match sentences), typed fields, and a sentence for people. By
 * default only the sentence is printed, after a "borg-infer:" prefix that
 * names the rank; with json on, each event is one JSON object per line
 * carrying everything. Lines are written whole under a lock, so lines from
 * threads (and from stages run as threads of rank 0's process) never
 * interleave. A line is formatted on the stack, without allocating; one that
 * would exceed 4 KiB has its strings and sentence cut (ending in "...") and is
 * still one valid line. */
#ifndef BORG_LOG_H
#define BORG_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

/* One typed value of an event; build them with the LOG_I/F/S/B macros. In JSON a field is printed under its
 * key (which should not be one of the fixed keys: time, level, rank, event, job, msg); a NULL string is null. */
typedef struct {
    const char *key;
    char kind; /* 'i' integer, 'f' floating, 's' string, 'b' boolean */
    int64_t i;
    double f;
    const char *s;
} log_field;

#define LOG_I(k, v) ((log_field){(k), 'i', (int64_t)(v), 0.0, NULL})
#define LOG_F(k, v) ((log_field){(k), 'f', 0, (double)(v), NULL})
#define LOG_S(k, v) ((log_field){(k), 's', 0, 0.0, (v)})
#define LOG_B(k, v) ((log_field){(k), 'b', (int64_t)((v) != 0), 0.0, NULL})

/* Process-wide set-up, before any thread logs: json != 0 -> one JSON object per line; quiet -> LOG_INFO and
 * LOG_DEBUG are dropped (warnings and errors still print); verbose -> LOG_DEBUG printed too (default: not).
 * sink NULL means stderr. Until it is called: human lines, info and above, to stderr. */
void log_setup(int json, int quiet, int verbose, FILE *sink);
/* The rank printed with this thread's lines (thread-local; default 0). A stage that runs on a thread of
 * rank 0's process (the single-process run) sets its own rank on its thread. */
void log_set_rank(int rank);
/* An event: a name tests and tools match on (e.g. "recovered", "config_sent", "stage_ready", "error"),
 * the request's job id or NULL, n typed fields, and a human sentence (printf format). One trailing newline
 * of the sentence is dropped, so messages written for fprintf may be passed as they are. errno is kept. */
void log_event(log_level lv, const char *event, const char *req, const log_field *fields, int n, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Shorthand: log_event with no fields and the event "message". */
void log_msg(log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* With on, each human line starts by erasing the terminal's current line
 * (\r, ESC[K): a progress line rewritten in place is not left half under
 * it. Set before threads log, like log_setup. */
void log_erase_line_first(int on);

/* Would a line at this level be printed? (to skip building expensive messages) */
int log_enabled(log_level lv);
/* Helper macro to pass a compound-literal field array with its count: */
#define LOG_FIELDS(...) \
    ((const log_field[]){__VA_ARGS__}), (int)(sizeof((const log_field[]){__VA_ARGS__}) / sizeof(log_field))

#endif
