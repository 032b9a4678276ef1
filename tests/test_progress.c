/* Progress: the terminal line (rewritten in place, its fields, 4 a second at most), plain "progress" events every
 * progress_s and none between, nothing when quiet, the metrics file (families, labels, histogram counts, rewritten
 * whole every 2 s with no .tmp left), status.json (parses, its fields, its final state) and `borg-infer status`.
 *
 * test_progress --write-metrics FILE: writes the metrics of a fixed sample to FILE, for tests/tools/check_metrics.py
 * to parse with prometheus_client. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "borg/log.h"
#include "borg/progress.h"
#include "check.h"

static char g_dir[512];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, m);
    fclose(f);
    fclose(m);
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A sample of a run at 1 job and 100 generated tokens a second, at second t. */
static progress_sample at(double t, int64_t total)
{
    progress_sample s = {.jobs_total = total, .elapsed_s = t};
    s.ok = (int64_t)t;
    s.generated_tokens = (int64_t)(t * 100);
    s.kv_slots_total = 32;
    s.kv_slots_used = 8;
    s.queue_depth = 4;
    return s;
}

static void test_tty(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    borg_progress *p;
    borg_err err = {0};
    progress_options o = {.progress_s = 30, .tty = 1, .out = out};
    CHECK(progress_create(&o, &p, &err) == BORG_OK);
    progress_sample s = at(0, 100);
    CHECK(progress_tick(p, &s, 1000.0, &err) == BORG_OK);
    fflush(out);
    CHECK(len > 0 && text[0] == '\r');
    CHECK_CONTAINS(text, "0/100 jobs (0.0%)");
    CHECK_CONTAINS(text, "ETA ?");
    CHECK_CONTAINS(text, "\033[K");
    CHECK(!strchr(text, '\n'));
    /* At most 4 redraws a second, whatever the calls. */
    for (int i = 1; i <= 100; i++) {
        double t = i * 0.01;
        s = at(t, 100);
        progress_tick(p, &s, 1000.0 + t, &err);
    }
    fflush(out);
    CHECKF(count(text, "\r") == 5, "redraws in the first second: %d", count(text, "\r"));
    /* 20 s in: 20 of 100 done at 1 job/s, 100 tokens/s, so 80 s left. */
    for (int i = 1; i <= 76; i++) {
        double t = 1 + i * 0.25;
        s = at(t, 100);
        s.error = 2;
        s.timeout = 1;
        s.ok -= 3;
        progress_tick(p, &s, 1000.0 + t, &err);
    }
    fflush(out);
    const char *last = strrchr(text, '\r');
    CHECK_CONTAINS(last, "20/100 jobs (20.0%)");
    CHECK_CONTAINS(last, "100.0 tok/s");
    CHECK_CONTAINS(last, "ETA 1m20s");
    CHECK_CONTAINS(last, "3 failed");
    CHECK(!strstr(last, "draining"));
    /* Cleared for a log line, redrawn at the next tick. */
    size_t before = len;
    progress_clear(p);
    fflush(out);
    CHECK_STR(text + before, "\r\033[K");
    progress_clear(p); /* nothing shown: nothing written */
    fflush(out);
    CHECK(len == before + 4);
    s = at(21.01, 100);
    s.stopping = 1;
    progress_tick(p, &s, 1021.01, &err);
    fflush(out);
    last = strrchr(text, '\r');
    CHECK_CONTAINS(last, "| draining");
    CHECK_CONTAINS(last, "ETA ?");
    s = at(22, 100);
    CHECK(progress_finish(p, &s, 1022, 0, &err) == BORG_OK);
    fflush(out);
    CHECK(len > 0 && text[len - 1] == '\n' && count(text, "\n") == 1);
    progress_free(p);
    fclose(out);
    free(text);

    /* Total unknown: '?' for it and the ETA, no percent. */
    text = NULL;
    out = open_memstream(&text, &len);
    o.out = out;
    CHECK(progress_create(&o, &p, &err) == BORG_OK);
    s = at(5, -1);
    progress_tick(p, &s, 5, &err);
    fflush(out);
    CHECK_CONTAINS(text, "5/? jobs |");
    CHECK_CONTAINS(text, "ETA ?");
    progress_free(p);
    fclose(out);
    free(text);
}

/* The JSON "progress" events in the logger's capture. */
static int progress_events(const char *log) { return count(log, "\"event\":\"progress\""); }

