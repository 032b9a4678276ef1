#define _GNU_SOURCE
#include "borg/summary.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "borg/kvcache.h"
#include "borg/log.h"
#include "borg/proc.h"

static void write_json(const run_summary *s, cJSON *o)
{
    char *text = cJSON_Print(o);
    char *path = NULL;
    if (text && asprintf(&path, "%s.summary.json", s->results_path) >= 0) {
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "%s\n", text);
            if (fclose(f))
                log_msg(LOG_WARN, "could not write %s", path);
        } else {
            log_msg(LOG_WARN, "could not create %s", path);
        }
    }
    free(path);
    free(text);
}

static void add_rank(const run_summary *s, cJSON *ranks, int i)
{
    const stage_stats *st = &s->ranks[i];
    double busy = st->wall_s > 0 ? st->busy_s / st->wall_s : 0;
    int rank = s->in_process ? 0 : i + 1;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "rank", rank);
    cJSON_AddStringToObject(r, "role", s->in_process ? "stage (in rank 0's process)" : "stage");
    cJSON_AddNumberToObject(r, "replica", st->replica);
    cJSON_AddNumberToObject(r, "stage", st->stage);
    cJSON_AddNumberToObject(r, "layer_begin", st->layer_begin);
    cJSON_AddNumberToObject(r, "layer_end", st->layer_end);
    cJSON_AddNumberToObject(r, "batches", (double)st->batches);
    cJSON_AddNumberToObject(r, "tokens", (double)st->tokens);
    cJSON_AddNumberToObject(r, "busy_s", st->busy_s);
    cJSON_AddNumberToObject(r, "wall_s", st->wall_s);
    cJSON_AddNumberToObject(r, "busy_fraction", busy);
    cJSON_AddNumberToObject(r, "peak_rss_mib", st->peak_rss_mib);
    cJSON_AddNumberToObject(r, "threads", st->threads);
    cJSON_AddStringToObject(r, "kv_dtype", kv_dtype_name((borg_dtype)st->kv_dtype));
    cJSON_AddNumberToObject(r, "kv_bytes_per_token", (double)st->kv_bytes_per_token);
    cJSON_AddItemToArray(ranks, r);
    log_event(LOG_INFO, "rank_summary", NULL,
              LOG_FIELDS(LOG_I("of_rank", rank), LOG_I("replica", st->replica), LOG_I("stage", st->stage),
                         LOG_I("layer_begin", st->layer_begin), LOG_I("layer_end", st->layer_end),
                         LOG_I("batches", st->batches), LOG_F("busy_fraction", busy),
                         LOG_F("peak_rss_mib", st->peak_rss_mib),
                         LOG_S("kv_dtype", kv_dtype_name((borg_dtype)st->kv_dtype)),
                         LOG_I("kv_bytes_per_token", st->kv_bytes_per_token)),
              "  rank %d: replica %d stage %d, layers %d-%d, %d thread(s), %lld batches, busy %.0f%%, peak memory "
              "%.1f MiB, KV cache %s %.1f KiB per token%s",
              rank, st->replica, st->stage, st->layer_begin, st->layer_end - 1, st->threads, (long long)st->batches,
              busy * 100, st->peak_rss_mib, kv_dtype_name((borg_dtype)st->kv_dtype), st->kv_bytes_per_token / 1024.0,
              s->in_process ? " (in rank 0's process)" : "");
}

