#define _GNU_SOURCE
#include "borg/progress.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "borg/log.h"

#define POINT_EVERY_S 1.0  /* a point of the rate window each second */
#define DRAW_EVERY_S 0.25  /* the terminal line, at most 4 times a second */
#define FILES_EVERY_S 2.0  /* metrics and status files */
#define RATE_WINDOW_S 10.0 /* tokens/s, and the shortest window of jobs/s */
#define ETA_MIN_JOBS 5     /* jobs a window must hold for its jobs/s to set the ETA */
#define STALE_S 30.0       /* status: a running run's file older than this is suspicious */
enum { RING = 64 };        /* the last minute of points */

/* Job latency buckets, roughly log-spaced from a tenth of a second to an hour. */
static const double k_buckets[] = {0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 3600};
enum { N_BUCKETS = sizeof k_buckets / sizeof *k_buckets };

typedef struct {
    double t;
    int64_t done, gen; /* jobs done this run, generated tokens */
} point;

typedef enum { LINE_NONE, LINE_PLAIN, LINE_TTY } line_kind;

struct borg_progress {
    FILE *out;
    line_kind line;
    double progress_s;
    char *metrics_path, *metrics_tmp, *status_path, *status_tmp;
    int started;
    double t0;
    int64_t done0;
    point ring[RING];
    int n_ring, head;
    double next_point, next_draw, next_plain, next_files, next_due;
    int shown; /* the terminal line is on screen */
    int warned_metrics, warned_status;
    int64_t bucket[N_BUCKETS]; /* latencies in (k_buckets[i-1], k_buckets[i]] */
    int64_t lat_count;
    double lat_sum;
};

/* What the sample means, derived once per refresh. -1: unknown. */
typedef struct {
    int64_t done, run_done, failed, left;
    double pct, tps, eta;
} view;

