#define _GNU_SOURCE
#include "borg/jobs.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Defaults when a job does not say. Simple and chat jobs decode greedily so
 * a batch is reproducible out of the box; OpenAI lines follow the API's
 * documented defaults. */
enum { DEFAULT_MAX_TOKENS = 256, OPENAI_COMPLETION_MAX_TOKENS = 16 };

static void set_error(borg_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(borg_job *job, const char *fmt, ...)
{
    if (job->error)
        return; /* the first problem is the one worth reporting */
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (asprintf(&job->error, "line %ld: %s", job->line, msg) < 0)
        job->error = NULL;
}

void job_free(borg_job *job)
{
    free(job->id);
    free(job->model);
    free(job->prompt);
    free(job->prompt_ids);
    for (size_t i = 0; i < job->n_messages; i++) {
        free(job->messages[i].role);
        free(job->messages[i].content);
    }
    free(job->messages);
    for (int i = 0; i < job->n_stop; i++)
        free(job->stop[i]);
    free(job->error);
    memset(job, 0, sizeof *job);
}

int job_is_openai(const borg_job *job) { return job->shape == JOB_OPENAI_COMPLETION || job->shape == JOB_OPENAI_CHAT; }

/* Sets *present to 1 and *out when key is a number, *present to 0 when
 * absent; records an error and returns BORG_EINPUT when it has another type. */
static borg_status get_number(borg_job *job, const cJSON *obj, const char *key, double *out, int *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = 0;
    if (!v || cJSON_IsNull(v))
        return BORG_OK;
    if (!cJSON_IsNumber(v)) {
        set_error(job, "%s must be a number", key);
        return BORG_EINPUT;
    }
    *out = v->valuedouble;
    *present = 1;
    return BORG_OK;
}

static int is_integer(double d) { return isfinite(d) && d == floor(d); }

static borg_status parse_stop(borg_job *job, const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return BORG_OK;
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0])
            return set_error(job, "stop strings must not be empty"), BORG_EINPUT;
        if (!(job->stop[0] = strdup(v->valuestring)))
            return BORG_ENOMEM;
        job->n_stop = 1;
        return BORG_OK;
    }
    if (!cJSON_IsArray(v))
        return set_error(job, "stop must be a string or an array of strings"), BORG_EINPUT;
    const cJSON *s;
    cJSON_ArrayForEach(s, v)
    {
        if (!cJSON_IsString(s) || !s->valuestring[0])
            return set_error(job, "stop must contain only non-empty strings"), BORG_EINPUT;
        if (job->n_stop == JOB_MAX_STOP)
            return set_error(job, "at most %d stop strings are supported", JOB_MAX_STOP), BORG_EINPUT;
        if (!(job->stop[job->n_stop] = strdup(s->valuestring)))
            return BORG_ENOMEM;
        job->n_stop++;
    }
    return BORG_OK;
}

static borg_status parse_token_ids(borg_job *job, const cJSON *v, const char *key)
{
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return set_error(job, "%s is empty", key), BORG_EINPUT;
    job->prompt_ids = malloc(sizeof(int32_t) * (size_t)n);
    if (!job->prompt_ids)
        return BORG_ENOMEM;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsNumber(e) || !is_integer(e->valuedouble) || e->valuedouble < 0 || e->valuedouble > INT32_MAX)
            return set_error(job, "%s must contain non-negative integer token ids", key), BORG_EINPUT;
        job->prompt_ids[job->n_prompt_ids++] = (int32_t)e->valuedouble;
    }
    return BORG_OK;
}

/* Message content is a string, or OpenAI's list of parts of which only
 * text parts can be honoured by a text model. */
static char *message_content(borg_job *job, const cJSON *c, size_t i)
{
    if (cJSON_IsString(c))
        return strdup(c->valuestring);
    if (!cJSON_IsArray(c)) {
        set_error(job, "messages[%zu].content must be a string or a list of text parts", i);
        return NULL;
    }
    size_t len = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
            set_error(job, "messages[%zu].content: only text parts are supported", i);
            return NULL;
        }
        len += strlen(text->valuestring);
    }
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    out[0] = '\0';
    cJSON_ArrayForEach(part, c) strcat(out, cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring);
    return out;
}

