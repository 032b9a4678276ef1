#define _GNU_SOURCE
#include "borg/results.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Ids already in a resumed file, with how many results each has, so a
 * jobs file that repeats an id is resumed occurrence by occurrence. */
typedef struct {
    char **keys;
    long *counts;
    size_t cap, n;
} id_counts;

struct results_writer {
    int fd;
    char *path;
    long counts[4];  /* durable lines, by status */
    long pending[4]; /* lines written since the last commit, by status */
    id_counts done;  /* results of jobs by id */
    id_counts dups;  /* error lines of jobs that repeated an earlier job's id */
    off_t end;       /* where the last whole line written ends */
    off_t durable;   /* where the last durable line ends */
    long resumed;
};

const char *result_status_name(result_status s)
{
    static const char *const names[] = {"ok", "error", "timeout", "cancelled"};
    return names[s];
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static size_t id_slot(const id_counts *m, const char *id)
{
    size_t i = hash_str(id) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], id))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static borg_status id_add(id_counts *m, const char *id)
{
    if (2 * (m->n + 1) > m->cap) {
        id_counts bigger = {0};
        bigger.cap = m->cap ? 2 * m->cap : 1024;
        bigger.keys = calloc(bigger.cap, sizeof *bigger.keys);
        bigger.counts = calloc(bigger.cap, sizeof *bigger.counts);
        if (!bigger.keys || !bigger.counts) {
            free(bigger.keys);
            free(bigger.counts);
            return BORG_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = id_slot(&bigger, m->keys[i]);
                bigger.keys[j] = m->keys[i];
                bigger.counts[j] = m->counts[i];
            }
        bigger.n = m->n;
        free(m->keys);
        free(m->counts);
        *m = bigger;
    }
    size_t i = id_slot(m, id);
    if (!m->keys[i]) {
        if (!(m->keys[i] = strdup(id)))
            return BORG_ENOMEM;
        m->n++;
    }
    m->counts[i]++;
    return BORG_OK;
}

static void id_free(id_counts *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->counts);
    memset(m, 0, sizeof *m);
}

/* Reads the ids of an existing results file and cuts off a last line that
 * a crash left torn (no newline, or not JSON). A damaged line anywhere else
 * means the file is not ours to append to. */
static borg_status read_existing(results_writer *w, borg_err *err)
{
    FILE *f = fdopen(dup(w->fd), "r");
    if (!f)
        return borg_fail(err, BORG_EIO, "%s: cannot read results to resume: %s", w->path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    off_t good_end = 0;
    long line_no = 0;
    borg_status st = BORG_OK;
    while (!st && (len = getline(&line, &cap, f)) > 0) {
        line_no++;
        int complete = line[len - 1] == '\n';
        cJSON *o = complete ? cJSON_ParseWithLength(line, (size_t)len) : NULL;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "custom_id");
        if (!id)
            id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (cJSON_IsString(id)) {
            int dup = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "duplicate_of_line"));
            if (id_add(dup ? &w->dups : &w->done, id->valuestring))
                st = borg_fail(err, BORG_ENOMEM, "out of memory reading %s", w->path);
            w->resumed++;
            good_end += len;
        } else if (getc(f) != EOF || (complete && o)) {
            st = borg_fail(err, BORG_EINPUT, "%s: line %ld is not a result line; refusing to resume into it", w->path,
                           line_no);
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (!st && ftruncate(w->fd, good_end) != 0)
        st = borg_fail(err, BORG_EIO, "%s: cannot drop a torn last line: %s", w->path, strerror(errno));
    if (!st && lseek(w->fd, 0, SEEK_END) < 0)
        st = borg_fail(err, BORG_EIO, "%s: %s", w->path, strerror(errno));
    return st;
}

borg_status results_open(const char *path, int force, int resume, results_writer **out, borg_err *err)
{
    results_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return borg_fail(err, BORG_ENOMEM, "out of memory opening %s", path);
    }
    /* --force truncates only once the lock below is held. */
    int flags = O_RDWR | O_CREAT | O_CLOEXEC | (resume || force ? 0 : O_EXCL);
    w->fd = open(path, flags, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(w->path);
        free(w);
        if (e == EEXIST)
            return borg_fail(err, BORG_EUSAGE,
                             "%s: results file exists; use --resume to finish it or --force to overwrite it", path);
        /* A path that cannot be written is the user's to fix: refused like
         * bad input, before any stage loads a layer. */
        int theirs = e == ENOENT || e == EACCES || e == EPERM || e == EROFS || e == ENOTDIR || e == EISDIR;
        return borg_fail(err, theirs ? BORG_EINPUT : BORG_EIO, "%s: cannot create results file: %s", path, strerror(e));
    }
    /* Two runs writing one file interleave their lines at their own
     * offsets: the second is refused. A file system without locks (some
     * parallel ones) is written without. */
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(w->fd, F_OFD_SETLK, &lk) != 0 && (errno == EAGAIN || errno == EACCES)) {
        results_close(w, NULL);
        return borg_fail(err, BORG_EUSAGE, "%s: results file is being written by another run", path);
    }
    if (force && !resume && ftruncate(w->fd, 0) != 0) {
        int e = errno;
        results_close(w, NULL);
        return borg_fail(err, BORG_EIO, "%s: cannot truncate results file: %s", path, strerror(e));
    }
    borg_status st = resume ? read_existing(w, err) : BORG_OK;
    if (st) {
        results_close(w, NULL);
        return st;
    }
    w->end = w->durable = lseek(w->fd, 0, SEEK_END);
    *out = w;
    return BORG_OK;
}

