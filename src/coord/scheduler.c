#include "borg/scheduler.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t req;
    int32_t *tokens; /* prompt then generated */
    int32_t n_tokens, cap;
    int32_t n_prompt;
    int32_t n_past; /* tokens already in the KV cache */
    int32_t first_step;
    int32_t n_score; /* leading tokens whose log-probabilities are wanted */
    int32_t n_embed; /* leading tokens whose final hidden states are wanted */
    int in_flight;
    int priority;
    int64_t order; /* arrival, to keep admission first-come among equals */
    borg_sampling sampling;
} sched_seq;

struct borg_sched {
    int n_slots;
    int32_t slot_ctx;
    int batch_tokens;
    sched_seq **slots; /* active sequence per KV slot, or NULL */
    sched_seq **waiting;
    int n_waiting, cap_waiting;
    int n_active;
    int n_in_flight;
    int64_t next_order;
    int rr;     /* slot to start prefill from, so long prompts share the budget */
    int closed; /* admission off */
};

borg_status sched_create(int n_slots, int32_t slot_ctx, int batch_tokens, borg_sched **out, borg_err *err)
{
    if (n_slots < 1 || slot_ctx < 2 || batch_tokens < 1)
        return borg_fail(err, BORG_EUSAGE, "scheduler needs at least 1 slot, 2 positions and 1 token per batch");
    borg_sched *s = calloc(1, sizeof *s);
    if (!s || !(s->slots = calloc((size_t)n_slots, sizeof *s->slots))) {
        free(s);
        return borg_fail(err, BORG_ENOMEM, "out of memory creating the scheduler");
    }
    s->n_slots = n_slots;
    s->slot_ctx = slot_ctx;
    s->batch_tokens = batch_tokens;
    *out = s;
    return BORG_OK;
}

static void seq_free(sched_seq *q)
{
    if (q) {
        free(q->tokens);
        free(q);
    }
}

void sched_free(borg_sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_slots; i++)
        seq_free(s->slots[i]);
    for (int i = 0; i < s->n_waiting; i++)
        seq_free(s->waiting[i]);
    free(s->slots);
    free(s->waiting);
    free(s);
}

borg_status sched_submit(borg_sched *s, int64_t req, const int32_t *prompt, int32_t n_prompt, int32_t first_step,
                         int32_t n_score, int32_t n_embed, const borg_sampling *sampling, int priority, borg_err *err)
{
    if (n_prompt < 1 || n_prompt >= s->slot_ctx)
        return borg_fail(err, BORG_EINTERNAL, "request %lld: prompt of %d tokens does not fit a slot of %d",
                         (long long)req, (int)n_prompt, (int)s->slot_ctx);
    if (s->n_waiting == s->cap_waiting) {
        int cap = s->cap_waiting ? 2 * s->cap_waiting : 64;
        sched_seq **w = realloc(s->waiting, sizeof *w * (size_t)cap);
        if (!w)
            return borg_fail(err, BORG_ENOMEM, "out of memory queueing request %lld", (long long)req);
        s->waiting = w;
        s->cap_waiting = cap;
    }
    sched_seq *q = calloc(1, sizeof *q);
    int32_t cap = n_prompt + 64 < s->slot_ctx ? n_prompt + 64 : s->slot_ctx;
    if (!q || !(q->tokens = malloc(sizeof(int32_t) * (size_t)cap))) {
        free(q);
        return borg_fail(err, BORG_ENOMEM, "out of memory queueing request %lld", (long long)req);
    }
    memcpy(q->tokens, prompt, sizeof(int32_t) * (size_t)n_prompt);
    q->req = req;
    q->n_tokens = q->n_prompt = n_prompt;
    q->first_step = first_step;
    q->n_score = n_score;
    q->n_embed = n_embed;
    q->cap = cap;
    q->priority = priority;
    q->order = s->next_order++;
    q->sampling = *sampling;
    s->waiting[s->n_waiting++] = q;
    return BORG_OK;
}

/* Index of the waiting sequence to admit next: highest priority, then
 * earliest arrival. */
static int next_waiting(const borg_sched *s)
{
    int best = -1;
    for (int i = 0; i < s->n_waiting; i++) {
        const sched_seq *q = s->waiting[i];
        if (best < 0 || q->priority > s->waiting[best]->priority ||
            (q->priority == s->waiting[best]->priority && q->order < s->waiting[best]->order))
            best = i;
    }
    return best;
}

static void admit(borg_sched *s, int64_t *admitted, int *n_admitted)
{
    *n_admitted = 0;
    for (int slot = 0; !s->closed && slot < s->n_slots && s->n_waiting > 0; slot++) {
        if (s->slots[slot])
            continue;
        int w = next_waiting(s);
        s->slots[slot] = s->waiting[w];
        s->waiting[w] = s->waiting[--s->n_waiting];
        s->n_active++;
        admitted[(*n_admitted)++] = s->slots[slot]->req;
    }
}

