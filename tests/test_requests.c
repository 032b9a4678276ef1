/* Requests: the ring of open requests, admission checks, and the stop
 * rules applied token by token (stop strings across tokens and inside
 * UTF-8 characters, EOG, max_tokens, a full context). */
#define _GNU_SOURCE /* strdup */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "borg/requests.h"
#include "check.h"

/* A hand-made job, its strings on the heap as job_free expects. stops is
 * a NULL-terminated list (or NULL). */
static borg_job make_job(long line, int32_t max_tokens, const char *const *stops)
{
    borg_job job;
    memset(&job, 0, sizeof job);
    job.line = line;
    job.index = line - 1;
    job.shape = JOB_SIMPLE;
    job.id = strdup("job");
    job.prompt = strdup("hello");
    job.max_tokens = max_tokens;
    for (int i = 0; stops && stops[i] && i < JOB_MAX_STOP; i++)
        job.stop[job.n_stop++] = strdup(stops[i]);
    return job;
}

/* Opens request num of r with a fresh job and a 4-token prompt admitted. */
static borg_request *open_req(borg_requests *r, int64_t num, int32_t max_tokens, const char *const *stops)
{
    borg_err err = {0};
    borg_job job = make_job(num + 1, max_tokens, stops);
    borg_request *q = NULL;
    CHECK(requests_open(r, num, &job, 1.0, &q, &err) == BORG_OK);
    CHECK(q && request_admit(q, 4, 64, &err) == BORG_OK);
    return q;
}

static req_verdict feed(borg_request *q, const char *piece, double now)
{
    borg_err err = {0};
    req_verdict v = (req_verdict)-1;
    CHECK(request_token(q, piece, piece ? strlen(piece) : 0, 0, 0, -0.5f, now, &v, &err) == BORG_OK);
    return v;
}

static void test_ring(void)
{
    borg_requests *r;
    borg_err err = {0};
    CHECK(requests_create(0, &r, &err) == BORG_EINTERNAL);
    CHECK(requests_create(3, &r, &err) == BORG_OK);
    CHECK(requests_cap(r) == 3 && requests_n_open(r) == 0);
    CHECK(requests_get(r, 0) == NULL);
    CHECK(requests_can_open(r, 0) && !requests_can_open(r, -1));

    for (int64_t n = 0; n < 3; n++) {
        borg_job job = make_job(n + 1, 8, NULL);
        borg_request *q;
        CHECK(requests_open(r, n, &job, 10.0 + (double)n, &q, &err) == BORG_OK);
        CHECK(job.id == NULL && job.prompt == NULL); /* moved */
        CHECK(q->num == n && q->open && q->t_read == 10.0 + (double)n && q->job.line == n + 1);
    }
    CHECK(requests_n_open(r) == 3);
    CHECK(!requests_can_open(r, 3)); /* slot 0 holds request 0 */
    borg_job busy = make_job(4, 8, NULL);
    CHECK(requests_open(r, 3, &busy, 0, NULL, &err) == BORG_EINTERNAL);
    CHECK(busy.id != NULL); /* not taken on failure */
    CHECK(requests_get(r, 3) == NULL);

    /* Wrap-around: closing request 0 lets request 3 take its slot, and 0 is then stale. */
    requests_close(r, 0);
    CHECK(requests_n_open(r) == 2 && requests_can_open(r, 3));
    CHECK(requests_open(r, 3, &busy, 20.0, NULL, &err) == BORG_OK);
    CHECK(requests_get(r, 0) == NULL);
    CHECK(requests_get(r, 3) && requests_get(r, 3)->num == 3);
    CHECK(requests_get(r, 6) == NULL); /* same slot, never opened */
    requests_close(r, 0);              /* stale: ignored */
    CHECK(requests_n_open(r) == 3);

    /* Iteration sees every open request once; closing while iterating is fine. */
    int64_t cursor = 0, seen = 0, sum = 0;
    for (borg_request *q; (q = requests_next(r, &cursor));) {
        seen++;
        sum += q->num;
        if (q->num == 1)
            requests_close(r, 1);
    }
    CHECK(seen == 3 && sum == 1 + 2 + 3);
    CHECK(requests_n_open(r) == 2 && requests_get(r, 1) == NULL);
    cursor = 0;
    seen = 0;
    while (requests_next(r, &cursor))
        seen++;
    CHECK(seen == 2);

    /* Closing everything during iteration empties the ring. */
    cursor = 0;
    for (borg_request *q; (q = requests_next(r, &cursor));)
        requests_close(r, q->num);
    CHECK(requests_n_open(r) == 0);
    cursor = 0;
    CHECK(requests_next(r, &cursor) == NULL);

    /* Left open on purpose: requests_free releases them (leak-checked under BORG_SANITIZE). */
    open_req(r, 7, 8, NULL);
    open_req(r, 8, 8, NULL);
    requests_free(r);
    requests_free(NULL);
}

