/* Job parsing: every shape, defaults, and each kind of bad line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/jobs.h"
#include "check.h"

static borg_job parse(const char *text, long line)
{
    borg_job job;
    borg_err err = {0};
    borg_status st = job_parse(text, strlen(text), line, line - 1, &job, &err);
    CHECK(st == BORG_OK);
    return job;
}

static void test_simple(void)
{
    borg_job j = parse("{\"id\":\"a\",\"prompt\":\"Hi\",\"max_tokens\":5,\"temperature\":0.5,\"top_k\":40,"
                       "\"top_p\":0.9,\"min_p\":0.05,\"seed\":7,\"stop\":[\"\\n\",\"END\"],\"priority\":3,"
                       "\"timeout_s\":2.5,\"ignore_eos\":true}",
                       1);
    CHECK(!j.error);
    CHECK(j.shape == JOB_SIMPLE);
    CHECK_STR(j.id, "a");
    CHECK_STR(j.prompt, "Hi");
    CHECK(j.max_tokens == 5);
    CHECK(j.sampling.temperature == 0.5f && j.sampling.top_k == 40 && j.sampling.top_p == 0.9f);
    CHECK(j.sampling.min_p == 0.05f && j.sampling.seed == 7);
    CHECK(j.n_stop == 2);
    CHECK_STR(j.stop[1], "END");
    CHECK(j.priority == 3 && j.timeout_s == 2.5 && j.ignore_eos == 1);
    job_free(&j);

    j = parse("{\"prompt\":\"x\"}", 4);
    CHECK(!j.error);
    CHECK_STR(j.id, "line-4");
    CHECK(j.max_tokens == 256 && j.sampling.temperature == 0.0f);
    CHECK(j.sampling.seed != 0); /* derived from the id, so reruns agree */
    job_free(&j);

    j = parse("{\"id\":12,\"prompt_token_ids\":[1,2,3],\"max_tokens\":0}", 2);
    CHECK(!j.error);
    CHECK_STR(j.id, "12");
    CHECK(j.n_prompt_ids == 3 && j.prompt_ids[2] == 3 && j.max_tokens == 0);
    job_free(&j);
}

static void test_chat_and_openai(void)
{
    borg_job j = parse(
        "{\"id\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},{\"type\":\"text\",\"text\":\"there\"}]}]}",
        1);
    CHECK(!j.error);
    CHECK(j.shape == JOB_CHAT && j.n_messages == 2);
    CHECK_STR(j.messages[1].content, "Hello there");
    job_free(&j);

    j = parse("{\"custom_id\":\"r1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"m\","
              "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_completion_tokens\":9}}",
              1);
    CHECK(!j.error);
    CHECK(j.shape == JOB_OPENAI_CHAT && job_is_openai(&j));
    CHECK_STR(j.id, "r1");
    CHECK_STR(j.model, "m");
    CHECK(j.max_tokens == 9 && j.sampling.temperature == 1.0f);
    job_free(&j);

    j = parse(
        "{\"custom_id\":\"r2\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"model\":\"m\",\"prompt\":\"Once\"}}",
        1);
    CHECK(!j.error);
    CHECK(j.shape == JOB_OPENAI_COMPLETION && j.max_tokens == 16);
    CHECK_STR(j.prompt, "Once");
    job_free(&j);
}

static void expect_error(const char *text, long line, const char *part)
{
    borg_job j = parse(text, line);
    char want[64];
    snprintf(want, sizeof want, "line %ld: ", line);
    CHECK_CONTAINS(j.error, want);
    CHECK_CONTAINS(j.error, part);
    CHECK(j.id != NULL);
    job_free(&j);
}

