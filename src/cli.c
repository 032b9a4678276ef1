#include "borg/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char k_overview[] =
    "Usage: borg-infer <command> [options]\n"
    "\n"
    "Batch LLM inference over GGUF models; run under mpirun for a pipeline of ranks.\n"
    "\n"
    "Commands:\n"
    "  run        run a jobs file (JSONL or JSON array) and write one result line per job\n"
    "  info       describe a model file: architecture, layers, tensor types, memory\n"
    "  tokenize   print the token ids of a text\n"
    "  plan       print the layer split over pipeline stages and each stage's memory\n"
    "  cancel     end jobs of a running run (given --run-dir) with status cancelled\n"
    "  status     how a run started with --run-dir is going: jobs done and left, tokens/s, ETA\n"
    "  perplexity perplexity of a text file, computed as llama.cpp's llama-perplexity does\n"
    "\n"
    "Run 'borg-infer <command> --help' for a command's options.\n"
    "Exit codes: 0 done, 1 failure, 2 bad input or usage, 3 incomplete (resumable).\n";

static const char k_run[] =
    "Usage: borg-infer run --model M.gguf --jobs JOBS --out RESULTS [options]\n"
    "\n"
    "Reads jobs (one JSON object per line, or a JSON array) and appends one JSON\n"
    "result line per job to RESULTS as each finishes. Job shapes: {id, prompt |\n"
    "prompt_token_ids | messages, max_tokens, temperature, top_p, top_k, min_p,\n"
    "seed, stop, ignore_eos, prompt_logprobs, priority, timeout_s} and OpenAI Batch API lines\n"
    "{custom_id, method, url, body}, which get OpenAI batch output lines.\n"
    "\n"
    "Options:\n"
    "  --model PATH          GGUF model file (required)\n"
    "  --jobs PATH           jobs file (required)\n"
    "  --out PATH            results file (required; never overwritten without --force)\n"
    "  --force               overwrite an existing results file\n"
    "  --resume              keep the results already in RESULTS (dropping a line torn by\n"
    "                        a crash) and run only the jobs that have none\n"
    "  --threads N           compute threads (default: the CPUs this rank is bound to, divided\n"
    "                        among the computing ranks of its node that share them)\n"
    "  --ctx N               context per sequence in tokens (default: min(model, 4096))\n"
    "  --slots N             sequences decoded together (default 32)\n"
    "  --batch-tokens N      token budget of one micro-batch (default 512)\n"
    "  --replicas R          independent pipelines over the stage ranks (default 1)\n"
    "  --stages P            stages per pipeline (default: all stage ranks / R)\n"
    "  --layers N,N,...      layers per stage, overriding the balanced split\n"
    "  --wire-dtype T        activations between stages: f32 (default, exact), f16, bf16\n"
    "  --kv-dtype T          what the KV cache stores: f16 (default: half the memory per token of\n"
    "                        f32, as llama.cpp's default cache) or f32 (answers closer to exact)\n"
    "  --activations A       what quantized weights multiply: q8 (default; 8-bit codes per 32\n"
    "                        values, as llama.cpp) or f32 (slower, closer to exact); answers\n"
    "                        differ slightly between the two, so resume with the same one.\n"
    "                        Default from BORG_Q8_ACTIVATIONS (0: f32) where set\n"
    "  --run-dir DIR         directory through which `borg-infer cancel` reaches this run;\n"
    "                        DIR/status.json (read by `borg-infer status`) is rewritten every 2 s\n"
    "  --progress-s S        on a terminal, one progress line is redrawn in place (jobs done, %,\n"
    "                        generated tokens/s, ETA, failures); otherwise a progress line (a\n"
    "                        \"progress\" event with --log-json) every S seconds (default 30);\n"
    "                        0: no progress line\n"
    "  --metrics FILE        rewrite FILE every 2 s with the run's metrics in the Prometheus text\n"
    "                        format (jobs by status, tokens, queue, KV slots, job latency\n"
    "                        histogram, per-stage busy time and memory), e.g. for node_exporter's\n"
    "                        textfile collector\n"
    "  --h5 PATH             also write the results to an HDF5 file (h5py, h5dump): per job its\n"
    "                        id, status, prompt and generated token ids, each generated\n"
    "                        token's log-probability, finish reason and timings; embeddings\n"
    "                        in /embeddings; kept in step with RESULTS (--force, --resume)\n"
    "  --trace FILE          a Chrome trace-event JSON file (Perfetto opens it): a track per\n"
    "                        rank, a span per micro-batch on each stage with its prefill and\n"
    "                        decode tokens, rank 0's round trips and recoveries (at most\n"
    "                        1,000,000 events)\n"
    "  --drain-s S           after SIGTERM/SIGUSR1/SIGINT, finish work in flight for up to S\n"
    "                        seconds, then exit 3 (resumable) (default 30)\n"
    "  --deadline S          run-wide time limit: jobs still running then end with status\n"
    "                        timeout, unread jobs are left for --resume (exit 3)\n"
    "  --verify-model        every stage hashes its whole model file and rank 0 compares it\n"
    "                        with its own (by default: size, header, tensor table and 64\n"
    "                        samples of the data)\n"
    "  --quiet               warnings and errors only on stderr: no progress line or summary\n"
    "                        (--metrics and the status file are still written)\n"
    "  --verbose             also debug events (the run spec sent, each stage ready)\n"
    "  --log-json            stderr as one JSON object per line (time, level, rank, event,\n"
    "                        job, the event's fields, msg) instead of sentences\n"
    "\n"
    "Under mpirun with K ranks, rank 0 coordinates and ranks 1..K-1 run the\n"
    "layers (K - 1 = replicas x stages; with both --replicas and --stages given, ranks\n"
    "past those are spares, which take a failed rank's place); without mpirun one\n"
    "process does both.\n";