static void test_admit(void)
{
    borg_requests *r;
    borg_err err = {0};
    CHECK(requests_create(4, &r, &err) == BORG_OK);
    borg_job job = make_job(17, 8, NULL);
    borg_request *q;
    CHECK(requests_open(r, 0, &job, 0, &q, &err) == BORG_OK);

    borg_err why = {0};
    CHECK(request_admit(q, 0, 16, &why) == BORG_EINPUT);
    CHECK(why.code == BORG_EINPUT);
    CHECK_CONTAINS(why.msg, "line 17");
    CHECK_CONTAINS(why.msg, "no tokens");

    memset(&why, 0, sizeof why);
    CHECK(request_admit(q, 16, 16, &why) == BORG_EINPUT);
    CHECK_STR(why.msg, "line 17: the prompt is 16 tokens; the context holds 16 (prompt plus at least one "
                       "generated token)");
    CHECK(request_admit(q, 100, 16, &why) == BORG_EINPUT);
    CHECK(q->n_prompt == 0 && q->prompt_lp == NULL);

    CHECK(request_admit(q, 15, 16, &why) == BORG_OK); /* slot_ctx - 1: room for one generated token */
    CHECK(q->n_prompt == 15 && q->prompt_lp == NULL);

    /* With prompt_logprobs: NaN-filled scores, one per prompt token. */
    borg_job lpjob = make_job(18, 8, NULL);
    lpjob.prompt_logprobs = 1;
    CHECK(requests_open(r, 1, &lpjob, 0, &q, &err) == BORG_OK);
    CHECK(request_admit(q, 5, 16, &why) == BORG_OK);
    CHECK(q->prompt_lp != NULL);
    int all_nan = 1;
    for (int i = 0; i < 5; i++)
        all_nan &= isnan(q->prompt_lp[i]) != 0;
    CHECK(all_nan);

    request_score(q, 0, -1.5f);
    request_score(q, 4, -0.25f);
    request_score(q, 5, -9.0f);  /* past the prompt: ignored */
    request_score(q, -1, -9.0f); /* ignored */
    CHECK(q->prompt_lp[0] == -1.5f && q->prompt_lp[4] == -0.25f && isnan(q->prompt_lp[1]));
    request_score(q, 0, -2.0f); /* a replay scores again: latest kept */
    CHECK(q->prompt_lp[0] == -2.0f);

    /* Without prompt_logprobs scoring is ignored. */
    request_score(requests_get(r, 0), 0, -1.0f);
    CHECK(requests_get(r, 0)->prompt_lp == NULL);
    requests_free(r);
}

static void test_check_ids(void)
{
    borg_requests *r;
    borg_err err = {0};
    CHECK(requests_create(2, &r, &err) == BORG_OK);
    borg_job job = make_job(5, 8, NULL);
    job.prompt_ids = malloc(sizeof(int32_t) * 3);
    job.prompt_ids[0] = 0;
    job.prompt_ids[1] = 99;
    job.prompt_ids[2] = 42;
    job.n_prompt_ids = 3;
    borg_request *q;
    CHECK(requests_open(r, 0, &job, 0, &q, &err) == BORG_OK);

    borg_err why = {0};
    CHECK(request_check_ids(q, 100, &why) == BORG_OK);
    CHECK(request_check_ids(q, 99, &why) == BORG_EINPUT);
    CHECK_STR(why.msg, "line 5: token id 99 is outside the vocabulary (0..98)");
    q->job.prompt_ids[1] = -3;
    CHECK(request_check_ids(q, 100, &why) == BORG_EINPUT);
    CHECK_CONTAINS(why.msg, "line 5");
    CHECK_CONTAINS(why.msg, "-3");

    borg_job plain = make_job(6, 8, NULL); /* no ids: nothing to check */
    CHECK(requests_open(r, 1, &plain, 0, &q, &err) == BORG_OK);
    CHECK(request_check_ids(q, 1, &why) == BORG_OK);
    requests_free(r);
}

