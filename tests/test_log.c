/* The logger: human prefixes per rank and level, what quiet and verbose keep, JSON lines that parse with the
 * right keys in order, types and escapes, a rank per thread, and lines that stay whole when too long or when
 * threads log at once. */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "borg/log.h"
#include "check.h"

static FILE *g_capture;
static char *g_text;
static size_t g_len;

/* Lines go to a memory stream; the logger flushes each line, so the text is there after each call. */
static void capture(int json, int quiet, int verbose)
{
    g_capture = open_memstream(&g_text, &g_len);
    if (!g_capture) {
        perror("open_memstream");
        exit(1);
    }
    log_setup(json, quiet, verbose, g_capture);
}

/* Ends a capture; the caller frees what it returns. */
static char *captured(void)
{
    fclose(g_capture);
    g_capture = NULL;
    log_setup(0, 0, 0, NULL);
    char *t = g_text;
    g_text = NULL;
    return t;
}

static int count_lines(const char *t)
{
    int n = 0;
    for (; *t; t++)
        n += *t == '\n';
    return n;
}

/* Splits t in place into at most max lines (without their newlines); returns how many. */
static int split_lines(char *t, char **lines, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *l = strtok_r(t, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    return n;
}

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int k = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (k < 0)
            return 0;
        p++;
        for (int i = 0; i < k; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return 0;
    }
    return 1;
}

/* The object's keys, in order, joined by commas. */
static void key_order(const cJSON *o, char *out, size_t cap)
{
    out[0] = '\0';
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next) {
        if (out[0])
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, c->string, cap - strlen(out) - 1);
    }
}

static void test_human(void)
{
    capture(0, 0, 0);
    log_msg(LOG_INFO, "hello %d", 1);
    log_msg(LOG_WARN, "careful");
    log_msg(LOG_ERROR, "broken: %s", "disk");
    log_msg(LOG_INFO, "written for fprintf\n");
    log_event(LOG_INFO, "recovered", NULL, LOG_FIELDS(LOG_S("failed", "2"), LOG_I("replayed", 5)),
              "rank(s) %s failed; %d request(s) replayed", "2", 5);
    log_event(LOG_WARN, "slow", "abc", NULL, 0, "took %d s", 9);
    log_set_rank(3);
    log_msg(LOG_INFO, "stage up");
    log_msg(LOG_ERROR, "lost rank 0");
    log_event(LOG_ERROR, "error", "j-7", NULL, 0, "bad input");
    log_set_rank(0);
    char *t = captured();
    CHECK_STR(t, "borg-infer: hello 1\n"
                 "borg-infer: warning: careful\n"
                 "borg-infer: error: broken: disk\n"
                 "borg-infer: written for fprintf\n"
                 "borg-infer: rank(s) 2 failed; 5 request(s) replayed\n"
                 "borg-infer: warning: [job abc] took 9 s\n"
                 "borg-infer: rank 3: stage up\n"
                 "borg-infer: rank 3: error: lost rank 0\n"
                 "borg-infer: rank 3: error: [job j-7] bad input\n");
    free(t);
}

static void test_levels(void)
{
    capture(0, 1, 0); /* quiet */
    CHECK(!log_enabled(LOG_INFO) && !log_enabled(LOG_DEBUG) && log_enabled(LOG_WARN) && log_enabled(LOG_ERROR));
    log_msg(LOG_DEBUG, "d");
    log_msg(LOG_INFO, "i");
    log_msg(LOG_WARN, "w");
    log_msg(LOG_ERROR, "e");
    char *t = captured();
    CHECK_STR(t, "borg-infer: warning: w\nborg-infer: error: e\n");
    free(t);

    capture(0, 1, 1); /* quiet wins over verbose */
    log_msg(LOG_DEBUG, "d");
    log_msg(LOG_INFO, "i");
    t = captured();
    CHECK_STR(t, "");
    free(t);

    capture(0, 0, 0);
    CHECK(!log_enabled(LOG_DEBUG) && log_enabled(LOG_INFO));
    log_msg(LOG_DEBUG, "d");
    log_msg(LOG_INFO, "i");
    t = captured();
    CHECK_STR(t, "borg-infer: i\n");
    free(t);

    capture(0, 0, 1); /* verbose */
    CHECK(log_enabled(LOG_DEBUG));
    log_msg(LOG_DEBUG, "d");
    log_msg(LOG_INFO, "i");
    t = captured();
    CHECK_STR(t, "borg-infer: d\nborg-infer: i\n");
    free(t);
}

static const char TRICKY[] = "say \"hi\" \\ back\nnext\tcol\x01 caf\xc3\xa9";