static void test_plain(void)
{
    char *log = NULL, *text = NULL;
    size_t log_len = 0, len = 0;
    FILE *sink = open_memstream(&log, &log_len);
    FILE *out = open_memstream(&text, &len);
    log_setup(1, 0, 0, sink);
    borg_progress *p;
    borg_err err = {0};
    progress_options o = {.progress_s = 30, .tty = 0, .out = out};
    CHECK(progress_create(&o, &p, &err) == BORG_OK);
    int bad = 0;
    for (int i = 0; i <= 200; i++) { /* 0 .. 100 s in half seconds */
        double t = i * 0.5;
        progress_sample s = at(t, 1000);
        progress_tick(p, &s, 500 + t, &err);
        fflush(sink);
        int want = t >= 90 ? 3 : t >= 60 ? 2 : t >= 30 ? 1 : 0;
        if (progress_events(log) != want)
            bad++;
    }
    CHECKF(bad == 0, "%d ticks saw the wrong number of progress events", bad);
    fflush(out);
    CHECK(len == 0); /* no terminal line */
    /* The event's fields are typed. */
    const char *ev = strstr(log, "{\"time\"");
    const char *nl = ev ? strchr(ev, '\n') : NULL;
    cJSON *o1 = ev && nl ? cJSON_ParseWithLength(ev, (size_t)(nl - ev)) : NULL;
    CHECK(o1 != NULL);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o1, "done")) && cJSON_GetObjectItem(o1, "done")->valueint == 30);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o1, "total")) && cJSON_GetObjectItem(o1, "total")->valueint == 1000);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o1, "tokens_per_s")));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o1, "eta_s")));
    CHECK(cJSON_IsBool(cJSON_GetObjectItem(o1, "draining")));
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(o1, "msg")), "30 of 1000 (3.0%) jobs done");
    cJSON_Delete(o1);
    progress_free(p);

    /* With --log-json on a terminal: events, not the terminal line. */
    o.tty = 1;
    o.log_json = 1;
    o.progress_s = 10;
    CHECK(progress_create(&o, &p, &err) == BORG_OK);
    int before = progress_events(log);
    for (int i = 0; i <= 20; i++) {
        progress_sample s = at(i, -1);
        progress_tick(p, &s, i, &err);
    }
    fflush(sink);
    fflush(out);
    CHECK(progress_events(log) == before + 2);
    CHECK(len == 0);
    progress_free(p);

    log_setup(0, 0, 0, NULL);
    fclose(sink);
    fclose(out);
    free(log);
    free(text);
}

static void test_quiet(void)
{
    char *log = NULL, *text = NULL;
    size_t log_len = 0, len = 0;
    FILE *sink = open_memstream(&log, &log_len);
    FILE *out = open_memstream(&text, &len);
    log_setup(0, 0, 0, sink);
    for (int mode = 0; mode < 4; mode++) {
        /* quiet on a terminal and off one; progress_s 0 on a terminal and off one */
        progress_options o = {.progress_s = mode < 2 ? 1 : 0, .quiet = mode < 2, .tty = mode % 2, .out = out};
        borg_progress *p;
        borg_err err = {0};
        CHECK(progress_create(&o, &p, &err) == BORG_OK);
        for (int i = 0; i <= 40; i++) {
            progress_sample s = at(i * 0.5, 10);
            progress_tick(p, &s, i * 0.5, &err);
        }
        progress_sample s = at(21, 10);
        CHECK(progress_finish(p, &s, 21, 1, &err) == BORG_OK);
        progress_free(p);
    }
    fflush(sink);
    fflush(out);
    CHECKF(len == 0 && log_len == 0, "quiet wrote %zu bytes to the terminal, %zu to the log", len, log_len);
    log_setup(0, 0, 0, NULL);
    fclose(sink);
    fclose(out);
    free(log);
    free(text);
}

/* A fixed sample with stages, one host needing escapes. */
static const double k_busy[] = {12.5, 11.25};
static const double k_rss[] = {512, 256.5};
static const char *const k_hosts[] = {"node-a", "we\"ird\\host"};

static progress_sample fixed(void)
{
    progress_sample s = {.jobs_total = 20,
                         .jobs_resumed = 3,
                         .ok = 7,
                         .error = 2,
                         .timeout = 1,
                         .prompt_tokens = 456,
                         .generated_tokens = 1234,
                         .queue_depth = 5,
                         .kv_slots_used = 6,
                         .kv_slots_total = 64,
                         .recoveries = 1,
                         .damaged_frames = 2,
                         .n_stages = 2,
                         .stage_busy_s = k_busy,
                         .stage_rss_mib = k_rss,
                         .stage_host = k_hosts,
                         .elapsed_s = 42.5};
    return s;
}