static void test_stops(void)
{
    borg_requests *r;
    borg_err err = {0};
    CHECK(requests_create(16, &r, &err) == BORG_OK);

    /* A stop string spanning three tokens: the text is cut where it starts. */
    const char *const end[] = {"<END>", NULL};
    borg_request *q = open_req(r, 0, 100, end);
    CHECK(feed(q, "Hi <E", 2) == REQ_GOES_ON);
    CHECK(feed(q, "N", 3) == REQ_GOES_ON);
    CHECK(feed(q, "D> more", 4) == REQ_STOP);
    CHECK_STR(q->text, "Hi ");
    CHECK(q->text_len == 3 && q->n_gen == 3);

    /* A stop split inside a UTF-8 character: "é" is C3 A9 in two byte tokens. */
    const char *const e_acute[] = {"\xC3\xA9", NULL};
    q = open_req(r, 1, 100, e_acute);
    CHECK(feed(q, "caf", 1) == REQ_GOES_ON);
    CHECK(feed(q, "\xC3", 1) == REQ_GOES_ON); /* text ends inside a UTF-8 sequence for now */
    CHECK(q->text_len == 4 && (unsigned char)q->text[3] == 0xC3);
    CHECK(feed(q, "\xA9", 1) == REQ_STOP);
    CHECK_STR(q->text, "caf");

    /* Two stops appearing in one token: the one that starts earliest wins, whatever the list order. */
    const char *const two[] = {"world", "lo w", NULL};
    q = open_req(r, 2, 100, two);
    CHECK(feed(q, "hel", 1) == REQ_GOES_ON);
    CHECK(feed(q, "lo world", 1) == REQ_STOP);
    CHECK_STR(q->text, "hel");

    /* A stop in the very first token. */
    const char *const stop_x[] = {"X", NULL};
    q = open_req(r, 3, 100, stop_x);
    CHECK(feed(q, "X", 7) == REQ_STOP);
    CHECK(q->text_len == 0 && q->text && q->text[0] == '\0' && q->n_gen == 1 && q->t_first == 7);

    /* A stop string inside one long piece, with text on both sides. */
    const char *const nl[] = {"\n\n", NULL};
    q = open_req(r, 4, 100, nl);
    CHECK(feed(q, "first", 1) == REQ_GOES_ON);
    CHECK(feed(q, " paragraph ends here.\n\nSecond paragraph", 1) == REQ_STOP);
    CHECK_STR(q->text, "first paragraph ends here.");

    /* A stop string longer than any one piece, arriving a byte at a time. */
    const char *const longstop[] = {"STOPHERE", NULL};
    q = open_req(r, 5, 100, longstop);
    const char *bytes = "abSTOPHER";
    for (const char *p = bytes; *p; p++) {
        char one[2] = {*p, 0};
        CHECK(feed(q, one, 1) == REQ_GOES_ON);
    }
    CHECK(feed(q, "E", 1) == REQ_STOP);
    CHECK_STR(q->text, "ab");

    /* A near miss: a prefix of the stop string that never completes stays in the text. */
    q = open_req(r, 6, 100, end);
    CHECK(feed(q, "<EN", 1) == REQ_GOES_ON);
    CHECK(feed(q, "X<END", 1) == REQ_GOES_ON);
    CHECK(feed(q, ">", 1) == REQ_STOP);
    CHECK_STR(q->text, "<ENX");

    /* An empty stop string never matches. */
    const char *const empty[] = {"", NULL};
    q = open_req(r, 7, 3, empty);
    CHECK(feed(q, "a", 1) == REQ_GOES_ON);
    CHECK(feed(q, "", 1) == REQ_GOES_ON); /* a special token with no text */
    CHECK(q->n_gen == 2 && q->text_len == 1);
    requests_free(r);
}