static const char k_perplexity[] =
    "Usage: borg-infer perplexity --model M.gguf --text FILE [--ctx N] [--chunks K] [--out S.json] [options]\n"
    "\n"
    "Perplexity of a text file as llama.cpp's llama-perplexity computes it, so the\n"
    "figures compare: the text is tokenized once (BOS first where the model adds\n"
    "one), cut into non-overlapping chunks of N tokens (each opening with BOS where\n"
    "the model adds one), and the second half of every chunk is scored. Runs in one\n"
    "process or, under mpirun, through the pipeline. Prints the estimate and writes\n"
    "a JSON summary (estimate, its error, per-chunk figures).\n"
    "\n"
    "Options:\n"
    "  --model PATH          GGUF model file (required)\n"
    "  --text PATH           the text (required; at least 2 x N tokens)\n"
    "  --ctx N               tokens per chunk (default 512)\n"
    "  --chunks K            score only the first K chunks (default: all)\n"
    "  --out PATH            the JSON summary (default perplexity.json)\n"
    "  --progress-s S, --metrics FILE  as for run, counting chunks as jobs\n"
    "  --threads, --slots, --batch-tokens, --replicas, --stages, --layers, --wire-dtype,\n"
    "  --kv-dtype, --activations, --verify-model, --quiet, --verbose, --log-json  as for run\n";

static const char k_info[] = "Usage: borg-infer info --model M.gguf\n"
                             "\n"
                             "Prints the architecture, hyper-parameters, tensor types, parameter count and\n"
                             "memory needs of a GGUF model. Exit code 2 if the file is malformed.\n";

static const char k_plan[] =
    "Usage: borg-infer plan --model M.gguf --stages P [--layers N,N,...] [--ctx N] [--slots N] [--batch-tokens N]\n"
    "                       [--kv-dtype f16|f32]\n"
    "\n"
    "Prints which layers each of P pipeline stages would hold (balanced by the\n"
    "weight bytes each streams per token) and the memory each needs, without\n"
    "running anything.\n";

static const char k_cancel[] = "Usage: borg-infer cancel --run-dir DIR ID...\n"
                               "\n"
                               "Asks the run started with --run-dir DIR to end the jobs with these ids\n"
                               "(status cancelled, with the text produced so far). Jobs not yet read are\n"
                               "cancelled when they are.\n";