borg_status sched_build(borg_sched *s, borg_batch *b, int64_t *admitted, int *n_admitted, borg_err *err)
{
    batch_clear(b);
    admit(s, admitted, n_admitted);
    int budget = s->batch_tokens;
    borg_status st;
    for (int slot = 0; slot < s->n_slots && budget > 0; slot++) {
        sched_seq *q = s->slots[slot];
        if (!q || q->in_flight || q->n_past < q->n_prompt)
            continue;
        batch_seq bs = {.req = q->req,
                        .slot = slot,
                        .pos = q->n_past,
                        .n_tokens = 1,
                        .sample = 1,
                        .step = q->first_step + q->n_tokens - q->n_prompt,
                        .next_token = -1,
                        .sampling = q->sampling};
        if ((st = batch_add(b, &bs, q->tokens + q->n_past, err)))
            return st;
        q->in_flight = 1;
        budget--;
    }
    const int start = s->rr;
    for (int k = 0; k < s->n_slots && budget > 0; k++) {
        int slot = (start + k) % s->n_slots;
        sched_seq *q = s->slots[slot];
        if (!q || q->in_flight || q->n_past >= q->n_prompt)
            continue;
        int32_t n = q->n_prompt - q->n_past;
        if (n > budget)
            n = budget;
        int done = q->n_past + n == q->n_prompt;
        batch_seq bs = {.req = q->req,
                        .slot = slot,
                        .pos = q->n_past,
                        .n_tokens = n,
                        .sample = done,
                        .step = q->first_step,
                        .score = q->n_past < q->n_score,
                        .embed = q->n_past < q->n_embed,
                        .next_token = done ? -1 : q->tokens[q->n_past + n],
                        .sampling = q->sampling};
        if ((st = batch_add(b, &bs, q->tokens + q->n_past, err)))
            return st;
        q->in_flight = 1;
        budget -= n;
        s->rr = (slot + 1) % s->n_slots;
    }
    s->n_in_flight += b->n_seqs;
    return BORG_OK;
}

static sched_seq *find_active(const borg_sched *s, int64_t req, int *slot)
{
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i] && s->slots[i]->req == req) {
            if (slot)
                *slot = i;
            return s->slots[i];
        }
    return NULL;
}

void sched_batch_done(borg_sched *s, const borg_batch *b)
{
    for (int i = 0; i < b->n_seqs; i++) {
        sched_seq *q = s->slots[b->seqs[i].slot];
        if (q && q->req == b->seqs[i].req && q->in_flight) {
            q->in_flight = 0;
            q->n_past = b->seqs[i].pos + b->seqs[i].n_tokens;
            s->n_in_flight--;
        }
    }
}

borg_status sched_append(borg_sched *s, int64_t req, int32_t token, int *full, borg_err *err)
{
    sched_seq *q = find_active(s, req, NULL);
    if (!q)
        return borg_fail(err, BORG_EINTERNAL, "token for unknown request %lld", (long long)req);
    if (q->n_tokens >= s->slot_ctx)
        return borg_fail(err, BORG_EINTERNAL, "request %lld has filled its slot", (long long)req);
    if (q->n_tokens == q->cap) {
        int32_t cap = q->cap * 2 < s->slot_ctx ? q->cap * 2 : s->slot_ctx;
        int32_t *t = realloc(q->tokens, sizeof *t * (size_t)cap);
        if (!t)
            return borg_fail(err, BORG_ENOMEM, "out of memory extending request %lld", (long long)req);
        q->tokens = t;
        q->cap = cap;
    }
    q->tokens[q->n_tokens++] = token;
    *full = q->n_tokens >= s->slot_ctx;
    return BORG_OK;
}

int sched_history(const borg_sched *s, int64_t req, const int32_t **tokens, int32_t *n)
{
    const sched_seq *q = find_active(s, req, NULL);
    for (int i = 0; !q && i < s->n_waiting; i++)
        if (s->waiting[i]->req == req)
            q = s->waiting[i];
    if (!q)
        return 0;
    *tokens = q->tokens;
    *n = q->n_tokens;
    return 1;
}

void sched_finish(borg_sched *s, int64_t req)
{
    int slot;
    sched_seq *q = find_active(s, req, &slot);
    if (q) {
        if (q->in_flight)
            s->n_in_flight--;
        seq_free(q);
        s->slots[slot] = NULL;
        s->n_active--;
        return;
    }
    for (int i = 0; i < s->n_waiting; i++)
        if (s->waiting[i]->req == req) {
            seq_free(s->waiting[i]);
            s->waiting[i] = s->waiting[--s->n_waiting];
            return;
        }
}

void sched_set_admission(borg_sched *s, int on) { s->closed = !on; }

int sched_waiting(const borg_sched *s) { return s->n_waiting; }
int sched_active(const borg_sched *s) { return s->n_active; }
int sched_in_flight(const borg_sched *s) { return s->n_in_flight; }