static borg_status dup_path(char **out, const char *fmt, const char *a, const char *b, borg_err *err)
{
    if (asprintf(out, fmt, a, b) < 0) {
        *out = NULL;
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    return BORG_OK;
}

/* Fails at start on a file the run could never write. */
static borg_status check_writable(const char *path, const char *tmp, const char *what, borg_err *err)
{
    FILE *f = fopen(tmp, "w");
    if (!f)
        return borg_fail(err, BORG_EIO, "%s: cannot write %s (%s): %s", path, what, tmp, strerror(errno));
    fclose(f);
    unlink(tmp);
    return BORG_OK;
}

borg_status progress_create(const progress_options *o, borg_progress **out, borg_err *err)
{
    *out = NULL;
    borg_progress *p = calloc(1, sizeof *p);
    if (!p)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    p->out = o->out ? o->out : stderr;
    p->progress_s = o->progress_s;
    int tty = o->tty >= 0 ? o->tty : isatty(fileno(p->out));
    if (o->quiet || !(o->progress_s > 0))
        p->line = LINE_NONE;
    else
        p->line = tty && !o->log_json ? LINE_TTY : LINE_PLAIN;
    /* Log lines from any thread then start by erasing the progress line,
     * which the next tick draws again below them. */
    log_erase_line_first(p->line == LINE_TTY);
    borg_status st = BORG_OK;
    if (o->metrics_path && !(st = dup_path(&p->metrics_path, "%s%s", o->metrics_path, "", err)) &&
        !(st = dup_path(&p->metrics_tmp, "%s%s", o->metrics_path, ".tmp", err)))
        st = check_writable(p->metrics_path, p->metrics_tmp, "the --metrics file", err);
    if (!st && o->run_dir) {
        if (mkdir(o->run_dir, 0755) != 0 && errno != EEXIST)
            st = borg_fail(err, BORG_EIO, "%s: cannot create run directory: %s", o->run_dir, strerror(errno));
        if (!st && !(st = dup_path(&p->status_path, "%s/%s", o->run_dir, "status.json", err)) &&
            !(st = dup_path(&p->status_tmp, "%s/%s", o->run_dir, "status.json.tmp", err)))
            st = check_writable(p->status_path, p->status_tmp, "the run's status", err);
    }
    if (st) {
        progress_free(p);
        return st;
    }
    *out = p;
    return BORG_OK;
}

void progress_free(borg_progress *p)
{
    if (!p)
        return;
    free(p->metrics_path);
    free(p->metrics_tmp);
    free(p->status_path);
    free(p->status_tmp);
    free(p);
}

void progress_job_done(borg_progress *p, double latency_s)
{
    if (!(latency_s >= 0)) /* NaN or negative: a clock step; count it as instant */
        latency_s = 0;
    int i = 0;
    while (i < N_BUCKETS && latency_s > k_buckets[i])
        i++;
    if (i < N_BUCKETS)
        p->bucket[i]++;
    p->lat_count++;
    p->lat_sum += latency_s;
}

int progress_due(const borg_progress *p, double now_s) { return !p->started || now_s >= p->next_due; }

static void set_next_due(borg_progress *p)
{
    double t = p->next_point < p->next_files ? p->next_point : p->next_files;
    if (p->line == LINE_TTY && p->next_draw < t)
        t = p->next_draw;
    if (p->line == LINE_PLAIN && p->next_plain < t)
        t = p->next_plain;
    p->next_due = t;
}

static const point *ring_at(const borg_progress *p, int k) /* k = 0: the oldest */
{
    return &p->ring[(p->head - p->n_ring + k + RING) % RING];
}

static void push_point(borg_progress *p, double now, int64_t run_done, int64_t gen)
{
    p->ring[p->head] = (point){now, run_done, gen};
    p->head = (p->head + 1) % RING;
    if (p->n_ring < RING)
        p->n_ring++;
}

/* Jobs per second for the ETA: over the shortest window of at least RATE_WINDOW_S that holds ETA_MIN_JOBS jobs
 * (up to the last minute), so that it follows changes yet does not swing on one long job; else over the run. */
static double jobs_rate(const borg_progress *p, double now, int64_t run_done)
{
    for (int k = p->n_ring - 1; k >= 0; k--) {
        const point *pt = ring_at(p, k);
        if (now - pt->t >= RATE_WINDOW_S && run_done - pt->done >= ETA_MIN_JOBS)
            return (double)(run_done - pt->done) / (now - pt->t);
    }
    if (run_done > p->done0 && now - p->t0 >= POINT_EVERY_S)
        return (double)(run_done - p->done0) / (now - p->t0);
    return -1;
}

/* Generated tokens per second over the last RATE_WINDOW_S (or since the start, when shorter). */
static double tokens_rate(const borg_progress *p, double now, int64_t gen)
{
    for (int k = 0; k < p->n_ring; k++) {
        const point *pt = ring_at(p, k);
        if (now - pt->t <= RATE_WINDOW_S + 1e-9) {
            double span = now - pt->t;
            return span >= 0.5 ? (double)(gen - pt->gen) / span : -1;
        }
    }
    return -1;
}

static view make_view(const borg_progress *p, const progress_sample *s, double now)
{
    view v;
    v.run_done = s->ok + s->error + s->timeout + s->cancelled;
    v.done = v.run_done + s->jobs_resumed;
    v.failed = s->error + s->timeout;
    v.left = s->jobs_total >= 0 ? (s->jobs_total > v.done ? s->jobs_total - v.done : 0) : -1;
    v.pct = s->jobs_total > 0 ? 100.0 * (double)v.done / (double)s->jobs_total : s->jobs_total == 0 ? 100 : -1;
    v.tps = tokens_rate(p, now, s->generated_tokens);
    v.eta = -1;
    if (!s->stopping && v.left == 0)
        v.eta = 0;
    else if (!s->stopping && v.left > 0) {
        double r = jobs_rate(p, now, v.run_done);
        if (r > 0)
            v.eta = (double)v.left / r;
    }
    return v;
}

/* 45s, 12m03s, 3h07m, 2d05h; "?" when unknown. */
static const char *fmt_dur(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 1e9)
        snprintf(buf, cap, "?");
    else if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else if (s < 86400)
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else
        snprintf(buf, cap, "%dd%02dh", (int)(s / 86400), (int)fmod(s / 3600, 24));
    return buf;
}