static borg_status parse_messages(borg_job *job, const cJSON *v)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return set_error(job, "messages must be a non-empty array"), BORG_EINPUT;
    size_t n = (size_t)cJSON_GetArraySize(v);
    job->messages = calloc(n, sizeof *job->messages);
    if (!job->messages)
        return BORG_ENOMEM;
    const cJSON *m;
    cJSON_ArrayForEach(m, v)
    {
        size_t i = job->n_messages;
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role) || !content)
            return set_error(job, "messages[%zu] must be an object with role and content", i), BORG_EINPUT;
        if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
            strcmp(role->valuestring, "assistant") && strcmp(role->valuestring, "developer") &&
            strcmp(role->valuestring, "tool"))
            return set_error(job, "messages[%zu].role '%s' is not one of system, developer, user, assistant, tool", i,
                             role->valuestring),
                   BORG_EINPUT;
        job->messages[i].role = strdup(role->valuestring);
        job->messages[i].content = message_content(job, content, i);
        job->n_messages++;
        if (job->error)
            return BORG_EINPUT;
        if (!job->messages[i].role || !job->messages[i].content)
            return BORG_ENOMEM;
    }
    return BORG_OK;
}

/* Prompt as text, a list of one text, or a list of token ids. */
static borg_status parse_prompt(borg_job *job, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0])
            return set_error(job, "prompt is empty"), BORG_EINPUT;
        return (job->prompt = strdup(v->valuestring)) ? BORG_OK : BORG_ENOMEM;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsString(cJSON_GetArrayItem(v, 0)))
        return parse_prompt(job, cJSON_GetArrayItem(v, 0));
    if (cJSON_IsArray(v) && cJSON_IsNumber(cJSON_GetArrayItem(v, 0)))
        return parse_token_ids(job, v, "prompt");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 1)
        return set_error(job, "one prompt per job: give each prompt its own line"), BORG_EINPUT;
    return set_error(job, "prompt must be a non-empty string"), BORG_EINPUT;
}

/* Generation parameters shared by every shape; obj is the job (simple,
 * chat) or the OpenAI body. */
static borg_status parse_params(borg_job *job, const cJSON *obj)
{
    double d;
    int r;
    if (get_number(job, obj, "max_tokens", &d, &r) || (!r && get_number(job, obj, "max_completion_tokens", &d, &r)))
        return BORG_EINPUT;
    if (r) {
        if (!is_integer(d) || d < 0 || d > 1e9)
            return set_error(job, "max_tokens must be a non-negative integer (got %g)", d), BORG_EINPUT;
        job->max_tokens = (int32_t)d;
    }
    if (get_number(job, obj, "temperature", &d, &r))
        return BORG_EINPUT;
    if (r) {
        if (!(d >= 0 && d <= 100))
            return set_error(job, "temperature must be between 0 and 100 (got %g)", d), BORG_EINPUT;
        job->sampling.temperature = (float)d;
    }
    if (get_number(job, obj, "top_p", &d, &r))
        return BORG_EINPUT;
    if (r) {
        if (!(d > 0 && d <= 1))
            return set_error(job, "top_p must be in (0, 1] (got %g)", d), BORG_EINPUT;
        job->sampling.top_p = (float)d;
    }
    if (get_number(job, obj, "top_k", &d, &r))
        return BORG_EINPUT;
    if (r) {
        if (!is_integer(d) || d < 0 || d > INT32_MAX)
            return set_error(job, "top_k must be a non-negative integer (got %g)", d), BORG_EINPUT;
        job->sampling.top_k = (int32_t)d;
    }
    if (get_number(job, obj, "min_p", &d, &r))
        return BORG_EINPUT;
    if (r) {
        if (!(d >= 0 && d <= 1))
            return set_error(job, "min_p must be in [0, 1] (got %g)", d), BORG_EINPUT;
        job->sampling.min_p = (float)d;
    }
    if (get_number(job, obj, "seed", &d, &r))
        return BORG_EINPUT;
    if (r) {
        if (!is_integer(d) || fabs(d) > 9.007199254740992e15)
            return set_error(job, "seed must be an integer (got %g)", d), BORG_EINPUT;
        job->sampling.seed = (uint64_t)(int64_t)d;
    }
    if (get_number(job, obj, "priority", &d, &r))
        return BORG_EINPUT;
    if (r) {
        if (!is_integer(d) || fabs(d) > 1e6)
            return set_error(job, "priority must be an integer (got %g)", d), BORG_EINPUT;
        job->priority = (int)d;
    }
    if (get_number(job, obj, "timeout_s", &d, &r))
        return BORG_EINPUT;
    if (r) {
        if (!(d > 0 && d < 1e9))
            return set_error(job, "timeout_s must be a positive number of seconds (got %g)", d), BORG_EINPUT;
        job->timeout_s = d;
    }
    if (get_number(job, obj, "n", &d, &r))
        return BORG_EINPUT;
    if (r && d != 1)
        return set_error(job, "only n = 1 is supported (got %g)", d), BORG_EINPUT;
    const cJSON *ign = cJSON_GetObjectItemCaseSensitive(obj, "ignore_eos");
    if (ign && !cJSON_IsNull(ign)) {
        if (!cJSON_IsBool(ign))
            return set_error(job, "ignore_eos must be true or false"), BORG_EINPUT;
        job->ignore_eos = cJSON_IsTrue(ign);
    }
    return parse_stop(job, cJSON_GetObjectItemCaseSensitive(obj, "stop"));
}