int results_take_done(results_writer *w, const char *id, int duplicate)
{
    id_counts *m = duplicate ? &w->dups : &w->done;
    if (!m->n)
        return 0;
    size_t i = id_slot(m, id);
    if (!m->keys[i] || m->counts[i] == 0)
        return 0;
    m->counts[i]--;
    return 1;
}

int results_resumed_has(const results_writer *w, const char *id)
{
    if (!w->done.n)
        return 0;
    size_t i = id_slot(&w->done, id);
    return w->done.keys[i] && w->done.counts[i] > 0;
}

long results_resumed(const results_writer *w) { return w->resumed; }

/* JSON text must be valid UTF-8; a model can emit a token that ends in the
 * middle of a character, so invalid sequences become U+FFFD. */
static char *utf8_repair(const char *s, size_t len)
{
    char *out = malloc(len * 3 + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = n > 0 && p + n <= end && c != 0;
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && n > 1) {
            unsigned cp = c & (0x7F >> n);
            for (int i = 1; i < n; i++)
                cp = cp << 6 | (p[i] & 0x3F);
            static const unsigned min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min_cp[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok) {
            memcpy(o, p, (size_t)n);
            o += n;
            p += n;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    *o = '\0';
    return out;
}

static cJSON *token_array(const borg_result *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n_tokens; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(r->token_ids[i]));
    return a;
}

static cJSON *usage_object(const borg_result *r)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)r->n_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)r->prompt_tokens + (double)r->n_tokens);
    return u;
}

static cJSON *native_line(const borg_result *r, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->job->id);
    cJSON_AddStringToObject(o, "status", result_status_name(r->status));
    if (r->status == RESULT_ERROR)
        cJSON_AddStringToObject(o, "error", r->error ? r->error : "unknown error");
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddItemToObject(o, "token_ids", token_array(r));
    if (r->finish_reason)
        cJSON_AddStringToObject(o, "finish_reason", r->finish_reason);
    else
        cJSON_AddNullToObject(o, "finish_reason");
    cJSON_AddItemToObject(o, "usage", usage_object(r));
    if (r->prompt_logprobs) {
        cJSON *a = cJSON_AddArrayToObject(o, "prompt_logprobs");
        for (int32_t i = 0; a && i < r->prompt_tokens; i++)
            cJSON_AddItemToArray(a, isnan(r->prompt_logprobs[i]) ? cJSON_CreateNull()
                                                                 : cJSON_CreateNumber(r->prompt_logprobs[i]));
    }
    if (r->embedding) {
        cJSON *a = cJSON_AddArrayToObject(o, "embedding");
        for (int i = 0; a && i < r->dim; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(r->embedding[i]));
    }
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(t, "queue_ms", r->queue_ms);
    cJSON_AddNumberToObject(t, "first_token_ms", r->first_token_ms);
    cJSON_AddNumberToObject(t, "total_ms", r->total_ms);
    return o;
}

/* The OpenAI Batch API output line: a response object with the HTTP status
 * and the body the endpoint would have returned, or an error object. */