/* Latencies for the histogram: 0.05 | 0.3 | 1.5 | 1.5 | 7000 (over the last bucket). */
static void fixed_latencies(borg_progress *p)
{
    const double lat[] = {0.05, 0.3, 1.5, 1.5, 7000};
    for (int i = 0; i < 5; i++)
        progress_job_done(p, lat[i]);
}

static void test_metrics(void)
{
    char path[600], tmp[610], run_dir[600];
    snprintf(path, sizeof path, "%s/metrics.prom", g_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(run_dir, sizeof run_dir, "%s/run", g_dir);
    borg_progress *p;
    borg_err err = {0};
    progress_options o = {.progress_s = 30, .metrics_path = path, .run_dir = run_dir, .quiet = 1, .tty = 0};
    CHECK(progress_create(&o, &p, &err) == BORG_OK);
    CHECK(!exists(path) && !exists(tmp)); /* checked, not yet written */
    fixed_latencies(p);
    progress_sample s = fixed();
    CHECK(progress_due(p, 100));
    CHECK(progress_tick(p, &s, 100, &err) == BORG_OK);
    CHECK(!progress_due(p, 100.5));
    char *m = slurp(path);
    CHECK(m != NULL);
    CHECK(!exists(tmp));
    CHECK_CONTAINS(m, "# HELP borg_jobs_total ");
    CHECK_CONTAINS(m, "# TYPE borg_jobs_total counter\n");
    CHECK_CONTAINS(m, "borg_jobs_total{status=\"ok\"} 7\n");
    CHECK_CONTAINS(m, "borg_jobs_total{status=\"error\"} 2\n");
    CHECK_CONTAINS(m, "borg_jobs_total{status=\"timeout\"} 1\n");
    CHECK_CONTAINS(m, "borg_jobs_total{status=\"cancelled\"} 0\n");
    CHECK_CONTAINS(m, "borg_jobs_total{status=\"resumed\"} 3\n");
    CHECK_CONTAINS(m, "# TYPE borg_jobs_in_file gauge\nborg_jobs_in_file 20\n");
    CHECK_CONTAINS(m, "borg_generated_tokens_total 1234\n");
    CHECK_CONTAINS(m, "borg_prompt_tokens_total 456\n");
    CHECK_CONTAINS(m, "borg_queue_depth 5\n");
    CHECK_CONTAINS(m, "borg_kv_slots_used 6\n");
    CHECK_CONTAINS(m, "borg_kv_slots 64\n");
    CHECK_CONTAINS(m, "borg_recoveries_total 1\n");
    CHECK_CONTAINS(m, "borg_damaged_frames_total 2\n");
    CHECK_CONTAINS(m, "borg_stage_busy_seconds_total{rank=\"1\",host=\"node-a\"} 12.5\n");
    CHECK_CONTAINS(m, "borg_stage_busy_seconds_total{rank=\"2\",host=\"we\\\"ird\\\\host\"} 11.25\n");
    CHECK_CONTAINS(m, "borg_stage_peak_rss_mib{rank=\"2\",host=\"we\\\"ird\\\\host\"} 256.5\n");
    CHECK_CONTAINS(m, "# TYPE borg_job_latency_seconds histogram\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_bucket{le=\"0.1\"} 1\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_bucket{le=\"0.2\"} 1\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_bucket{le=\"0.5\"} 2\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_bucket{le=\"2\"} 4\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_bucket{le=\"3600\"} 4\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_bucket{le=\"+Inf\"} 5\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_count 5\n");
    CHECK_CONTAINS(m, "borg_job_latency_seconds_sum 7003.35\n");
    CHECK_CONTAINS(m, "borg_elapsed_seconds 42.5\n");
    CHECK_CONTAINS(m, "borg_draining 0\n");
    CHECK(m && m[strlen(m) - 1] == '\n');

    /* Rewritten every 2 s, not sooner. */
    s.ok = 8;
    progress_tick(p, &s, 101.5, &err);
    char *m2 = slurp(path);
    CHECK(m2 && !strcmp(m, m2));
    free(m2);
    progress_tick(p, &s, 102.0, &err);
    m2 = slurp(path);
    CHECK_CONTAINS(m2, "borg_jobs_total{status=\"ok\"} 8\n");
    free(m2);
    free(m);

    /* The final rewrite: draining, total unknown (no borg_jobs_in_file), the state in status.json. */
    s.stopping = 1;
    s.jobs_total = -1;
    CHECK(progress_finish(p, &s, 103, 0, &err) == BORG_OK);
    m = slurp(path);
    CHECK_CONTAINS(m, "borg_draining 1\n");
    CHECK(m && !strstr(m, "borg_jobs_in_file"));
    free(m);
    CHECK(!exists(tmp));
    DIR *d = opendir(run_dir);
    int n_files = 0, others = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        n_files++;
        others += strcmp(e->d_name, "status.json") != 0;
    }
    if (d)
        closedir(d);
    CHECKF(n_files == 1 && others == 0, "run dir holds %d files, %d not status.json", n_files, others);
    progress_free(p);

    /* A path the run could never write fails at start, naming it. */
    progress_options bad = {.progress_s = 30, .metrics_path = "/nonexistent-dir/m.prom", .tty = 0};
    CHECK(progress_create(&bad, &p, &err) == BORG_EIO);
    CHECK_CONTAINS(err.msg, "/nonexistent-dir/m.prom");
    CHECK(p == NULL);
}