static void test_long_text(void)
{
    borg_requests *r;
    borg_err err = {0};
    CHECK(requests_create(2, &r, &err) == BORG_OK);

    /* A 5000-byte piece is kept whole. */
    const char *const end[] = {"<END>", NULL};
    borg_request *q = open_req(r, 0, 1000, end);
    char *big = malloc(5001);
    for (int i = 0; i < 5000; i++)
        big[i] = (char)('a' + i % 26);
    big[5000] = '\0';
    CHECK(feed(q, big, 1) == REQ_GOES_ON);
    CHECK(q->text_len == 5000 && !memcmp(q->text, big, 5000) && q->text[5000] == '\0');
    CHECK(q->text_cap >= 5001);
    CHECK(feed(q, big, 1) == REQ_GOES_ON);
    CHECK(q->text_len == 10000 && !memcmp(q->text + 5000, big, 5000));

    /* Growth doubles: many small tokens need few reallocations (the capacity is a power-of-two multiple). */
    borg_request *g = open_req(r, 1, -1, end);
    size_t caps = 0, last_cap = 0;
    for (int i = 0; i < 20000; i++) {
        CHECK(feed(g, "xyz", 1) == REQ_GOES_ON);
        if (g->text_cap != last_cap) {
            caps++;
            last_cap = g->text_cap;
        }
    }
    CHECK(g->text_len == 60000 && g->n_gen == 20000);
    CHECKF(caps <= 10, "%zu capacity changes for 60000 bytes", caps);
    CHECK(feed(g, "<END>", 1) == REQ_STOP && g->text_len == 60000);
    free(big);
    requests_free(r);
}

static void test_eog_and_length(void)
{
    borg_requests *r;
    borg_err err = {0};
    req_verdict v;
    CHECK(requests_create(8, &r, &err) == BORG_OK);

    /* EOG stops, and its piece is not text. */
    borg_request *q = open_req(r, 0, 100, NULL);
    CHECK(feed(q, "ok", 5) == REQ_GOES_ON);
    CHECK(request_token(q, "</s>", 4, 1, 0, -0.5f, 6, &v, &err) == BORG_OK && v == REQ_STOP);
    CHECK(q->n_gen == 2);
    CHECK_STR(q->text, "ok");

    /* With ignore_eos it goes on, its piece kept like any other. */
    borg_job job = make_job(2, 100, NULL);
    job.ignore_eos = 1;
    CHECK(requests_open(r, 1, &job, 0, &q, &err) == BORG_OK);
    CHECK(request_admit(q, 4, 64, &err) == BORG_OK);
    CHECK(feed(q, "ok", 5) == REQ_GOES_ON);
    CHECK(request_token(q, "</s>", 4, 1, 0, -0.5f, 6, &v, &err) == BORG_OK && v == REQ_GOES_ON);
    CHECK_STR(q->text, "ok</s>");

    /* max_tokens: the third token ends it with "length". */
    q = open_req(r, 2, 3, NULL);
    CHECK(feed(q, "a", 5) == REQ_GOES_ON);
    CHECK(feed(q, "b", 6) == REQ_GOES_ON);
    CHECK(feed(q, "c", 7) == REQ_LENGTH);
    CHECK_STR(q->text, "abc");
    CHECK(q->n_gen == 3);

    /* t_first is set by the first token only. */
    CHECK(q->t_first == 5);

    /* A stop on the last allowed token is a stop, not a length. */
    const char *const stop_c[] = {"c", NULL};
    q = open_req(r, 3, 3, stop_c);
    CHECK(feed(q, "a", 1) == REQ_GOES_ON);
    CHECK(feed(q, "b", 1) == REQ_GOES_ON);
    CHECK(feed(q, "c", 1) == REQ_STOP);

    /* max_tokens -1 runs until the context is full. */
    q = open_req(r, 4, -1, NULL);
    for (int i = 0; i < 500; i++)
        CHECK(feed(q, "t", 1) == REQ_GOES_ON);
    CHECK(request_token(q, "t", 1, 0, 1, -0.5f, 2, &v, &err) == BORG_OK && v == REQ_LENGTH);
    CHECK(q->n_gen == 501 && q->text_len == 501);

    /* context_full gives "length" even with max_tokens far away. */
    q = open_req(r, 5, 100, NULL);
    CHECK(request_token(q, "z", 1, 0, 1, -0.5f, 2, &v, &err) == BORG_OK && v == REQ_LENGTH);
    CHECK_STR(q->text, "z");

    /* A clock that reads 0 at the first token still sets t_first once. */
    q = open_req(r, 6, 100, NULL);
    CHECK(feed(q, "a", 0) == REQ_GOES_ON);
    CHECK(feed(q, "b", 9) == REQ_GOES_ON);
    CHECK(q->t_first == 0);

    /* max_tokens 0 only scores: a token is not counted. */
    q = open_req(r, 7, 0, NULL);
    CHECK(feed(q, "a", 3) == REQ_LENGTH);
    CHECK(q->n_gen == 0 && q->text_len == 0 && q->t_first == 0);
    requests_free(r);
}