/* The seed of a job that gives none: a hash of its id, so reruns agree. */
static uint64_t default_seed(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static borg_status parse_id(borg_job *job, const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v) && v->valuestring[0])
        return (job->id = strdup(v->valuestring)) ? BORG_OK : BORG_ENOMEM;
    if (cJSON_IsNumber(v) && is_integer(v->valuedouble))
        return asprintf(&job->id, "%.0f", v->valuedouble) < 0 ? BORG_ENOMEM : BORG_OK;
    if (asprintf(&job->id, "line-%ld", job->line) < 0)
        return BORG_ENOMEM;
    if (v && !cJSON_IsNull(v))
        return set_error(job, "%s must be a non-empty string", key), BORG_EINPUT;
    if (!strcmp(key, "custom_id"))
        return set_error(job, "custom_id is required"), BORG_EINPUT;
    return BORG_OK;
}

static borg_status parse_openai(borg_job *job, const cJSON *obj)
{
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(obj, "method");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(obj, "url");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(obj, "body");
    job->shape = JOB_OPENAI_CHAT;
    if (cJSON_IsString(url) && !strcmp(url->valuestring, "/v1/completions"))
        job->shape = JOB_OPENAI_COMPLETION;
    borg_status r = parse_id(job, obj, "custom_id");
    if (r)
        return r;
    if (!cJSON_IsString(method) || strcmp(method->valuestring, "POST"))
        return set_error(job, "method must be \"POST\""), BORG_EINPUT;
    if (!cJSON_IsString(url) ||
        (strcmp(url->valuestring, "/v1/completions") && strcmp(url->valuestring, "/v1/chat/completions")))
        return set_error(job, "url must be \"/v1/completions\" or \"/v1/chat/completions\""), BORG_EINPUT;
    if (!cJSON_IsObject(body))
        return set_error(job, "body must be an object"), BORG_EINPUT;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (cJSON_IsString(model) && !(job->model = strdup(model->valuestring)))
        return BORG_ENOMEM;
    job->sampling.temperature = 1.0f;
    job->max_tokens = job->shape == JOB_OPENAI_COMPLETION ? OPENAI_COMPLETION_MAX_TOKENS : -1;
    if ((r = parse_params(job, body)))
        return r;
    if (job->shape == JOB_OPENAI_CHAT)
        return parse_messages(job, cJSON_GetObjectItemCaseSensitive(body, "messages"));
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (!prompt)
        return set_error(job, "body.prompt is required for /v1/completions"), BORG_EINPUT;
    return parse_prompt(job, prompt);
}

/* "embed": true asks for the prompt's embedding, "pooling" how its tokens'
 * final hidden states become one vector. Such a job generates nothing
 * unless it also gives max_tokens. */
