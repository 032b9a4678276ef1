/* The results writer: lines count as done only once committed; one
 * commit covers every line written before it; a resumed file yields its
 * ids, occurrence by occurrence; a torn last line is dropped; a file in
 * use by another writer is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "borg/results.h"
#include "check.h"

static borg_result result_of(borg_job *job, const char *id, result_status status)
{
    memset(job, 0, sizeof *job);
    job->id = (char *)id;
    job->shape = JOB_SIMPLE;
    return (borg_result){.job = job, .status = status, .text = "hi", .text_len = 2, .finish_reason = "stop"};
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    while (f && (ch = getc(f)) != EOF)
        n += ch == '\n';
    if (f)
        fclose(f);
    return n;
}

static void test_group_commit(const char *path)
{
    borg_err err;
    results_writer *w = NULL;
    CHECK(results_open(path, 1, 0, &w, &err) == BORG_OK);
    if (!w)
        return;
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        borg_job job;
        borg_result r = result_of(&job, ids[i], i == 2 ? RESULT_ERROR : RESULT_OK);
        CHECK(results_write(w, &r, &err) == BORG_OK);
    }
    CHECKF(count_lines(path) == 3, "written lines are in the file before the commit");
    CHECK(results_pending(w) == 3);
    CHECKF(results_count(w, RESULT_OK) == 0 && results_count(w, RESULT_ERROR) == 0,
           "nothing counts before it is durable");
    CHECK(results_commit(w, &err) == BORG_OK);
    CHECK(results_pending(w) == 0);
    CHECK(results_count(w, RESULT_OK) == 2);
    CHECK(results_count(w, RESULT_ERROR) == 1);
    CHECK(results_commit(w, &err) == BORG_OK); /* nothing pending: nothing to do */
    CHECK(results_count(w, RESULT_OK) == 2);
    CHECK(results_close(w, &err) == BORG_OK);
}

static void test_resume(const char *path)
{
    /* A line that a kill cut off mid-write ends the file. */
    FILE *f = fopen(path, "a");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"id\": \"a\", \"sta", f);
        fclose(f);
    }
    borg_err err;
    results_writer *w = NULL;
    CHECK(results_open(path, 0, 1, &w, &err) == BORG_OK);
    if (!w)
        return;
    CHECK(results_resumed(w) == 3);
    CHECKF(count_lines(path) == 3, "the torn last line is dropped");
    CHECK(results_resumed_has(w, "a"));
    CHECK(results_take_done(w, "a", 0) == 1);
    CHECK(results_take_done(w, "a", 0) == 0);
    CHECK(!results_resumed_has(w, "a"));
    CHECK(results_take_done(w, "z", 0) == 0);
    borg_job job;
    borg_result r = result_of(&job, "d", RESULT_OK);
    CHECK(results_write(w, &r, &err) == BORG_OK);
    CHECK(results_commit(w, &err) == BORG_OK);
    CHECKF(results_count(w, RESULT_OK) == 1, "counts are of this run's lines");
    CHECK(results_close(w, &err) == BORG_OK);
    CHECK(count_lines(path) == 4);
}

static void test_refusals(const char *path)
{
    borg_err err;
    results_writer *w = NULL;
    CHECK(results_open(path, 0, 0, &w, &err) == BORG_EUSAGE);
    CHECK_CONTAINS(err.msg, "--resume");
    CHECK(results_open("/nonexistent-dir/r.jsonl", 1, 0, &w, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "/nonexistent-dir/r.jsonl");
}

/* A second writer of a file in use is refused, and --force does not
 * truncate the first one's lines on its way to being refused. */
static void test_in_use(const char *path)
{
    borg_err err;
    results_writer *w = NULL, *other = NULL;
    CHECK(results_open(path, 1, 0, &w, &err) == BORG_OK);
    if (!w)
        return;
    borg_job job;
    borg_result r = result_of(&job, "a", RESULT_OK);
    CHECK(results_write(w, &r, &err) == BORG_OK);
    CHECK(results_commit(w, &err) == BORG_OK);
    CHECK(results_open(path, 1, 0, &other, &err) == BORG_EUSAGE);
    CHECK_CONTAINS(err.msg, "another run");
    CHECK(results_open(path, 0, 1, &other, &err) == BORG_EUSAGE);
    CHECK(count_lines(path) == 1);
    CHECK(results_close(w, &err) == BORG_OK);
    CHECK(results_open(path, 1, 0, &other, &err) == BORG_OK);
    CHECK(count_lines(path) == 0);
    results_close(other, &err);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/test_results_%d.jsonl", tmp, (int)getpid());
    test_group_commit(path);
    test_resume(path);
    test_refusals(path);
    test_in_use(path);
    unlink(path);
    return check_report();
}
