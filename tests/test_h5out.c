/* The HDF5 results file: rows of every shape, resume that drops the rows no
 * JSONL line backs, the refusals, a writer killed after an append, no
 * leaked HDF5 identifiers, and what h5py reads (tests/tools/check_h5.py,
 * run with the interpreter and script given as argv[1] and argv[2]). */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "borg/h5out.h"
#include "check.h"

#ifdef BORG_HAVE_HDF5
#include <hdf5.h>

static const char *python, *checker;
static char dir[400];

static const char *file_in_dir(const char *name)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static const h5out_meta meta = {
    .model_name = "tiny \xce\xbb model",
    .model_path = "/models/tiny.gguf",
    .model_hash = 0x00c0ffee12345678ull,
    .params_json = "{\"temperature\":0.5,\"max_tokens\":7}",
    .version = "0.9.1-test",
    .start_time = 1718000000.25,
};

/* No file, group, dataset, named type or attribute left open anywhere in
 * the library (h5out_close itself refuses to close a file with objects
 * still open in it). */
static void check_no_leaks(const char *when)
{
    ssize_t objs = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    CHECKF(objs == 0, "%s: %zd HDF5 objects still open", when, objs);
}

/* The rows the tests write. */
static const int32_t p0[] = {1, 2, 3}, t0[] = {10, 11}, p1[] = {4}, p2[] = {5, 6, 7, 8, 9},
                     t2[] = {12, 13, 14, 15, 16, 17, 18}, t3[] = {19}, p4[] = {20, 21}, t4[] = {22, 23, 24},
                     t5[] = {25, 26, 27, 28};
static const float l0[] = {-0.5f, -1.25f}, l3[] = {-2.0f}, l4[] = {-0.125f, -3.5f, -0.0625f},
                   l5[] = {-1.0f, -2.0f, -3.0f, -4.0f};
static float e2[8], e4[8], e5[8];

static h5out_row rows[6] = {
    {"a", "ok", "stop", p0, 3, t0, 2, l0, 1.0, 2.5, 3.75, NULL, 0},
    {"\xc3\xa9-1", "ok", "length", p1, 1, NULL, 0, NULL, 0.5, 0.0, 1.0, NULL, 0},
    {"b", "error", NULL, p2, 5, t2, 7, NULL, 2.0, 4.0, 8.0, e2, 8},
    {"c", "timeout", "length", NULL, 0, t3, 1, l3, 3.0, 5.0, 9.0, NULL, 0},
    {"d", "cancelled", "stop", p4, 2, t4, 3, l4, 4.0, 6.0, 10.0, e4, 8},
    {"e", "ok", "stop", p0, 3, t5, 4, l5, 5.0, 7.0, 11.0, e5, 8},
};

static cJSON *int_array(const int32_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *float_array(const float *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, v ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull()); /* null: NaN */
    return a;
}

/* What the checker should find: the rows list[0..n) in order, embeddings
 * dim wide (0: no /embeddings), and meta's attributes. */