static borg_status parse_embed(borg_job *job, const cJSON *obj)
{
    const cJSON *embed = cJSON_GetObjectItemCaseSensitive(obj, "embed");
    const cJSON *pooling = cJSON_GetObjectItemCaseSensitive(obj, "pooling");
    if (embed && !cJSON_IsNull(embed)) {
        if (!cJSON_IsBool(embed))
            return set_error(job, "embed must be true or false"), BORG_EINPUT;
        job->embed = cJSON_IsTrue(embed) ? JOB_POOL_MEAN : JOB_POOL_NONE;
    }
    if (pooling && !cJSON_IsNull(pooling)) {
        if (!job->embed)
            return set_error(job, "pooling needs \"embed\": true"), BORG_EINPUT;
        if (cJSON_IsString(pooling) && !strcmp(pooling->valuestring, "mean"))
            job->embed = JOB_POOL_MEAN;
        else if (cJSON_IsString(pooling) && !strcmp(pooling->valuestring, "last"))
            job->embed = JOB_POOL_LAST;
        else
            return set_error(job, "pooling must be \"mean\" or \"last\""), BORG_EINPUT;
    }
    if (job->embed && !cJSON_GetObjectItemCaseSensitive(obj, "max_tokens") &&
        !cJSON_GetObjectItemCaseSensitive(obj, "max_completion_tokens"))
        job->max_tokens = 0;
    return BORG_OK;
}

static borg_status parse_native(borg_job *job, const cJSON *obj)
{
    borg_status r = parse_id(job, obj, "id");
    if (r)
        return r;
    if ((r = parse_params(job, obj)))
        return r;
    const cJSON *plp = cJSON_GetObjectItemCaseSensitive(obj, "prompt_logprobs");
    if (plp && !cJSON_IsNull(plp)) {
        if (!cJSON_IsBool(plp))
            return set_error(job, "prompt_logprobs must be true or false"), BORG_EINPUT;
        job->prompt_logprobs = cJSON_IsTrue(plp);
    }
    if ((r = parse_embed(job, obj)))
        return r;
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(obj, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(obj, "prompt_token_ids");
    if ((messages != NULL) + (prompt != NULL) + (ids != NULL) != 1)
        return set_error(job, "a job needs exactly one of prompt, prompt_token_ids or messages"), BORG_EINPUT;
    if (messages) {
        job->shape = JOB_CHAT;
        return parse_messages(job, messages);
    }
    job->shape = JOB_SIMPLE;
    if (ids) {
        if (!cJSON_IsArray(ids))
            return set_error(job, "prompt_token_ids must be an array of token ids"), BORG_EINPUT;
        return parse_token_ids(job, ids, "prompt_token_ids");
    }
    if (!cJSON_IsString(prompt))
        return set_error(job, "prompt must be a string"), BORG_EINPUT;
    return parse_prompt(job, prompt);
}

borg_status job_parse(const char *text, size_t len, long line, long index, borg_job *job, borg_err *err)
{
    memset(job, 0, sizeof *job);
    job->line = line;
    job->index = index;
    job->max_tokens = DEFAULT_MAX_TOKENS;
    job->sampling = (borg_sampling){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f};

    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    borg_status r = BORG_OK;
    if (!obj) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        set_error(job, "invalid JSON near byte %zu", at + 1);
    } else if (!cJSON_IsObject(obj)) {
        set_error(job, "a job must be a JSON object");
    } else if (cJSON_GetObjectItemCaseSensitive(obj, "custom_id") || cJSON_GetObjectItemCaseSensitive(obj, "body")) {
        r = parse_openai(job, obj);
    } else {
        r = parse_native(job, obj);
    }
    cJSON_Delete(obj);
    if (!job->id && asprintf(&job->id, "line-%ld", line) < 0)
        r = BORG_ENOMEM;
    if (r == BORG_ENOMEM || (r != BORG_OK && !job->error)) {
        job_free(job);
        return borg_fail(err, BORG_ENOMEM, "out of memory reading the job on line %ld", line);
    }
    if (!job->error && !job->sampling.seed)
        job->sampling.seed = default_seed(job->id);
    return BORG_OK;
}

/* ---- streaming reader ---- */

struct job_reader {
    FILE *fp;
    char *path;
    int is_array;
    int finished;
    long line; /* current line number (1-based) */
    long index;
    char *buf;
    size_t len, cap;
};

