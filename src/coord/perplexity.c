#define _GNU_SOURCE
#include "borg/perplexity.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "borg/coordinator.h"
#include "borg/gguf.h"
#include "borg/kvcache.h"
#include "borg/matmul.h"
#include "borg/proc.h"
#include "borg/tokenizer.h"

/* The work files of one run, in a fresh directory under TMPDIR. */
typedef struct {
    char dir[4096];
    char jobs[4200], scores[4200], summary[4300];
} work_files;

static borg_status read_text(const char *path, char **out, size_t *len, borg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return borg_fail(err, BORG_EINPUT, "cannot open the text file '%s'", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) {
            char *b = realloc(buf, cap = 2 * cap + 65536);
            if (!b) {
                free(buf);
                fclose(f);
                return borg_fail(err, BORG_ENOMEM, "out of memory reading '%s'", path);
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return borg_fail(err, BORG_EIO, "cannot read the text file '%s'", path);
    }
    *out = buf;
    *len = n;
    return BORG_OK;
}

/* The text's tokens, as llama-perplexity takes them: one encoding of the
 * whole file, special-token text left as text. */
static borg_status text_tokens(const borg_config *cfg, int32_t **ids, size_t *n, int32_t *bos, borg_err *err)
{
    gguf_file *f = NULL;
    borg_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    borg_status st;
    if ((st = gguf_open(cfg->model, &f, err)) || (st = tokenizer_load(f, &tok, err)) ||
        (st = read_text(cfg->text, &text, &len, err)))
        goto done;
    *bos = tokenizer_adds_bos(tok) ? tokenizer_bos(tok) : -1;
    if (len && text[len - 1] == '\n')
        len--; /* llama.cpp's -f drops one final newline */
    st = tokenizer_encode(tok, text, len, 1, 0, ids, n, err);
done:
    free(text);
    tokenizer_free(tok);
    gguf_close(f);
    return st;
}

static borg_status write_jobs(const char *path, const int32_t *ids, int n_chunks, int n_ctx, int32_t bos, borg_err *err)
{
    FILE *o = fopen(path, "w");
    if (!o)
        return borg_fail(err, BORG_EIO, "cannot write '%s'", path);
    for (int c = 0; c < n_chunks; c++) {
        fprintf(o, "{\"id\":\"chunk-%d\",\"max_tokens\":0,\"prompt_logprobs\":true,\"prompt_token_ids\":[", c);
        for (int j = 0; j < n_ctx; j++)
            fprintf(o, "%s%d", j ? "," : "", (int)(j == 0 && bos >= 0 ? bos : ids[(size_t)c * n_ctx + j]));
        fputs("]}\n", o);
    }
    if (fclose(o) != 0)
        return borg_fail(err, BORG_EIO, "cannot write '%s'", path);
    return BORG_OK;
}

/* Sums the scored half of every chunk from the result lines: nll[c] and
 * nll2[c] get chunk c's sums of -logprob and its square. */
static borg_status read_scores(const char *path, int n_chunks, int n_ctx, double *nll, double *nll2, borg_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return borg_fail(err, BORG_EIO, "cannot read the scores in '%s'", path);
    char *line = NULL;
    size_t cap = 0;
    int seen = 0;
    borg_status st = BORG_OK;
    const int first = n_ctx / 2;
    while (!st && getline(&line, &cap, f) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(o, "status");
        const cJSON *lp = cJSON_GetObjectItemCaseSensitive(o, "prompt_logprobs");
        int c = -1;
        if (!cJSON_IsString(id) || sscanf(id->valuestring, "chunk-%d", &c) != 1 || c < 0 || c >= n_chunks)
            st = borg_fail(err, BORG_EINTERNAL, "unexpected result line in '%s'", path);
        else if (!cJSON_IsString(status) || strcmp(status->valuestring, "ok"))
            st = borg_fail(err, BORG_EINTERNAL, "chunk %d was not scored: %s", c,
                           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error")));
        else if (!cJSON_IsArray(lp) || cJSON_GetArraySize(lp) != n_ctx)
            st = borg_fail(err, BORG_EINTERNAL, "chunk %d came back with %d scores, not %d", c, cJSON_GetArraySize(lp),
                           n_ctx);
        for (int j = first + 1; !st && j < n_ctx; j++) {
            const cJSON *v = cJSON_GetArrayItem(lp, j);
            if (!cJSON_IsNumber(v))
                st = borg_fail(err, BORG_EINTERNAL, "chunk %d: token %d has no score", c, j);
            else {
                nll[c] -= v->valuedouble;
                nll2[c] += v->valuedouble * v->valuedouble;
            }
        }
        cJSON_Delete(o);
        seen += !st;
    }
    free(line);
    fclose(f);
    if (!st && seen != n_chunks)
        st = borg_fail(err, BORG_EINTERNAL, "%d of %d chunks were scored", seen, n_chunks);
    return st;
}

static borg_status write_summary(const borg_config *cfg, int n_ctx, int n_chunks, size_t n_tokens, long count,
                                 double ppl, double ppl_err, const double *nll, double wall_s, borg_err *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", cfg->model);
    cJSON_AddStringToObject(o, "text", cfg->text);
    cJSON_AddNumberToObject(o, "ctx", n_ctx);
    cJSON_AddNumberToObject(o, "chunks", n_chunks);
    cJSON_AddNumberToObject(o, "text_tokens", (double)n_tokens);
    cJSON_AddNumberToObject(o, "scored_tokens", (double)count);
    cJSON_AddStringToObject(o, "activations", matmul_q8_activations() ? "q8" : "f32");
    cJSON_AddStringToObject(o, "kv_dtype", kv_dtype_name(cfg->kv_dtype));
    cJSON_AddNumberToObject(o, "perplexity", ppl);
    cJSON_AddNumberToObject(o, "perplexity_error", ppl_err);
    cJSON *chunks = cJSON_AddArrayToObject(o, "chunk_perplexity");
    const double per_chunk = (double)(n_ctx - 1 - n_ctx / 2);
    for (int c = 0; c < n_chunks; c++)
        cJSON_AddItemToArray(chunks, cJSON_CreateNumber(exp(nll[c] / per_chunk)));
    cJSON_AddNumberToObject(o, "wall_s", wall_s);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    FILE *f = s ? fopen(cfg->out, "w") : NULL;
    int ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    free(s);
    return ok ? BORG_OK : borg_fail(err, BORG_EIO, "cannot write the summary '%s'", cfg->out);
}

static borg_status make_work_files(work_files *w, borg_err *err)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(w->dir, sizeof w->dir, "%s/borg-perplexity-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(w->dir))
        return borg_fail(err, BORG_EIO, "cannot create a work directory under %s", tmp && *tmp ? tmp : "/tmp");
    snprintf(w->jobs, sizeof w->jobs, "%s/chunks.jsonl", w->dir);
    snprintf(w->scores, sizeof w->scores, "%s/scores.jsonl", w->dir);
    snprintf(w->summary, sizeof w->summary, "%s.summary.json", w->scores);
    return BORG_OK;
}

static void remove_work_files(const work_files *w)
{
    unlink(w->jobs);
    unlink(w->scores);
    unlink(w->summary);
    rmdir(w->dir);
}

borg_status perplexity_run(const borg_config *cfg, borg_net *net, FILE *out, borg_err *err)
{
    const double t0 = proc_now_s();
    const int n_ctx = cfg->ppl_ctx;
    int32_t *ids = NULL, bos = -1;
    size_t n_tokens = 0;
    borg_status st = text_tokens(cfg, &ids, &n_tokens, &bos, err);
    if (st)
        return st;
    if (n_tokens < 2 * (size_t)n_ctx) {
        free(ids);
        return borg_fail(err, BORG_EINPUT, "%s: %zu tokens; perplexity with --ctx %d needs at least %d", cfg->text,
                         n_tokens, n_ctx, 2 * n_ctx);
    }
    int n_chunks = (int)(n_tokens / (size_t)n_ctx);
    if (cfg->ppl_chunks && cfg->ppl_chunks < n_chunks)
        n_chunks = cfg->ppl_chunks;

    work_files w;
    if ((st = make_work_files(&w, err))) {
        free(ids);
        return st;
    }
    st = write_jobs(w.jobs, ids, n_chunks, n_ctx, bos, err);
    free(ids);
    borg_config run = *cfg;
    run.command = CMD_RUN;
    run.jobs = w.jobs;
    run.out = w.scores;
    run.force = 1;
    double *nll = calloc((size_t)n_chunks * 2, sizeof *nll);
    if (!st && !nll)
        st = borg_fail(err, BORG_ENOMEM, "out of memory");
    if (!st)
        st = coordinator_run(&run, net, err);
    if (!st)
        st = read_scores(w.scores, n_chunks, n_ctx, nll, nll + n_chunks, err);
    if (!st) {
        /* llama-perplexity's estimate and its standard error. */
        const long count = (long)n_chunks * (n_ctx - 1 - n_ctx / 2);
        double sum = 0, sum2 = 0;
        for (int c = 0; c < n_chunks; c++) {
            sum += nll[c];
            sum2 += nll[n_chunks + c];
        }
        const double mean = sum / count, var = sum2 / count - mean * mean;
        const double ppl = exp(mean);
        const double ppl_err = var > 0 && count > 1 ? sqrt(var / (count - 1)) * ppl : 0;
        fprintf(out, "perplexity: %.4f +/- %.5f (%d chunks of %d tokens, %ld scored, %s activations, %s KV cache)\n",
                ppl, ppl_err, n_chunks, n_ctx, count, matmul_q8_activations() ? "q8" : "f32",
                kv_dtype_name(cfg->kv_dtype));
        st = write_summary(cfg, n_ctx, n_chunks, n_tokens, count, ppl, ppl_err, nll, proc_now_s() - t0, err);
    }
    free(nll);
    remove_work_files(&w);
    return st;
}