static void test_errors(void)
{
    expect_error("{\"id\":\"a\",\"prompt\":\"x\"", 3, "invalid JSON");
    expect_error("[1,2]", 4, "JSON object");
    expect_error("{\"id\":\"a\",\"prompt\":\"x\",\"max_tokens\":-1}", 5, "max_tokens");
    expect_error("{\"id\":\"a\",\"prompt\":\"x\",\"max_tokens\":\"ten\"}", 6, "max_tokens must be a number");
    expect_error("{\"id\":\"a\",\"prompt\":\"\"}", 7, "prompt is empty");
    expect_error("{\"id\":\"a\",\"prompt\":42}", 8, "prompt must be a string");
    expect_error("{\"id\":\"a\"}", 9, "exactly one of");
    expect_error("{\"id\":\"a\",\"prompt\":\"x\",\"temperature\":-1}", 10, "temperature");
    expect_error("{\"id\":\"a\",\"prompt\":\"x\",\"top_p\":0}", 11, "top_p");
    expect_error("{\"id\":\"a\",\"prompt\":\"x\",\"stop\":[1]}", 12, "stop");
    expect_error("{\"id\":\"a\",\"messages\":[]}", 13, "messages");
    expect_error("{\"id\":\"a\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 14, "role");
    expect_error("{\"custom_id\":\"r\",\"method\":\"GET\",\"url\":\"/v1/completions\",\"body\":{}}", 15, "POST");
    expect_error("{\"custom_id\":\"r\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{}}", 16, "url");
    expect_error("{\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}", 17, "custom_id");
    expect_error("{\"id\":\"a\",\"prompt_token_ids\":[1,-2]}", 18, "token ids");
    expect_error("{\"id\":\"a\",\"prompt\":\"x\",\"n\":3}", 19, "n = 1");
}

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Reads every job, returning how many and the line of each in lines[]. */
static int read_all(const char *path, long *lines, char **ids, int cap)
{
    job_reader *r;
    borg_err err = {0};
    CHECK(job_reader_open(path, &r, &err) == BORG_OK);
    int n = 0;
    for (;;) {
        borg_job j;
        int done;
        CHECK(job_reader_next(r, &j, &done, &err) == BORG_OK);
        if (done)
            break;
        if (n < cap) {
            lines[n] = j.line;
            ids[n] = strdup(j.error ? "ERROR" : j.id);
        }
        n++;
        job_free(&j);
    }
    job_reader_close(r);
    return n;
}

static void test_reader(void)
{
    long lines[8];
    char *ids[8];
    const char *p = write_file("borg_jobs.jsonl",
                               "{\"id\":\"a\",\"prompt\":\"x\"}\n\n   \n{\"id\":\"b\",\"prompt\":\"y\"}\nnot json\n"
                               "{\"id\":\"c\",\"prompt\":\"z\"}");
    int n = read_all(p, lines, ids, 8);
    CHECK(n == 4);
    CHECK(lines[0] == 1 && lines[1] == 4 && lines[2] == 5 && lines[3] == 6);
    CHECK_STR(ids[1], "b");
    CHECK_STR(ids[2], "ERROR");
    for (int i = 0; i < n && i < 8; i++)
        free(ids[i]);

    p = write_file("borg_jobs.json",
                   "[\n {\"id\":\"a\",\"prompt\":\"x, ] }\"},\n {\"id\":\"b\",\n \"prompt\":\"[y]\"}\n]\n");
    n = read_all(p, lines, ids, 8);
    CHECK(n == 2);
    CHECK(lines[0] == 2 && lines[1] == 3);
    CHECK_STR(ids[0], "a");
    CHECK_STR(ids[1], "b");
    for (int i = 0; i < n && i < 8; i++)
        free(ids[i]);

    p = write_file("borg_jobs_empty.jsonl", "\n\n");
    CHECK(read_all(p, lines, ids, 8) == 0);

    job_reader *r;
    borg_err err = {0};
    CHECK(job_reader_open("/nonexistent/jobs.jsonl", &r, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "/nonexistent/jobs.jsonl");
}

int main(void)
{
    test_simple();
    test_chat_and_openai();
    test_errors();
    test_reader();
    return check_report();
}