static const char *fmt_rate(double r, char *buf, size_t cap)
{
    if (r < 0)
        snprintf(buf, cap, "?");
    else
        snprintf(buf, cap, "%.1f", r);
    return buf;
}

/* ---- the terminal line ---- */

static void draw(borg_progress *p, const progress_sample *s, const view *v)
{
    char line[256], total[32], pct[32] = "", tps[32], eta[32], el[32];
    if (s->jobs_total >= 0)
        snprintf(total, sizeof total, "%lld", (long long)s->jobs_total);
    else
        snprintf(total, sizeof total, "?");
    if (v->pct >= 0)
        snprintf(pct, sizeof pct, " (%.1f%%)", v->pct);
    int n = snprintf(line, sizeof line, "borg-infer: %lld/%s jobs%s | %s tok/s | ETA %s | %lld failed | %s elapsed%s",
                     (long long)v->done, total, pct, fmt_rate(v->tps, tps, sizeof tps),
                     fmt_dur(v->eta, eta, sizeof eta), (long long)v->failed, fmt_dur(s->elapsed_s, el, sizeof el),
                     s->stopping ? " | draining" : "");
    if (n < 0)
        return;
    /* A line wider than the terminal wraps, and \r would then rewrite only its last row. */
    struct winsize ws;
    int fd = fileno(p->out);
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && (size_t)n >= ws.ws_col)
        line[ws.ws_col - 1] = '\0';
    fprintf(p->out, "\r%s\033[K", line);
    fflush(p->out);
    p->shown = 1;
}

void progress_clear(borg_progress *p)
{
    if (!p || !p->shown)
        return;
    fputs("\r\033[K", p->out);
    fflush(p->out);
    p->shown = 0;
    p->next_draw = 0; /* redrawn at the next tick */
    set_next_due(p);
}

/* ---- the plain line, through the logger ---- */

static void plain(const progress_sample *s, const view *v)
{
    log_field f[16];
    int n = 0;
    f[n++] = LOG_I("done", v->done);
    if (s->jobs_total >= 0)
        f[n++] = LOG_I("total", s->jobs_total);
    f[n++] = LOG_I("ok", s->ok);
    f[n++] = LOG_I("error", s->error);
    f[n++] = LOG_I("timeout", s->timeout);
    f[n++] = LOG_I("cancelled", s->cancelled);
    f[n++] = LOG_I("resumed", s->jobs_resumed);
    f[n++] = LOG_I("generated_tokens", s->generated_tokens);
    if (v->tps >= 0)
        f[n++] = LOG_F("tokens_per_s", v->tps);
    if (v->eta >= 0)
        f[n++] = LOG_F("eta_s", v->eta);
    f[n++] = LOG_I("queue_depth", s->queue_depth);
    f[n++] = LOG_I("kv_slots_used", s->kv_slots_used);
    f[n++] = LOG_F("elapsed_s", s->elapsed_s);
    f[n++] = LOG_B("draining", s->stopping);
    char of[64] = "", tps[32], eta[32];
    if (s->jobs_total >= 0)
        snprintf(of, sizeof of, " of %lld (%.1f%%)", (long long)s->jobs_total, v->pct);
    log_event(LOG_INFO, "progress", NULL, f, n,
              "progress: %lld%s jobs done, %lld failed; %s generated tokens/s; ETA %s%s", (long long)v->done, of,
              (long long)v->failed, fmt_rate(v->tps, tps, sizeof tps), fmt_dur(v->eta, eta, sizeof eta),
              s->stopping ? "; draining" : "");
}

/* ---- the files ---- */