static int next_char(job_reader *r)
{
    int c = getc(r->fp);
    if (c == '\n')
        r->line++;
    return c;
}

static int skip_space(job_reader *r)
{
    int c;
    do
        c = next_char(r);
    while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
    return c;
}

static borg_status buf_push(job_reader *r, char c)
{
    if (r->len + 1 >= r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        char *b = realloc(r->buf, cap);
        if (!b)
            return BORG_ENOMEM;
        r->buf = b;
        r->cap = cap;
    }
    r->buf[r->len++] = c;
    return BORG_OK;
}

borg_status job_reader_open(const char *path, job_reader **out, borg_err *err)
{
    job_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return borg_fail(err, BORG_ENOMEM, "out of memory opening %s", path);
    }
    r->fp = fopen(path, "rb");
    if (!r->fp) {
        job_reader_close(r);
        return borg_fail(err, BORG_EINPUT, "%s: cannot open jobs file: %m", path);
    }
    r->line = 1;
    int c = skip_space(r);
    if (c == '[')
        r->is_array = 1;
    else if (c == EOF)
        r->finished = 1;
    else
        ungetc(c, r->fp); /* JSONL: the first line starts with c */
    *out = r;
    return BORG_OK;
}

/* Reads one JSONL line that is not blank into buf; *got = 0 at EOF. */
static borg_status read_line(job_reader *r, long *start_line, int *got)
{
    for (;;) {
        r->len = 0;
        int c, blank = 1;
        *start_line = r->line;
        while ((c = next_char(r)) != EOF && c != '\n') {
            if (c != ' ' && c != '\t' && c != '\r')
                blank = 0;
            if (buf_push(r, (char)c))
                return BORG_ENOMEM;
        }
        *got = !blank;
        if (!blank || c == EOF)
            return BORG_OK;
    }
}

/* Reads one array element's text into buf, tracking strings and nesting so
 * commas and brackets inside them do not end it; *got = 0 at the closing ']'. */
static borg_status read_element(job_reader *r, long *start_line, int *got)
{
    r->len = 0;
    int c = skip_space(r);
    *start_line = r->line;
    *got = 0;
    if (c == ']' || c == EOF)
        return BORG_OK;
    int depth = 0, in_str = 0, esc = 0;
    for (; c != EOF; c = next_char(r)) {
        if (!in_str && depth == 0 && (c == ',' || c == ']')) {
            if (c == ']')
                r->finished = 1;
            *got = 1;
            return BORG_OK;
        }
        if (buf_push(r, (char)c))
            return BORG_ENOMEM;
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    r->finished = 1; /* unterminated array: this element is what is left */
    *got = 1;
    return BORG_OK;
}

borg_status job_reader_next(job_reader *r, borg_job *job, int *done, borg_err *err)
{
    *done = 0;
    if (r->finished) {
        *done = 1;
        return BORG_OK;
    }
    long start = 0;
    int got = 0;
    if (r->is_array ? read_element(r, &start, &got) : read_line(r, &start, &got))
        return borg_fail(err, BORG_ENOMEM, "%s: out of memory reading line %ld", r->path, r->line);
    if (ferror(r->fp))
        return borg_fail(err, BORG_EIO, "%s: read error near line %ld", r->path, r->line);
    if (got == 0) {
        r->finished = 1;
        *done = 1;
        return BORG_OK;
    }
    borg_status st = job_parse(r->buf, r->len, start, r->index, job, err);
    if (st == BORG_OK)
        r->index++;
    return st;
}

void job_reader_close(job_reader *r)
{
    if (!r)
        return;
    if (r->fp)
        fclose(r->fp);
    free(r->path);
    free(r->buf);
    free(r);
}

int64_t job_file_count(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char buf[1 << 16];
    int64_t lines = 0;
    int blank = 1, first = 1, array = 0;
    size_t n;
    while (!array && (n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++) {
            char ch = buf[i];
            if (first && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
                first = 0;
                array = ch == '[';
            }
            if (ch == '\n') {
                lines += !blank;
                blank = 1;
            } else if (ch != ' ' && ch != '\t' && ch != '\r') {
                blank = 0;
            }
        }
    int bad = ferror(f);
    fclose(f);
    return array || bad ? -1 : lines + !blank;
}