static void write_expect(const char *path, const h5out_row *const *list, int n, int dim, const char *what)
{
    cJSON *o = cJSON_CreateObject(), *jobs = cJSON_AddObjectToObject(o, "jobs");
    cJSON_AddStringToObject(o, "what", what);
    cJSON_AddNumberToObject(o, "rows", n);
    const char *strs[] = {"id", "status", "finish_reason"};
    for (int k = 0; k < 3; k++) {
        cJSON *a = cJSON_AddArrayToObject(jobs, strs[k]);
        for (int i = 0; i < n; i++) {
            const char *v = k == 0 ? list[i]->id : k == 1 ? list[i]->status : list[i]->finish_reason;
            cJSON_AddItemToArray(a, cJSON_CreateString(v ? v : ""));
        }
    }
    cJSON *prompt = cJSON_AddArrayToObject(jobs, "prompt_token_ids"), *tok = cJSON_AddArrayToObject(jobs, "token_ids");
    cJSON *lp = cJSON_AddArrayToObject(jobs, "token_logprobs");
    cJSON *q = cJSON_AddArrayToObject(jobs, "queue_ms"), *f = cJSON_AddArrayToObject(jobs, "first_token_ms");
    cJSON *t = cJSON_AddArrayToObject(jobs, "total_ms");
    cJSON *emb = dim ? cJSON_AddObjectToObject(o, "embeddings") : NULL;
    cJSON *eid = emb ? cJSON_AddArrayToObject(emb, "id") : NULL,
          *erow = emb ? cJSON_AddArrayToObject(emb, "job_row") : NULL;
    cJSON *evec = emb ? cJSON_AddArrayToObject(emb, "vector") : NULL;
    if (emb)
        cJSON_AddNumberToObject(emb, "dim", dim);
    else
        cJSON_AddNullToObject(o, "embeddings");
    for (int i = 0; i < n; i++) {
        const h5out_row *r = list[i];
        cJSON_AddItemToArray(prompt, int_array(r->prompt_ids, r->n_prompt));
        cJSON_AddItemToArray(tok, int_array(r->token_ids, r->n_tokens));
        cJSON_AddItemToArray(lp, float_array(r->token_logprobs, r->n_tokens));
        cJSON_AddItemToArray(q, cJSON_CreateNumber(r->queue_ms));
        cJSON_AddItemToArray(f, cJSON_CreateNumber(r->first_token_ms));
        cJSON_AddItemToArray(t, cJSON_CreateNumber(r->total_ms));
        if (emb && r->embedding) {
            cJSON_AddItemToArray(eid, cJSON_CreateString(r->id));
            cJSON_AddItemToArray(erow, cJSON_CreateNumber(i));
            cJSON_AddItemToArray(evec, float_array(r->embedding, (size_t)r->dim));
        }
    }
    cJSON *at = cJSON_AddObjectToObject(o, "attrs");
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)meta.model_hash);
    cJSON_AddStringToObject(at, "model_name", meta.model_name);
    cJSON_AddStringToObject(at, "model_path", meta.model_path);
    cJSON_AddStringToObject(at, "model_fingerprint", fp);
    cJSON_AddStringToObject(at, "params", meta.params_json);
    cJSON_AddStringToObject(at, "borg_infer_version", meta.version);
    cJSON_AddNumberToObject(at, "start_time", meta.start_time);
    char *text = cJSON_Print(o);
    FILE *out = fopen(path, "w");
    CHECK(out && text);
    if (out && text)
        fputs(text, out);
    if (out)
        fclose(out);
    free(text);
    cJSON_Delete(o);
}

/* The checks h5py makes, all in one run of the checker at the end (h5py
 * takes a while to import): a copy of the file as it is now, and what it
 * should hold. */
static char snapshots[16384];
static int n_snapshots;

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t k;
    CHECKF(in && out, "cannot copy %s to %s", from, to);
    while (in && out && (k = fread(buf, 1, sizeof buf, in)) > 0)
        CHECK(fwrite(buf, 1, k, out) == k);
    if (in)
        fclose(in);
    if (out)
        CHECK(fclose(out) == 0);
}

static void check_with_h5py(const char *file, const h5out_row *const *list, int n, int dim, const char *what)
{
    char snap[520], expect[540];
    snprintf(snap, sizeof snap, "%s/snap%02d.h5", dir, n_snapshots++);
    snprintf(expect, sizeof expect, "%s.expect.json", snap);
    copy_file(file, snap);
    write_expect(expect, list, n, dim, what);
    size_t used = strlen(snapshots);
    snprintf(snapshots + used, sizeof snapshots - used, " '%s' '%s'", snap, expect);
}

static void run_checker(void)
{
    if (!python || !checker) {
        printf("no python and checker given: skipping the h5py checks\n");
        return;
    }
    char cmd[sizeof snapshots + 1100];
    snprintf(cmd, sizeof cmd, "'%s' '%s'%s", python, checker, snapshots);
    int rc = system(cmd);
    CHECKF(rc == 0, "the h5py checks failed: %s", cmd);
}