/* data into path, whole or not at all: readers see the old file or the new one. */
static borg_status replace_file(const char *path, const char *tmp, const char *data, size_t len, borg_err *err)
{
    FILE *f = fopen(tmp, "w");
    if (!f)
        return borg_fail(err, BORG_EIO, "%s: cannot write: %s", tmp, strerror(errno));
    int bad = fwrite(data, 1, len, f) != len;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        borg_status st = borg_fail(err, BORG_EIO, "%s: cannot %s: %s", bad ? tmp : path, bad ? "write" : "replace",
                                   strerror(errno));
        unlink(tmp);
        return st;
    }
    return BORG_OK;
}

static void put_double(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else
        fprintf(f, "%.10g", v);
}

/* A label value as the text format escapes it: backslash, double quote, newline. */
static void put_label(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_i(FILE *f, const char *name, const char *type, const char *help, int64_t v)
{
    family(f, name, type, help);
    fprintf(f, "%s %lld\n", name, (long long)v);
}

static void metric_f(FILE *f, const char *name, const char *type, const char *help, double v)
{
    family(f, name, type, help);
    fprintf(f, "%s ", name);
    put_double(f, v);
    fputc('\n', f);
}

static void stage_metric(FILE *f, const progress_sample *s, const double *vals, const char *name, const char *type,
                         const char *help)
{
    if (!vals || s->n_stages <= 0)
        return;
    family(f, name, type, help);
    for (int i = 0; i < s->n_stages; i++) {
        fprintf(f, "%s{rank=\"%d\",host=\"", name, s->stage_rank ? s->stage_rank[i] : i + 1);
        put_label(f, s->stage_host ? s->stage_host[i] : NULL);
        fputs("\"} ", f);
        put_double(f, vals[i]);
        fputc('\n', f);
    }
}

/* The Prometheus text exposition format, version 0.0.4. */
static void metrics_text(const borg_progress *p, const progress_sample *s, FILE *f)
{
    family(f, "borg_jobs_total", "counter", "Jobs answered, by status (resumed: answered by an earlier run).");
    const struct {
        const char *name;
        int64_t v;
    } by[] = {{"ok", s->ok},
              {"error", s->error},
              {"timeout", s->timeout},
              {"cancelled", s->cancelled},
              {"resumed", s->jobs_resumed}};
    for (size_t i = 0; i < sizeof by / sizeof *by; i++)
        fprintf(f, "borg_jobs_total{status=\"%s\"} %lld\n", by[i].name, (long long)by[i].v);
    if (s->jobs_total >= 0)
        metric_i(f, "borg_jobs_in_file", "gauge", "Jobs in the jobs file (absent until the whole file is read).",
                 s->jobs_total);
    metric_i(f, "borg_prompt_tokens_total", "counter", "Prompt tokens of the jobs admitted.", s->prompt_tokens);
    metric_i(f, "borg_generated_tokens_total", "counter", "Tokens generated.", s->generated_tokens);
    metric_i(f, "borg_queue_depth", "gauge", "Requests read and waiting for a KV slot.", s->queue_depth);
    metric_i(f, "borg_kv_slots_used", "gauge", "KV cache slots holding a sequence.", s->kv_slots_used);
    metric_i(f, "borg_kv_slots", "gauge", "KV cache slots, over all pipelines.", s->kv_slots_total);
    metric_i(f, "borg_recoveries_total", "counter", "Recoveries from a failed stage rank.", s->recoveries);
    metric_i(f, "borg_damaged_frames_total", "counter", "Frames that arrived damaged and were recomputed.",
             s->damaged_frames);
    stage_metric(f, s, s->stage_busy_s, "borg_stage_busy_seconds_total", "counter",
                 "Seconds each stage rank has spent computing.");
    stage_metric(f, s, s->stage_rss_mib, "borg_stage_peak_rss_mib", "gauge",
                 "Peak resident memory of each stage rank, in MiB.");
    family(f, "borg_job_latency_seconds", "histogram", "Seconds from reading a job to its result line being written.");
    int64_t cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += p->bucket[i];
        fprintf(f, "borg_job_latency_seconds_bucket{le=\"%g\"} %lld\n", k_buckets[i], (long long)cum);
    }
    fprintf(f, "borg_job_latency_seconds_bucket{le=\"+Inf\"} %lld\n", (long long)p->lat_count);
    fputs("borg_job_latency_seconds_sum ", f);
    put_double(f, p->lat_sum);
    fprintf(f, "\nborg_job_latency_seconds_count %lld\n", (long long)p->lat_count);
    metric_f(f, "borg_elapsed_seconds", "gauge", "Seconds since the run started.", s->elapsed_s);
    metric_i(f, "borg_draining", "gauge", "1 while the run drains after a stop signal or its deadline.",
             s->stopping != 0);
}