static const char k_status[] = "Usage: borg-infer status --run-dir DIR\n"
                               "\n"
                               "Prints how the run started with --run-dir DIR is going, from DIR/status.json\n"
                               "(rewritten by the run every 2 s): its state (running, finished, stopped), jobs\n"
                               "done and left by status, generated tokens/s, ETA, per-stage busy time and peak\n"
                               "memory, and how old the file is. Exit code 2 if no run has written one.\n";

static const char k_tokenize[] = "Usage: borg-infer tokenize --model M.gguf [--no-special] TEXT\n"
                                 "\n"
                                 "Prints the token ids of TEXT, space-separated, as the model's tokenizer\n"
                                 "encodes a prompt (special-token text such as <|im_start|> becomes its id\n"
                                 "unless --no-special is given).\n";

void cli_usage(FILE *out, borg_command cmd)
{
    switch (cmd) {
    case CMD_RUN: fputs(k_run, out); break;
    case CMD_INFO: fputs(k_info, out); break;
    case CMD_TOKENIZE: fputs(k_tokenize, out); break;
    case CMD_PLAN: fputs(k_plan, out); break;
    case CMD_CANCEL: fputs(k_cancel, out); break;
    case CMD_PERPLEXITY: fputs(k_perplexity, out); break;
    case CMD_STATUS: fputs(k_status, out); break;
    default: fputs(k_overview, out); break;
    }
}

static borg_status parse_int(const char *opt, const char *s, long lo, long hi, long *out, borg_err *err)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi)
        return borg_fail(err, BORG_EUSAGE, "%s needs an integer between %ld and %ld (got '%s')", opt, lo, hi,
                         s ? s : "");
    *out = v;
    return BORG_OK;
}