static int append_ok(h5out *h, const h5out_row *r)
{
    borg_err err = {0};
    borg_status st = h5out_append(h, r, &err);
    CHECKF(st == BORG_OK, "append '%s': %s", r->id, err.msg);
    return st == BORG_OK;
}

/* keep(): ids with how many JSONL lines each still has; each call takes
 * one, so repeated ids are kept occurrence by occurrence. */
typedef struct {
    const char *ids[8];
    int counts[8];
    int n, calls;
} jsonl_lines;

static int keep_line(const char *id, void *ctx)
{
    jsonl_lines *l = ctx;
    l->calls++;
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->ids[i], id) && l->counts[i] > 0) {
            l->counts[i]--;
            return 1;
        }
    return 0;
}

static void test_rows_and_resume(void)
{
    const char *path = file_in_dir("results.h5");
    borg_err err = {0};
    h5out *h = NULL;
    CHECK(h5out_open(path, 0, 0, &meta, 8, NULL, NULL, &h, &err) == BORG_OK);
    if (!h) {
        fprintf(stderr, "open: %s\n", err.msg);
        return;
    }
    CHECK(h5out_rows(h) == 0);
    for (int i = 0; i < 5; i++)
        append_ok(h, &rows[i]);
    CHECK(h5out_rows(h) == 5);

    /* An embedding of another width is refused, and nothing is written. */
    h5out_row wide = rows[5];
    wide.dim = 4;
    CHECK(h5out_append(h, &wide, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "4 wide");
    CHECK(h5out_rows(h) == 5);
    CHECK(h5out_close(h, &err) == BORG_OK);
    check_no_leaks("after the first close");

    const h5out_row *five[] = {&rows[0], &rows[1], &rows[2], &rows[3], &rows[4]};
    check_with_h5py(path, five, 5, 8, "five rows");

    /* Resume: the JSONL file backs the first three rows only. */
    jsonl_lines lines = {{"a", "\xc3\xa9-1", "b"}, {1, 1, 1}, 3, 0};
    h = NULL;
    CHECK(h5out_open(path, 0, 1, &meta, 8, keep_line, &lines, &h, &err) == BORG_OK);
    if (!h) {
        fprintf(stderr, "resume: %s\n", err.msg);
        return;
    }
    CHECK(lines.calls == 5);
    CHECK(h5out_rows(h) == 3);
    append_ok(h, &rows[5]);
    CHECK(h5out_rows(h) == 4);
    CHECK(h5out_close(h, &err) == BORG_OK);
    check_no_leaks("after the resumed close");
    const h5out_row *resumed[] = {&rows[0], &rows[1], &rows[2], &rows[5]};
    check_with_h5py(path, resumed, 4, 8, "resumed, two rows dropped, one appended");

    /* Neither resume nor force: the file is not touched. */
    h = NULL;
    memset(&err, 0, sizeof err);
    CHECK(h5out_open(path, 0, 0, &meta, 8, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "--force");

    /* Resume with another embedding width, or none, or another model. */
    CHECK(h5out_open(path, 0, 1, &meta, 16, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "8 wide");
    CHECK(h5out_open(path, 0, 1, &meta, 0, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    h5out_meta other = meta;
    other.model_hash = 0x1234;
    CHECK(h5out_open(path, 0, 1, &other, 8, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, "00c0ffee12345678");
    check_no_leaks("after the refusals");
    check_with_h5py(path, resumed, 4, 8, "after the refusals");

    /* A gap: a row no line backs before rows that lines do. */
    jsonl_lines gap = {{"a", "b", "e"}, {1, 1, 1}, 3, 0};
    CHECK(h5out_open(path, 0, 1, &meta, 8, keep_line, &gap, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, "do not belong together");
    CHECK_CONTAINS(err.msg, "row 1");
    check_no_leaks("after the gap");

    /* force starts over. */
    CHECK(h5out_open(path, 1, 0, &meta, 8, NULL, NULL, &h, &err) == BORG_OK && h5out_rows(h) == 0);
    CHECK(h5out_close(h, &err) == BORG_OK);
    check_with_h5py(path, NULL, 0, 8, "forced, empty");
    check_no_leaks("after force");
}

static void test_repeated_ids(void)
{
    const char *path = file_in_dir("repeated.h5");
    borg_err err = {0};
    h5out *h = NULL;
    h5out_row x = rows[0], y = rows[3];
    x.id = "x";
    y.id = "y";
    CHECK(h5out_open(path, 0, 0, NULL, 0, NULL, NULL, &h, &err) == BORG_OK);
    if (!h)
        return;
    append_ok(h, &x);
    append_ok(h, &y);
    append_ok(h, &x);
    CHECK(h5out_close(h, &err) == BORG_OK);
    /* The second x's line never became durable. */
    jsonl_lines lines = {{"x", "y"}, {1, 1}, 2, 0};
    h = NULL;
    CHECK(h5out_open(path, 0, 1, NULL, 0, keep_line, &lines, &h, &err) == BORG_OK);
    CHECK(h5out_rows(h) == 2);
    CHECK(h5out_close(h, &err) == BORG_OK);
    check_no_leaks("after repeated ids");
}

static void test_not_ours(void)
{
    borg_err err = {0};
    h5out *h = NULL;
    const char *text = file_in_dir("not-hdf5.h5");
    FILE *f = fopen(text, "w");
    if (f) {
        fputs("{\"id\":\"a\"}\n", f);
        fclose(f);
    }
    CHECK(h5out_open(text, 0, 1, &meta, 0, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, text);
    CHECK_CONTAINS(err.msg, "not an HDF5 file");

    const char *foreign = file_in_dir("foreign.h5");
    hid_t fid = H5Fcreate(foreign, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(fid >= 0 && H5Fclose(fid) >= 0);
    CHECK(h5out_open(foreign, 0, 1, &meta, 0, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, "not a borg-infer results file");

    /* Resume of an absent or empty file creates it. */
    const char *absent = file_in_dir("absent.h5");
    CHECK(h5out_open(absent, 0, 1, &meta, 0, NULL, NULL, &h, &err) == BORG_OK && h5out_rows(h) == 0);
    CHECK(h5out_close(h, &err) == BORG_OK);
    const char *empty = file_in_dir("empty.h5");
    if ((f = fopen(empty, "w")))
        fclose(f);
    CHECK(h5out_open(empty, 0, 1, &meta, 0, NULL, NULL, &h, &err) == BORG_OK && h5out_rows(h) == 0);
    CHECK(h5out_close(h, &err) == BORG_OK);
    check_with_h5py(empty, NULL, 0, 0, "resumed from empty");

    CHECK(h5out_open(file_in_dir("no/such/dir.h5"), 0, 0, &meta, 0, NULL, NULL, &h, &err) == BORG_EIO);
    CHECK_CONTAINS(err.msg, "no/such/dir.h5");
    CHECK(h5out_close(NULL, &err) == BORG_OK);
    check_no_leaks("after the foreign files");
}

/* An append a crash cut short leaves columns of unequal length: resume
 * keeps the rows every column has. */
static void test_half_written(void)
{
    const char *path = file_in_dir("half.h5");
    borg_err err = {0};
    h5out *h = NULL;
    CHECK(h5out_open(path, 0, 0, &meta, 8, NULL, NULL, &h, &err) == BORG_OK);
    if (!h)
        return;
    append_ok(h, &rows[0]);
    append_ok(h, &rows[2]);
    CHECK(h5out_close(h, &err) == BORG_OK);
    /* A third row reached /jobs/id, /jobs/status and the embedding only. */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    const char *names[] = {"/jobs/id", "/jobs/status", "/embeddings/id", "/embeddings/job_row"};
    for (int i = 0; i < 4; i++) {
        hid_t d = H5Dopen2(f, names[i], H5P_DEFAULT);
        hsize_t n = i < 2 ? 3 : 2;
        CHECK(d >= 0 && H5Dset_extent(d, &n) >= 0 && H5Dclose(d) >= 0);
    }
    CHECK(f >= 0 && H5Fclose(f) >= 0);
    h = NULL;
    CHECK(h5out_open(path, 0, 1, &meta, 8, NULL, NULL, &h, &err) == BORG_OK);
    CHECK(h5out_rows(h) == 2);
    append_ok(h, &rows[4]);
    CHECK(h5out_close(h, &err) == BORG_OK);
    const h5out_row *want[] = {&rows[0], &rows[2], &rows[4]};
    check_with_h5py(path, want, 3, 8, "half-written row dropped");
    check_no_leaks("after the half-written row");
}

/* A writer killed (SIGKILL, from outside) after its third append returned,
 * never closing the file: while it lives the file is refused (its lock);
 * then h5py reads the three rows, and resume appends to them. */
static void test_killed_writer(void)
{
    const char *path = file_in_dir("killed.h5");
    static float k4[4] = {0.5f, -0.5f, 1.5f, 2.0f};
    h5out_row three[4] = {rows[0], rows[1], rows[3], rows[5]};
    three[1].embedding = k4;
    three[1].dim = 4;
    three[3].embedding = NULL;
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        borg_err err = {0};
        h5out *h = NULL;
        close(ready[0]);
        if (h5out_open(path, 0, 0, &meta, 4, NULL, NULL, &h, &err))
            _exit(3);
        for (int i = 0; i < 3; i++)
            if (h5out_append(h, &three[i], &err))
                _exit(4);
        if (write(ready[1], "k", 1) != 1)
            _exit(5);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c = 0;
    CHECK(pid > 0 && read(ready[0], &c, 1) == 1 && c == 'k');
    close(ready[0]);
    borg_err err = {0};
    h5out *h = NULL;
    CHECK(h5out_open(path, 1, 0, &meta, 4, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, "another process has it open");
    CHECK(h5out_open(path, 0, 1, &meta, 4, NULL, NULL, &h, &err) == BORG_EINPUT && h == NULL);
    CHECK_CONTAINS(err.msg, "another process has it open");
    int ws = 0;
    CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, &ws, 0) == pid);
    CHECKF(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "the writer was not killed: status %d", ws);
    const h5out_row *seen[] = {&three[0], &three[1], &three[2], &three[3]};
    check_with_h5py(path, seen, 3, 4, "killed writer");

    CHECK(h5out_open(path, 0, 1, &meta, 4, NULL, NULL, &h, &err) == BORG_OK);
    if (!h) {
        fprintf(stderr, "resume after kill: %s\n", err.msg);
        return;
    }
    CHECK(h5out_rows(h) == 3);
    append_ok(h, &three[3]);
    CHECK(h5out_close(h, &err) == BORG_OK);
    check_with_h5py(path, seen, 4, 4, "killed writer, resumed");
    check_no_leaks("after the killed writer");
}

int main(int argc, char **argv)
{
    python = argc > 2 ? argv[1] : NULL;
    checker = argc > 2 ? argv[2] : NULL;
    for (int i = 0; i < 8; i++) {
        e2[i] = 0.25f * (float)i - 1.0f;
        e4[i] = -0.5f * (float)i;
        e5[i] = 1.0f / (float)(i + 1);
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_h5out_XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }

    test_rows_and_resume();
    test_repeated_ids();
    test_not_ours();
    test_half_written();
    test_killed_writer();
    run_checker();

    int rc = check_report();
    if (rc == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "files left in %s\n", dir);
    }
    return rc;
}

#else /* no HDF5 in this build: the writer says so */

int main(void)
{
    borg_err err = {0};
    h5out *h = NULL;
    h5out_meta meta = {0};
    CHECK(h5out_open("out.h5", 0, 0, &meta, 0, NULL, NULL, &h, &err) == BORG_EUSAGE && h == NULL);
    CHECK_CONTAINS(err.msg, "this build has no HDF5 (install libhdf5-dev and rebuild)");
    CHECK_CONTAINS(err.msg, "out.h5");
    CHECK(h5out_rows(NULL) == 0);
    CHECK(h5out_close(NULL, &err) == BORG_OK);
    CHECK(access("out.h5", F_OK) != 0);
    return check_report();
}

#endif