static cJSON *status_json(const char *run_dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/status.json", run_dir);
    char *t = slurp(path);
    cJSON *o = t ? cJSON_Parse(t) : NULL;
    free(t);
    return o;
}

static double jnum(const cJSON *o, const char *path)
{
    char key[64];
    const cJSON *x = o;
    for (const char *p = path; x && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        x = cJSON_GetObjectItemCaseSensitive(x, key);
        p += n + (p[n] == '.');
    }
    return cJSON_IsNumber(x) ? x->valuedouble : -12345;
}

static void test_status(void)
{
    char run_dir[600];
    snprintf(run_dir, sizeof run_dir, "%s/status-run", g_dir);
    borg_progress *p;
    borg_err err = {0};
    progress_options o = {.progress_s = 30, .run_dir = run_dir, .quiet = 1, .tty = 0};
    CHECK(progress_create(&o, &p, &err) == BORG_OK);
    /* 20 s at 1 job/s: a rate, and an ETA. */
    for (int i = 0; i <= 20; i++) {
        progress_sample s = at(i, 100);
        s.jobs_resumed = 10;
        s.n_stages = 2;
        s.stage_busy_s = k_busy;
        s.stage_rss_mib = k_rss;
        s.stage_host = k_hosts;
        progress_tick(p, &s, 50 + i, &err);
    }
    cJSON *o1 = status_json(run_dir);
    CHECK(o1 != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o1, "state")), "running");
    time_t now = time(NULL);
    CHECKF(jnum(o1, "updated") > now - 60 && jnum(o1, "updated") < now + 60, "updated %f", jnum(o1, "updated"));
    CHECK(jnum(o1, "elapsed_s") == 20);
    CHECK(jnum(o1, "jobs.total") == 100);
    CHECK(jnum(o1, "jobs.done") == 30);
    CHECK(jnum(o1, "jobs.ok") == 20);
    CHECK(jnum(o1, "jobs.error") == 0 && jnum(o1, "jobs.timeout") == 0 && jnum(o1, "jobs.cancelled") == 0);
    CHECK(jnum(o1, "jobs.resumed") == 10);
    CHECK(jnum(o1, "generated_tokens") == 2000);
    CHECKF(jnum(o1, "tokens_per_s") > 99.9 && jnum(o1, "tokens_per_s") < 100.1, "tokens/s %f",
           jnum(o1, "tokens_per_s"));
    CHECKF(jnum(o1, "eta_s") > 69.9 && jnum(o1, "eta_s") < 70.1, "eta %f", jnum(o1, "eta_s"));
    CHECK(jnum(o1, "queue_depth") == 4 && jnum(o1, "kv_slots_used") == 8 && jnum(o1, "kv_slots") == 32);
    CHECK(jnum(o1, "recoveries") == 0);
    CHECK(jnum(o1, "pid") == getpid());
    const cJSON *stages = cJSON_GetObjectItem(o1, "stages");
    CHECK(cJSON_GetArraySize(stages) == 2);
    const cJSON *st1 = cJSON_GetArrayItem(stages, 1);
    CHECK(jnum(st1, "rank") == 2 && jnum(st1, "busy_s") == 11.25 && jnum(st1, "peak_rss_mib") == 256.5);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(st1, "host")), k_hosts[1]);
    cJSON_Delete(o1);

    /* borg-infer status prints it. */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(status_show(run_dir, out, &err) == BORG_OK);
    fflush(out);
    CHECK_CONTAINS(text, "running");
    CHECK_CONTAINS(text, "30 done of 100 (30.0%), 70 left");
    CHECK_CONTAINS(text, "20 ok, 0 error, 0 timeout, 0 cancelled, 10 resumed");
    CHECK_CONTAINS(text, "100.0 tokens/s");
    CHECK_CONTAINS(text, "ETA 1m10s");
    CHECK_CONTAINS(text, "stage rank 1 on node-a: busy 12.5 s");
    CHECK_CONTAINS(text, "peak memory 256.5 MiB");
    CHECK_CONTAINS(text, "written 0s ago");
    CHECK(!strstr(text, "may have died"));
    fclose(out);
    free(text);

    /* The final state; ETA unknown when the total is. */
    progress_sample s = at(21, -1);
    CHECK(progress_finish(p, &s, 71, 1, &err) == BORG_OK);
    progress_free(p);
    o1 = status_json(run_dir);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o1, "state")), "finished");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(o1, "eta_s")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(o1, "jobs"), "total")));
    cJSON_Delete(o1);
    text = NULL;
    out = open_memstream(&text, &len);
    CHECK(status_show(run_dir, out, &err) == BORG_OK);
    fflush(out);
    CHECK_CONTAINS(text, "finished");
    CHECK_CONTAINS(text, "total not known");
    CHECK(!strstr(text, "ETA"));
    fclose(out);
    free(text);

    /* A running run's file that has not been rewritten for long. */
    char path[700];
    snprintf(path, sizeof path, "%s/status.json", run_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"state\":\"running\",\"updated\":%lld,\"jobs\":{\"done\":1}}\n", (long long)time(NULL) - 600);
    fclose(f);
    text = NULL;
    out = open_memstream(&text, &len);
    CHECK(status_show(run_dir, out, &err) == BORG_OK);
    fflush(out);
    CHECK_CONTAINS(text, "may have died");
    fclose(out);
    free(text);

    /* Not a status file; no file at all. */
    f = fopen(path, "w");
    fputs("{\"hello\": 1}\n", f);
    fclose(f);
    text = NULL;
    out = open_memstream(&text, &len);
    CHECK(status_show(run_dir, out, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "status.json");
    CHECK_CONTAINS(err.msg, "not a borg-infer status file");
    unlink(path);
    CHECK(status_show(run_dir, out, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "no status file");
    fflush(out);
    CHECK(len == 0);
    fclose(out);
    free(text);
}

/* The jobs-per-second window: a run that slows down shows it in its ETA within a minute. */
static void test_window(void)
{
    char run_dir[600];
    snprintf(run_dir, sizeof run_dir, "%s/window-run", g_dir);
    borg_progress *p;
    borg_err err = {0};
    progress_options o = {.progress_s = 30, .run_dir = run_dir, .quiet = 1, .tty = 0};
    CHECK(progress_create(&o, &p, &err) == BORG_OK);
    /* 100 s at 10 jobs/s, then 30 s at 1 job/s: the ETA follows the recent rate, not the run's average. */
    progress_sample s = {.jobs_total = 100000};
    for (int i = 0; i <= 130; i++) {
        s.ok = i <= 100 ? 10 * i : 1000 + (i - 100);
        s.elapsed_s = i;
        progress_tick(p, &s, i, &err);
    }
    cJSON *o1 = status_json(run_dir);
    double left = 100000 - 1030;
    CHECKF(jnum(o1, "eta_s") > left * 0.95 && jnum(o1, "eta_s") < left * 1.05, "eta %f, want about %f",
           jnum(o1, "eta_s"), left);
    cJSON_Delete(o1);
    progress_free(p);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

static int write_metrics(const char *path)
{
    borg_progress *p;
    borg_err err = {0};
    progress_options o = {.progress_s = 30, .metrics_path = path, .quiet = 1, .tty = 0};
    if (progress_create(&o, &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    fixed_latencies(p);
    progress_sample s = fixed();
    borg_status st = progress_finish(p, &s, 10, 1, &err);
    if (st)
        fprintf(stderr, "%s\n", err.msg);
    progress_free(p);
    return st ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-metrics"))
        return write_metrics(argv[2]);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/test_progress.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror(g_dir);
        return 1;
    }
    test_tty();
    test_plain();
    test_quiet();
    test_metrics();
    test_status();
    test_window();
    nftw(g_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_report();
}