static void test_json(void)
{
    capture(1, 0, 0);
    log_event(LOG_INFO, "recovered", NULL,
              LOG_FIELDS(LOG_S("failed", "2"), LOG_I("replayed", 5), LOG_F("took_s", 0.12),
                         LOG_I("big", INT64_C(1) << 40), LOG_I("neg", -3), LOG_B("ok", 7), LOG_B("bad", 0)),
              "rank(s) %s failed; %d request(s) replayed", "2", 5);
    log_event(LOG_WARN, "odd", "job-1",
              LOG_FIELDS(LOG_S("text", TRICKY), LOG_F("inf", INFINITY), LOG_F("nan", NAN), LOG_S("none", NULL)),
              "msg %s", TRICKY);
    log_msg(LOG_ERROR, "plain\n");
    char *t = captured();
    CHECK(count_lines(t) == 3);
    /* The escapes as written, before a parser undoes them. */
    CHECK_CONTAINS(t, "say \\\"hi\\\" \\\\ back\\nnext\\tcol\\u0001 caf\xc3\xa9");
    char *lines[8];
    int n = split_lines(t, lines, 8);
    CHECK(n == 3);
    for (int i = 0; i < n; i++)
        CHECKF(valid_utf8(lines[i]), "line %d is not UTF-8", i);
    char keys[512];

    cJSON *a = n > 0 ? cJSON_Parse(lines[0]) : NULL;
    CHECKF(a != NULL, "line 0 does not parse: %s", n > 0 ? lines[0] : "");
    key_order(a, keys, sizeof keys);
    CHECK_STR(keys, "time,level,rank,event,failed,replayed,took_s,big,neg,ok,bad,msg");
    const cJSON *tm = cJSON_GetObjectItem(a, "time");
    CHECK(cJSON_IsNumber(tm) && fabs(tm->valuedouble - (double)time(NULL)) < 60);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "level")), "info");
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(a, "rank")) && cJSON_GetObjectItem(a, "rank")->valueint == 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "event")), "recovered");
    CHECK(cJSON_GetObjectItem(a, "job") == NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "failed")), "2");
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(a, "replayed")) && cJSON_GetObjectItem(a, "replayed")->valueint == 5);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(a, "took_s")) && cJSON_GetObjectItem(a, "took_s")->valuedouble == 0.12);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(a, "big")) &&
          cJSON_GetObjectItem(a, "big")->valuedouble == 1099511627776.0);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(a, "neg")) && cJSON_GetObjectItem(a, "neg")->valueint == -3);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(a, "ok")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(a, "bad")));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "msg")), "rank(s) 2 failed; 5 request(s) replayed");
    CHECK_CONTAINS(lines[0], "\"took_s\":0.12,");
    cJSON_Delete(a);

    cJSON *b = n > 1 ? cJSON_Parse(lines[1]) : NULL;
    CHECKF(b != NULL, "line 1 does not parse: %s", n > 1 ? lines[1] : "");
    key_order(b, keys, sizeof keys);
    CHECK_STR(keys, "time,level,rank,event,job,text,inf,nan,none,msg");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "level")), "warning");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "job")), "job-1");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "text")), TRICKY);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(b, "inf")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(b, "nan")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(b, "none")));
    char want[128];
    snprintf(want, sizeof want, "msg %s", TRICKY);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "msg")), want);
    cJSON_Delete(b);

    cJSON *c = n > 2 ? cJSON_Parse(lines[2]) : NULL;
    CHECKF(c != NULL, "line 2 does not parse: %s", n > 2 ? lines[2] : "");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "level")), "error");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "event")), "message");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "msg")), "plain");
    cJSON_Delete(c);
    free(t);
}

static void *rank5_thread(void *arg)
{
    (void)arg;
    log_set_rank(5);
    log_event(LOG_INFO, "stage_ready", NULL, NULL, 0, "from the stage thread");
    return NULL;
}

static int rank_of(const char *line)
{
    cJSON *o = cJSON_Parse(line);
    const cJSON *r = cJSON_GetObjectItem(o, "rank");
    int rank = cJSON_IsNumber(r) ? r->valueint : -1;
    cJSON_Delete(o);
    return rank;
}

static void test_thread_rank(void)
{
    capture(1, 0, 0);
    log_msg(LOG_INFO, "before");
    pthread_t th;
    CHECK(pthread_create(&th, NULL, rank5_thread, NULL) == 0);
    pthread_join(th, NULL);
    log_msg(LOG_INFO, "after");
    char *t = captured();
    char *lines[8];
    int n = split_lines(t, lines, 8);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(rank_of(lines[0]) == 0);
        CHECK(rank_of(lines[1]) == 5);
        CHECK(rank_of(lines[2]) == 0);
        CHECK_CONTAINS(lines[1], "\"event\":\"stage_ready\"");
    }
    free(t);
}

enum { N_THREADS = 4, PER_THREAD = 200 };

static void *chatty_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    log_set_rank(id + 1);
    for (int i = 0; i < PER_THREAD; i++)
        log_event(LOG_INFO, "tick", NULL, LOG_FIELDS(LOG_I("i", i), LOG_S("pad", TRICKY)), "thread %d line %d %s", id,
                  i, TRICKY);
    return NULL;
}