void summary_write(const run_summary *s)
{
    const results_writer *w = s->results;
    long ok = results_count(w, RESULT_OK), bad = results_count(w, RESULT_ERROR);
    long to = results_count(w, RESULT_TIMEOUT), cn = results_count(w, RESULT_CANCELLED);
    double tps = s->wall_s > 0 ? s->generated_tokens / s->wall_s : 0;
    int64_t crc = s->damaged_frames;
    for (int i = 0; i < s->n_ranks; i++)
        crc += s->ranks[i].crc_errors;
    /* A token's KV memory: the share of each stage of one pipeline. */
    int64_t kv_token = 0;
    const char *kv_dtype = NULL;
    for (int i = 0; i < s->n_ranks; i++)
        if (s->ranks[i].replica == 0) {
            kv_token += s->ranks[i].kv_bytes_per_token;
            kv_dtype = kv_dtype_name((borg_dtype)s->ranks[i].kv_dtype);
        }
    char kv[64] = "";
    if (kv_dtype)
        snprintf(kv, sizeof kv, "; KV cache %s, %.1f KiB per token", kv_dtype, kv_token / 1024.0);
    if (results_resumed(w))
        log_event(LOG_INFO, "resumed", NULL, LOG_FIELDS(LOG_I("results", results_resumed(w))),
                  "resumed: %ld results were already in %s", results_resumed(w), s->results_path);
    log_event(LOG_INFO, "run_summary", NULL,
              LOG_FIELDS(LOG_I("ok", ok), LOG_I("error", bad), LOG_I("timeout", to), LOG_I("cancelled", cn),
                         LOG_I("prompt_tokens", s->prompt_tokens), LOG_I("generated_tokens", s->generated_tokens),
                         LOG_F("wall_s", s->wall_s), LOG_I("recoveries", s->recoveries), LOG_I("damaged_frames", crc),
                         LOG_S("kv_dtype", kv_dtype), LOG_I("kv_bytes_per_token", kv_token)),
              "%ld jobs (%ld ok, %ld error, %ld timeout, %ld cancelled); %ld prompt + %ld generated tokens in %.2f s "
              "(%.1f generated tokens/s)%s",
              ok + bad + to + cn, ok, bad, to, cn, s->prompt_tokens, s->generated_tokens, s->wall_s, tps, kv);
    if (crc)
        log_msg(LOG_INFO, "  %lld damaged frame(s) detected and their batches recomputed", (long long)crc);

    cJSON *o = cJSON_CreateObject();
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    cJSON_AddNumberToObject(jobs, "ok", ok);
    cJSON_AddNumberToObject(jobs, "error", bad);
    cJSON_AddNumberToObject(jobs, "timeout", to);
    cJSON_AddNumberToObject(jobs, "cancelled", cn);
    cJSON_AddNumberToObject(o, "resumed", results_resumed(w));
    cJSON_AddNumberToObject(o, "prompt_tokens", s->prompt_tokens);
    cJSON_AddNumberToObject(o, "generated_tokens", s->generated_tokens);
    cJSON_AddNumberToObject(o, "wall_s", s->wall_s);
    cJSON_AddNumberToObject(o, "generated_tokens_per_s", tps);
    cJSON_AddNumberToObject(o, "damaged_frames", (double)crc);
    cJSON_AddNumberToObject(o, "recoveries", s->recoveries);
    cJSON_AddNumberToObject(o, "replicas", s->replicas);
    cJSON_AddNumberToObject(o, "stages", s->stages);
    if (kv_dtype)
        cJSON_AddStringToObject(o, "kv_dtype", kv_dtype);
    cJSON_AddNumberToObject(o, "kv_bytes_per_token", (double)kv_token);
    cJSON *ranks = cJSON_AddArrayToObject(o, "ranks");
    double rss0 = proc_peak_rss_mib();
    const char *role = s->in_process ? "coordinator+stage" : "coordinator";
    cJSON *r0 = cJSON_CreateObject();
    cJSON_AddNumberToObject(r0, "rank", 0);
    cJSON_AddStringToObject(r0, "role", role);
    cJSON_AddNumberToObject(r0, "peak_rss_mib", rss0);
    cJSON_AddItemToArray(ranks, r0);
    log_msg(LOG_INFO, "  rank 0: %s, peak memory %.1f MiB", role, rss0);
    for (int i = 0; i < s->n_ranks; i++)
        add_rank(s, ranks, i);
    write_json(s, o);
    cJSON_Delete(o);
}