static cJSON *openai_line(const borg_result *r, const char *text)
{
    const borg_job *job = r->job;
    int chat = job->shape == JOB_OPENAI_CHAT;
    char id[64], req[64], cmpl[64];
    snprintf(id, sizeof id, "batch_req_%06ld", job->index);
    snprintf(req, sizeof req, "req_%06ld", job->index);
    snprintf(cmpl, sizeof cmpl, "%s-%06ld", chat ? "chatcmpl" : "cmpl", job->index);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "custom_id", job->id);
    if (r->status == RESULT_TIMEOUT || r->status == RESULT_CANCELLED) {
        cJSON_AddNullToObject(o, "response");
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", r->status == RESULT_TIMEOUT ? "timeout" : "cancelled");
        cJSON_AddStringToObject(e, "message",
                                r->status == RESULT_TIMEOUT ? "the request ran past its time limit"
                                                            : "the request was cancelled");
        return o;
    }
    cJSON *resp = cJSON_AddObjectToObject(o, "response");
    cJSON_AddNumberToObject(resp, "status_code", r->status == RESULT_OK ? 200 : 400);
    cJSON_AddStringToObject(resp, "request_id", req);
    cJSON *body = cJSON_AddObjectToObject(resp, "body");
    if (r->status == RESULT_ERROR) {
        cJSON *e = cJSON_AddObjectToObject(body, "error");
        cJSON_AddStringToObject(e, "message", r->error ? r->error : "unknown error");
        cJSON_AddStringToObject(e, "type", "invalid_request_error");
        cJSON_AddNullToObject(e, "param");
        cJSON_AddNullToObject(e, "code");
        cJSON_AddNullToObject(o, "error");
        return o;
    }
    cJSON_AddStringToObject(body, "id", cmpl);
    cJSON_AddStringToObject(body, "object", chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(body, "created", (double)time(NULL));
    cJSON_AddStringToObject(body, "model", job->model ? job->model : "");
    cJSON *choices = cJSON_AddArrayToObject(body, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", text);
    } else {
        cJSON_AddStringToObject(c, "text", text);
    }
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", r->finish_reason ? r->finish_reason : "stop");
    cJSON_AddItemToObject(c, "token_ids", token_array(r));
    cJSON_AddItemToObject(body, "usage", usage_object(r));
    cJSON_AddNullToObject(o, "error");
    return o;
}

/* A full disk (or quota, or file size limit) stops the run resumably: the
 * file is cut back to cut, the end of lines known whole (after a failed
 * write) or known durable (after a failed sync), and --resume finishes
 * once there is room. */
static borg_status write_failed(results_writer *w, const char *what, int e, off_t cut, borg_err *err)
{
    if (e != ENOSPC && e != EDQUOT && e != EFBIG)
        return borg_fail(err, BORG_EIO, "%s: %s failed: %s", w->path, what, strerror(e));
    int ok = ftruncate(w->fd, cut) == 0 && lseek(w->fd, cut, SEEK_SET) == cut;
    if (ok)
        w->end = cut;
    return borg_fail(err, BORG_EINCOMPLETE, "%s: %s: %s; %s free space and rerun with --resume", w->path, what,
                     strerror(e), ok ? "the file ends with its last whole line:" : "");
}

static borg_status write_all(results_writer *w, const char *s, size_t len, borg_err *err)
{
    while (len > 0) {
        ssize_t k = write(w->fd, s, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return write_failed(w, "write", k < 0 ? errno : ENOSPC, w->end, err);
        s += k;
        len -= (size_t)k;
    }
    return BORG_OK;
}

borg_status results_write(results_writer *w, const borg_result *r, borg_err *err)
{
    char *text = utf8_repair(r->text ? r->text : "", r->text ? r->text_len : 0);
    if (!text)
        return borg_fail(err, BORG_ENOMEM, "out of memory writing the result of '%s'", r->job->id);
    cJSON *o = job_is_openai(r->job) ? openai_line(r, text) : native_line(r, text);
    free(text);
    /* What --resume tells a repeated id's error line by. */
    if (o && r->job->duplicate_of > 0)
        cJSON_AddNumberToObject(o, "duplicate_of_line", (double)r->job->duplicate_of);
    char *line = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line)
        return borg_fail(err, BORG_ENOMEM, "out of memory writing the result of '%s'", r->job->id);
    size_t len = strlen(line);
    line[len] = '\n'; /* one write, so a crash tears at most this line */
    borg_status st = write_all(w, line, len + 1, err);
    free(line);
    if (st)
        return st;
    w->end += (off_t)len + 1;
    w->pending[r->status]++;
    return BORG_OK;
}

long results_pending(const results_writer *w) { return w->pending[0] + w->pending[1] + w->pending[2] + w->pending[3]; }

borg_status results_commit(results_writer *w, borg_err *err)
{
    if (!results_pending(w))
        return BORG_OK;
    /* Lines whose sync failed may be gone after a crash, so they are cut
     * and their jobs are left to --resume. */
    if (fdatasync(w->fd) != 0 && errno != EINVAL && errno != EROFS)
        return write_failed(w, "fdatasync", errno, w->durable, err);
    for (int i = 0; i < 4; i++) {
        w->counts[i] += w->pending[i];
        w->pending[i] = 0;
    }
    w->durable = w->end;
    return BORG_OK;
}

long results_count(const results_writer *w, result_status s) { return w->counts[s]; }

borg_status results_close(results_writer *w, borg_err *err)
{
    if (!w)
        return BORG_OK;
    borg_status st = BORG_OK;
    if (close(w->fd) != 0)
        st = borg_fail(err, BORG_EIO, "%s: close failed: %s", w->path, strerror(errno));
    id_free(&w->done);
    id_free(&w->dups);
    free(w->path);
    free(w);
    return st;
}