static borg_status write_metrics(const borg_progress *p, const progress_sample *s, borg_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    metrics_text(p, s, f);
    borg_status st = fclose(f) != 0 ? borg_fail(err, BORG_ENOMEM, "out of memory")
                                    : replace_file(p->metrics_path, p->metrics_tmp, buf, len, err);
    free(buf);
    return st;
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add_num_or_null(cJSON *o, const char *key, double v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static borg_status write_status(const borg_progress *p, const progress_sample *s, const view *v, const char *state,
                                borg_err *err)
{
    cJSON *o = cJSON_CreateObject();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNumberToObject(o, "updated", unix_now());
    cJSON_AddNumberToObject(o, "elapsed_s", s->elapsed_s);
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    add_num_or_null(jobs, "total", (double)s->jobs_total);
    cJSON_AddNumberToObject(jobs, "done", (double)v->done);
    cJSON_AddNumberToObject(jobs, "ok", (double)s->ok);
    cJSON_AddNumberToObject(jobs, "error", (double)s->error);
    cJSON_AddNumberToObject(jobs, "timeout", (double)s->timeout);
    cJSON_AddNumberToObject(jobs, "cancelled", (double)s->cancelled);
    cJSON_AddNumberToObject(jobs, "resumed", (double)s->jobs_resumed);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)s->prompt_tokens);
    cJSON_AddNumberToObject(o, "generated_tokens", (double)s->generated_tokens);
    add_num_or_null(o, "tokens_per_s", v->tps);
    add_num_or_null(o, "eta_s", v->eta);
    cJSON_AddNumberToObject(o, "queue_depth", (double)s->queue_depth);
    cJSON_AddNumberToObject(o, "kv_slots_used", (double)s->kv_slots_used);
    cJSON_AddNumberToObject(o, "kv_slots", (double)s->kv_slots_total);
    cJSON_AddNumberToObject(o, "recoveries", (double)s->recoveries);
    cJSON_AddNumberToObject(o, "damaged_frames", (double)s->damaged_frames);
    cJSON *stages = cJSON_AddArrayToObject(o, "stages");
    for (int i = 0; i < s->n_stages; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "rank", s->stage_rank ? s->stage_rank[i] : i + 1);
        cJSON_AddStringToObject(r, "host", s->stage_host && s->stage_host[i] ? s->stage_host[i] : "");
        add_num_or_null(r, "busy_s", s->stage_busy_s ? s->stage_busy_s[i] : -1);
        add_num_or_null(r, "peak_rss_mib", s->stage_rss_mib ? s->stage_rss_mib[i] : -1);
        cJSON_AddItemToArray(stages, r);
    }
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddStringToObject(o, "host", host);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's terminator becomes the file's last newline */
    borg_status st = replace_file(p->status_path, p->status_tmp, text, len + 1, err);
    free(text);
    return st;
}