static void test_overdue(void)
{
    borg_requests *r;
    borg_err err = {0};
    CHECK(requests_create(2, &r, &err) == BORG_OK);
    borg_job job = make_job(1, 8, NULL);
    job.timeout_s = 2.0;
    borg_request *q;
    CHECK(requests_open(r, 0, &job, 1000.0, &q, &err) == BORG_OK);
    CHECK(!request_overdue(q, 1000.0));
    CHECK(!request_overdue(q, 3000.0)); /* exactly the timeout: not yet past */
    CHECK(request_overdue(q, 3000.5));

    borg_job none = make_job(2, 8, NULL); /* timeout_s 0: never */
    CHECK(requests_open(r, 1, &none, 0.0, &q, &err) == BORG_OK);
    CHECK(!request_overdue(q, 1e12));
    requests_free(r);
}

/* Embeddings: rows in position order are pooled (mean or last) and
 * L2-normalized once the prompt is in; rows sent again by a replay are
 * skipped; generated tokens' log-probabilities are kept. */
static void test_embed(void)
{
    borg_requests *r;
    borg_err err = {0};
    CHECK(requests_create(4, &r, &err) == BORG_OK);
    const float rows[4][2] = {{1, 0}, {3, 0}, {0, 4}, {0, 4}}; /* mean (1, 2): normalized (1, 2) / sqrt 5 */
    for (int pool = JOB_POOL_MEAN; pool <= JOB_POOL_LAST; pool++) {
        borg_job job = make_job(1, 0, NULL);
        job.embed = pool;
        borg_request *q;
        CHECK(requests_open(r, pool, &job, 1.0, &q, &err) == BORG_OK && request_admit(q, 4, 64, &err) == BORG_OK);
        CHECK(request_embed_row(q, 1, rows[1], 2, &err) == BORG_OK && q->embed_next == 0); /* out of order: skipped */
        for (int p = 0; p < 3; p++)
            CHECK(request_embed_row(q, p, rows[p], 2, &err) == BORG_OK);
        CHECK(q->embedding == NULL);
        for (int p = 0; p < 3; p++) /* a replay from the start */
            CHECK(request_embed_row(q, p, rows[p], 2, &err) == BORG_OK);
        CHECK(q->embed_next == 3 && request_embed_row(q, 3, rows[3], 2, &err) == BORG_OK && q->embedding);
        if (pool == JOB_POOL_MEAN)
            CHECK(fabsf(q->embedding[0] - 1 / sqrtf(5)) < 1e-6f && fabsf(q->embedding[1] - 2 / sqrtf(5)) < 1e-6f);
        else
            CHECK(q->embedding[0] == 0.0f && q->embedding[1] == 1.0f);
        CHECK(q->dim == 2);
    }
    borg_request *plain = open_req(r, 3, 2, NULL);
    CHECK(request_embed_row(plain, 0, rows[0], 2, &err) == BORG_OK && plain->embedding == NULL && !plain->embed_sum);
    req_verdict v;
    CHECK(request_token(plain, "a", 1, 0, 0, -1.25f, 1, &v, &err) == BORG_OK && v == REQ_GOES_ON);
    CHECK(request_token(plain, "b", 1, 0, 0, -0.5f, 2, &v, &err) == BORG_OK && v == REQ_LENGTH);
    CHECK(plain->n_gen == 2 && plain->gen_lp[0] == -1.25f && plain->gen_lp[1] == -0.5f);
    requests_free(r);
}

int main(void)
{
    test_embed();
    test_ring();
    test_admit();
    test_check_ids();
    test_stops();
    test_long_text();
    test_eog_and_length();
    test_overdue();
    return check_report();
}