/* Lines from threads never interleave: each parses on its own. */
static void test_concurrent(void)
{
    capture(1, 0, 0);
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, chatty_thread, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = captured();
    static char *lines[N_THREADS * PER_THREAD + 1];
    int n = split_lines(t, lines, N_THREADS * PER_THREAD + 1), bad = 0;
    CHECK(n == N_THREADS * PER_THREAD);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(lines[i]);
        bad += !o || !cJSON_IsNumber(cJSON_GetObjectItem(o, "i"));
        cJSON_Delete(o);
    }
    CHECKF(bad == 0, "%d of %d lines broken", bad, n);
    free(t);
}

/* Too long for a line: still one line, valid JSON and UTF-8, the text cut with "...". */
static void test_long(void)
{
    enum { LONG = 10000 };
    static char big[LONG + 1], accents[LONG + 1], shifted[LONG + 16];
    memset(big, 'x', LONG);
    for (int i = 0; i + 1 < LONG; i += 2)
        memcpy(accents + i, "\xc3\xa9", 2);

    for (int odd = 0; odd < 8; odd++) {
        /* Offsets so that the cut falls at each place in a character or an escape. */
        snprintf(shifted, sizeof shifted, "%.*s%s", odd, "aaaaaaaa", accents);
        capture(1, 0, 0);
        log_event(LOG_INFO, "long", "j", NULL, 0, "%.*s%s", odd, "\"\"\"\"\"\"\"\"", big);
        log_event(LOG_INFO, "long", "j", NULL, 0, "%.*s%s", odd, "aaaaaaaa", accents);
        log_event(LOG_INFO, "long", "j", LOG_FIELDS(LOG_S("big", shifted), LOG_I("after", 1)), "%s", big + odd);
        log_event(LOG_INFO, "long", "j", LOG_FIELDS(LOG_S("big", big + odd), LOG_I("after", 1)), "short");
        char *t = captured();
        char *lines[8];
        int n = split_lines(t, lines, 8);
        CHECKF(n == 4, "offset %d: %d lines", odd, n);
        for (int i = 0; i < n; i++) {
            CHECKF(strlen(lines[i]) < 4096, "offset %d line %d: %zu bytes", odd, i, strlen(lines[i]));
            CHECKF(valid_utf8(lines[i]), "offset %d line %d is not UTF-8", odd, i);
            cJSON *o = cJSON_Parse(lines[i]);
            CHECKF(o != NULL, "offset %d line %d does not parse", odd, i);
            const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(o, "msg"));
            CHECK(msg != NULL);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "job")), "j");
            if (msg && i < 3) {
                /* A long field leaves the sentence its reserve of 256 bytes. */
                size_t len = strlen(msg), least = i == 2 ? 250 : 3000;
                CHECKF(len > least && !strcmp(msg + len - 3, "..."), "offset %d line %d: msg of %zu bytes", odd, i,
                       len);
            }
            if (i == 2) {
                const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, "big"));
                CHECK(s && strlen(s) > 3000 && !strcmp(s + strlen(s) - 3, "..."));
                CHECK(cJSON_GetObjectItem(o, "after") == NULL); /* no room left for it */
            }
            if (i == 3) {
                CHECK_STR(msg, "short");
                const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, "big"));
                CHECK(s && strlen(s) > 3000 && !strcmp(s + strlen(s) - 3, "..."));
            }
            cJSON_Delete(o);
        }
        free(t);
    }

    capture(0, 0, 0);
    log_msg(LOG_ERROR, "%s", big);
    log_event(LOG_INFO, "long", big, NULL, 0, "after a long job id");
    char *t = captured();
    CHECK(count_lines(t) == 2);
    CHECK(!strncmp(t, "borg-infer: error: xxx", 22));
    char *nl = strchr(t, '\n');
    CHECK(nl && nl - t < 4096 && !strncmp(nl - 3, "...", 3));
    CHECK(nl && strlen(nl + 1) < 4096 && !strncmp(nl + 1, "borg-infer: [job xxx", 20));
    free(t);
}

/* Messages that fill the line exactly, byte by byte: every length parses and is whole or cut with "...". */
static void test_boundary(void)
{
    static char fill[4200];
    memset(fill, 'y', sizeof fill - 1);
    for (int len = 3900; len < 4100; len++) {
        capture(1, 0, 0);
        log_event(LOG_INFO, "edge", NULL, NULL, 0, "%.*s\"", len, fill);
        char *t = captured();
        cJSON *o = cJSON_Parse(t);
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(o, "msg"));
        CHECKF(count_lines(t) == 1 && strlen(t) <= 4096 && msg, "length %d: %zu bytes", len, strlen(t));
        if (msg) {
            size_t m = strlen(msg);
            int whole = m == (size_t)len + 1 && msg[len] == '"';
            CHECKF(whole || (m >= 3 && !strcmp(msg + m - 3, "...")), "length %d: msg of %zu bytes", len, m);
        }
        cJSON_Delete(o);
        free(t);
    }
}

int main(void)
{
    test_human();
    test_levels();
    test_json();
    test_thread_rank();
    test_concurrent();
    test_long();
    test_boundary();
    return check_report();
}