/* Mid-run: a failure is told once (until the file can be written again) and does not stop the run. */
static void refresh_files(borg_progress *p, const progress_sample *s, const view *v)
{
    borg_err e = {0};
    if (p->metrics_path) {
        if (write_metrics(p, s, &e) == BORG_OK)
            p->warned_metrics = 0;
        else if (!p->warned_metrics) {
            p->warned_metrics = 1;
            progress_clear(p);
            log_event(LOG_WARN, "progress_write_failed", NULL, LOG_FIELDS(LOG_S("file", p->metrics_path)),
                      "%s (the run goes on; retried every %.0f s)", e.msg, FILES_EVERY_S);
        }
    }
    if (p->status_path) {
        if (write_status(p, s, v, "running", &e) == BORG_OK)
            p->warned_status = 0;
        else if (!p->warned_status) {
            p->warned_status = 1;
            progress_clear(p);
            log_event(LOG_WARN, "progress_write_failed", NULL, LOG_FIELDS(LOG_S("file", p->status_path)),
                      "%s (the run goes on; retried every %.0f s)", e.msg, FILES_EVERY_S);
        }
    }
}

static void start(borg_progress *p, const progress_sample *s, double now)
{
    p->started = 1;
    p->t0 = now;
    p->done0 = s->ok + s->error + s->timeout + s->cancelled;
    p->next_point = now;
    p->next_files = now;
    p->next_draw = now;
    p->next_plain = now + p->progress_s;
}

/* The next time of a periodic action after now: on the grid from t, or a full period on after a long gap. */
static double next_after(double t, double period, double now)
{
    t += period;
    return t > now ? t : now + period;
}

borg_status progress_tick(borg_progress *p, const progress_sample *s, double now_s, borg_err *err)
{
    if (p->started && now_s < p->next_due)
        return BORG_OK;
    if (!p->started)
        start(p, s, now_s);
    int64_t run_done = s->ok + s->error + s->timeout + s->cancelled;
    if (now_s >= p->next_point) {
        push_point(p, now_s, run_done, s->generated_tokens);
        p->next_point = next_after(p->next_point, POINT_EVERY_S, now_s);
    }
    view v = make_view(p, s, now_s);
    if (p->line == LINE_TTY && now_s >= p->next_draw) {
        draw(p, s, &v);
        p->next_draw = next_after(p->next_draw, DRAW_EVERY_S, now_s);
    }
    if (p->line == LINE_PLAIN && now_s >= p->next_plain) {
        plain(s, &v);
        p->next_plain = next_after(p->next_plain, p->progress_s, now_s);
    }
    if (now_s >= p->next_files) {
        refresh_files(p, s, &v);
        p->next_files = next_after(p->next_files, FILES_EVERY_S, now_s);
    }
    set_next_due(p);
    return BORG_OK;
}

borg_status progress_finish(borg_progress *p, const progress_sample *s, double now_s, int complete, borg_err *err)
{
    if (!p->started)
        start(p, s, now_s);
    view v = make_view(p, s, now_s);
    if (p->line == LINE_TTY) {
        draw(p, s, &v);
        fputc('\n', p->out);
        fflush(p->out);
        p->shown = 0;
    }
    borg_status st = BORG_OK;
    if (p->metrics_path)
        st = write_metrics(p, s, err);
    if (p->status_path) {
        borg_err e2;
        borg_status st2 = write_status(p, s, &v, complete ? "finished" : "stopped", st ? &e2 : err);
        if (!st)
            st = st2;
    }
    return st;
}

/* ---- borg-infer status ---- */

static double num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : dflt;
}