borg_status cli_parse(int argc, char **argv, borg_config *cfg, borg_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->slots = 32;
    cfg->batch_tokens = 512;
    cfg->wire_dtype = WIRE_F32;
    cfg->kv_dtype = BORG_DT_F16;
    cfg->drain_s = 30;
    cfg->progress_s = 30;
    if (argc < 2) {
        cfg->command = CMD_HELP;
        return BORG_OK;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        cfg->command = CMD_RUN;
    else if (!strcmp(cmd, "info"))
        cfg->command = CMD_INFO;
    else if (!strcmp(cmd, "tokenize"))
        cfg->command = CMD_TOKENIZE;
    else if (!strcmp(cmd, "plan"))
        cfg->command = CMD_PLAN;
    else if (!strcmp(cmd, "cancel"))
        cfg->command = CMD_CANCEL;
    else if (!strcmp(cmd, "perplexity"))
        cfg->command = CMD_PERPLEXITY;
    else if (!strcmp(cmd, "status"))
        cfg->command = CMD_STATUS;
    else if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        cfg->command = CMD_HELP;
        return BORG_OK;
    } else if (!strcmp(cmd, "--version")) {
        cfg->command = CMD_VERSION;
        return BORG_OK;
    } else
        return borg_fail(err, BORG_EUSAGE, "unknown command '%s' (try --help)", cmd);

    borg_command sub = cfg->command;
    /* Options that shape how the layers run are the run's, for perplexity too. */
    const int runs = sub == CMD_RUN || sub == CMD_PERPLEXITY;
    if (sub == CMD_PERPLEXITY) {
        cfg->ppl_ctx = 512;
        cfg->out = "perplexity.json";
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        borg_status st = BORG_OK;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cfg->command = CMD_HELP;
            cfg->text = cmd; /* which command's help */
            return BORG_OK;
        } else if (!strcmp(a, "--run-dir") && v && (sub == CMD_RUN || sub == CMD_CANCEL || sub == CMD_STATUS)) {
            cfg->run_dir = v, i++;
        } else if (!strcmp(a, "--metrics") && v && runs) {
            cfg->metrics = v, i++;
        } else if (!strcmp(a, "--trace") && v && runs) {
            cfg->trace = v, i++;
        } else if (!strcmp(a, "--h5") && v && sub == CMD_RUN) {
            cfg->h5 = v, i++;
        } else if (!strcmp(a, "--progress-s") && runs) {
            char *end;
            double d = v ? strtod(v, &end) : -1;
            if (!v || *end || end == v || !(d >= 0 && d < 1e9))
                return borg_fail(err, BORG_EUSAGE, "%s needs a number of seconds (got '%s')", a, v ? v : "");
            cfg->progress_s = d;
            i++;
        } else if ((!strcmp(a, "--drain-s") || !strcmp(a, "--deadline")) && sub == CMD_RUN) {
            char *end;
            double d = v ? strtod(v, &end) : -1;
            if (!v || *end || end == v || !(d >= 0 && d < 1e9))
                return borg_fail(err, BORG_EUSAGE, "%s needs a number of seconds (got '%s')", a, v ? v : "");
            if (!strcmp(a, "--drain-s"))
                cfg->drain_s = d;
            else
                cfg->deadline_s = d;
            i++;
        } else if (sub == CMD_CANCEL && a[0] != '-') {
            if (!cfg->cancel_ids)
                cfg->cancel_ids = argv + i;
            if (cfg->cancel_ids + cfg->n_cancel_ids != argv + i)
                return borg_fail(err, BORG_EUSAGE, "cancel: give the ids after the options");
            cfg->n_cancel_ids++;
        } else if (!strcmp(a, "--model") && v && sub != CMD_CANCEL && sub != CMD_STATUS) {
            cfg->model = v, i++;
        } else if (!strcmp(a, "--jobs") && v && sub == CMD_RUN) {
            cfg->jobs = v, i++;
        } else if (!strcmp(a, "--out") && v && runs) {
            cfg->out = v, i++;
        } else if (!strcmp(a, "--force") && sub == CMD_RUN) {
            cfg->force = 1;
        } else if (!strcmp(a, "--resume") && sub == CMD_RUN) {
            cfg->resume = 1;
        } else if (!strcmp(a, "--quiet") && runs) {
            cfg->quiet = 1;
        } else if (!strcmp(a, "--verbose") && runs) {
            cfg->verbose = 1;
        } else if (!strcmp(a, "--log-json") && runs) {
            cfg->log_json = 1;
        } else if (!strcmp(a, "--verify-model") && runs) {
            cfg->verify_model = 1;
        } else if (!strcmp(a, "--no-special") && sub == CMD_TOKENIZE) {
            cfg->no_special = 1;
        } else if (!strcmp(a, "--threads") && runs) {
            if (!(st = parse_int(a, v, 1, 1024, &n, err)))
                cfg->threads = (int)n, i++;
        } else if (!strcmp(a, "--replicas") && runs) {
            if (!(st = parse_int(a, v, 1, 4096, &n, err)))
                cfg->replicas = (int)n, i++;
        } else if (!strcmp(a, "--stages") && (runs || sub == CMD_PLAN)) {
            if (!(st = parse_int(a, v, 1, 256, &n, err)))
                cfg->stages = (int)n, i++;
        } else if (!strcmp(a, "--layers") && v && (runs || sub == CMD_PLAN)) {
            cfg->layers = v, i++;
        } else if (!strcmp(a, "--wire-dtype") && v && runs) {
            if (!strcmp(v, "f32"))
                cfg->wire_dtype = WIRE_F32;
            else if (!strcmp(v, "f16"))
                cfg->wire_dtype = WIRE_F16;
            else if (!strcmp(v, "bf16"))
                cfg->wire_dtype = WIRE_BF16;
            else
                return borg_fail(err, BORG_EUSAGE, "--wire-dtype must be f32, f16 or bf16 (got '%s')", v);
            i++;
        } else if (!strcmp(a, "--kv-dtype") && v && (runs || sub == CMD_PLAN)) {
            if (!strcmp(v, "f16"))
                cfg->kv_dtype = BORG_DT_F16;
            else if (!strcmp(v, "f32"))
                cfg->kv_dtype = BORG_DT_F32;
            else
                return borg_fail(err, BORG_EUSAGE, "--kv-dtype must be f16 or f32 (got '%s')", v);
            i++;
        } else if (!strcmp(a, "--activations") && v && runs) {
            if (!strcmp(v, "q8"))
                cfg->activations = 8;
            else if (!strcmp(v, "f32"))
                cfg->activations = 32;
            else
                return borg_fail(err, BORG_EUSAGE, "--activations must be q8 or f32 (got '%s')", v);
            i++;
        } else if (!strcmp(a, "--ctx") && sub == CMD_PERPLEXITY) {
            if (!(st = parse_int(a, v, 4, 1 << 20, &n, err)))
                cfg->ppl_ctx = (int)n, i++;
        } else if (!strcmp(a, "--chunks") && sub == CMD_PERPLEXITY) {
            if (!(st = parse_int(a, v, 1, 1 << 24, &n, err)))
                cfg->ppl_chunks = (int)n, i++;
        } else if (!strcmp(a, "--text") && v && sub == CMD_PERPLEXITY) {
            cfg->text = v, i++;
        } else if (!strcmp(a, "--ctx") && (sub == CMD_RUN || sub == CMD_PLAN)) {
            if (!(st = parse_int(a, v, 2, 1 << 24, &n, err)))
                cfg->ctx = (int32_t)n, i++;
        } else if (!strcmp(a, "--slots") && (runs || sub == CMD_PLAN)) {
            if (!(st = parse_int(a, v, 1, 4096, &n, err)))
                cfg->slots = (int)n, i++;
        } else if (!strcmp(a, "--batch-tokens") && (runs || sub == CMD_PLAN)) {
            if (!(st = parse_int(a, v, 1, 1 << 20, &n, err)))
                cfg->batch_tokens = (int)n, i++;
        } else if (sub == CMD_TOKENIZE && a[0] != '-' && !cfg->text) {
            cfg->text = a;
        } else if (sub == CMD_TOKENIZE && !strcmp(a, "--") && v && !cfg->text) {
            cfg->text = v, i++;
        } else {
            return borg_fail(err, BORG_EUSAGE, "%s: unknown option or missing value '%s' (try 'borg-infer %s --help')",
                             cmd, a, cmd);
        }
        if (st)
            return st;
    }
    if (sub == CMD_CANCEL) {
        if (!cfg->run_dir || !cfg->n_cancel_ids)
            return borg_fail(err, BORG_EUSAGE, "cancel: give --run-dir and at least one job id");
        return BORG_OK;
    }
    if (sub == CMD_STATUS) {
        if (!cfg->run_dir)
            return borg_fail(err, BORG_EUSAGE, "status: give --run-dir DIR (the run's --run-dir)");
        return BORG_OK;
    }
    if (!cfg->model)
        return borg_fail(err, BORG_EUSAGE, "%s: --model is required", cmd);
    if (sub == CMD_RUN && (!cfg->jobs || !cfg->out))
        return borg_fail(err, BORG_EUSAGE, "run: --jobs and --out are required");
    if (cfg->force && cfg->resume)
        return borg_fail(err, BORG_EUSAGE, "run: --force and --resume contradict each other");
    if (sub == CMD_PLAN && !cfg->stages)
        return borg_fail(err, BORG_EUSAGE, "plan: --stages is required");
    if (sub == CMD_TOKENIZE && !cfg->text)
        return borg_fail(err, BORG_EUSAGE, "tokenize: give the TEXT to tokenize");
    if (sub == CMD_PERPLEXITY && !cfg->text)
        return borg_fail(err, BORG_EUSAGE, "perplexity: --text is required");
    /* A chunk is a whole prompt scored in one slot: the slot holds it and
     * the one token every prompt is allowed beyond it. Every rank parses
     * the same arguments, so every rank sizes its cache the same. */
    if (sub == CMD_PERPLEXITY)
        cfg->ctx = cfg->ppl_ctx + 1;
    return BORG_OK;
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t cli_run_options_hash(const borg_config *cfg)
{
    const int32_t v[] = {
        cfg->ctx,      cfg->slots,  cfg->batch_tokens, (int32_t)cfg->wire_dtype, (int32_t)cfg->kv_dtype,
        cfg->replicas, cfg->stages, cfg->verify_model};
    uint64_t h = mix(0xcbf29ce484222325ull, v, sizeof v);
    return cfg->layers ? mix(h, cfg->layers, strlen(cfg->layers)) : h;
}