static borg_status read_all(const char *path, char **out, borg_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return borg_fail(err, errno == ENOENT ? BORG_EINPUT : BORG_EIO, "%s: %s", path,
                         errno == ENOENT ? "no status file: no run with this --run-dir has started (or it predates "
                                           "status files)"
                                         : strerror(errno));
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while (m && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    int bad = ferror(f);
    fclose(f);
    if (!m || fclose(m) != 0) {
        free(buf);
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    if (bad) {
        free(buf);
        return borg_fail(err, BORG_EIO, "%s: cannot read", path);
    }
    *out = buf;
    return BORG_OK;
}

static void show_stages(const cJSON *stages, double elapsed, FILE *out)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, stages)
    {
        const cJSON *host = cJSON_GetObjectItemCaseSensitive(r, "host");
        double busy = num(r, "busy_s", -1), rss = num(r, "peak_rss_mib", -1);
        fprintf(out, "stage rank %d", (int)num(r, "rank", -1));
        if (cJSON_IsString(host) && host->valuestring[0])
            fprintf(out, " on %s", host->valuestring);
        if (busy >= 0) {
            fprintf(out, ": busy %.1f s", busy);
            if (elapsed > 0)
                fprintf(out, " (%.0f%% of the run)", 100 * busy / elapsed);
        } else {
            fputs(": busy time not known yet", out);
        }
        if (rss >= 0)
            fprintf(out, ", peak memory %.1f MiB", rss);
        fputc('\n', out);
    }
}

borg_status status_show(const char *run_dir, FILE *out, borg_err *err)
{
    char *path = NULL, *text = NULL;
    if (asprintf(&path, "%s/status.json", run_dir) < 0)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    borg_status st = read_all(path, &text, err);
    cJSON *o = st ? NULL : cJSON_Parse(text);
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(o, "jobs");
    if (!st && (!cJSON_IsString(state) || !cJSON_IsObject(jobs)))
        st = borg_fail(err, BORG_EINPUT, "%s: not a borg-infer status file (no state or jobs)", path);
    if (st) {
        cJSON_Delete(o);
        free(text);
        free(path);
        return st;
    }
    char b1[32], b2[32];
    const int running = !strcmp(state->valuestring, "running");
    double age = unix_now() - num(o, "updated", 0), elapsed = num(o, "elapsed_s", 0);
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(o, "host");
    fprintf(out, "run in %s: %s; written %s ago by pid %d", run_dir, state->valuestring, fmt_dur(age, b1, sizeof b1),
            (int)num(o, "pid", 0));
    if (cJSON_IsString(host) && host->valuestring[0])
        fprintf(out, " on %s", host->valuestring);
    fputc('\n', out);
    if (running && age > STALE_S)
        fprintf(out,
                "note: a running run rewrites this file every %.0f s; this one is %s old, so the run may have "
                "died (killed, or its node lost)\n",
                FILES_EVERY_S, fmt_dur(age, b1, sizeof b1));
    double total = num(jobs, "total", -1), done = num(jobs, "done", 0);
    fprintf(out, "jobs: %.0f done", done);
    if (total >= 0)
        fprintf(out, " of %.0f (%.1f%%), %.0f left", total, total > 0 ? 100 * done / total : 100.0,
                total > done ? total - done : 0);
    else
        fputs(" (total not known until the whole jobs file is read)", out);
    fprintf(out, ": %.0f ok, %.0f error, %.0f timeout, %.0f cancelled, %.0f resumed\n", num(jobs, "ok", 0),
            num(jobs, "error", 0), num(jobs, "timeout", 0), num(jobs, "cancelled", 0), num(jobs, "resumed", 0));
    fprintf(out, "tokens: %.0f generated, %s tokens/s recently; ", num(o, "generated_tokens", 0),
            fmt_rate(num(o, "tokens_per_s", -1), b1, sizeof b1));
    if (running)
        fprintf(out, "ETA %s; ", fmt_dur(num(o, "eta_s", -1), b2, sizeof b2));
    fprintf(out, "%s elapsed\n", fmt_dur(elapsed, b1, sizeof b1));
    fprintf(out,
            "queue: %.0f waiting for a KV slot; KV slots %.0f of %.0f in use; %.0f recoveries, %.0f damaged "
            "frames\n",
            num(o, "queue_depth", 0), num(o, "kv_slots_used", 0), num(o, "kv_slots", 0), num(o, "recoveries", 0),
            num(o, "damaged_frames", 0));
    show_stages(cJSON_GetObjectItemCaseSensitive(o, "stages"), elapsed, out);
    cJSON_Delete(o);
    free(text);
    free(path);
    return BORG_OK;
}
