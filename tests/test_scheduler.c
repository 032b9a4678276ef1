/* Continuous batching: budgets, decode before prefill, chunked prompts,
 * slots, priorities and one-batch-at-a-time per sequence. */
#include <stdlib.h>

#include "borg/scheduler.h"
#include "check.h"

static borg_sampling greedy = {0.0f, 0, 1.0f, 0.0f, 1};

int main(void)
{
    borg_sched *s;
    borg_err err = {0};
    borg_batch b;
    batch_init(&b);
    int64_t admitted[2];
    int n_adm, full = -1;
    CHECK(sched_create(2, 64, 8, &s, &err) == BORG_OK);
    int32_t p10[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, p3[3] = {7, 8, 9};
    CHECK(sched_submit(s, 100, p10, 10, 0, 0, 0, &greedy, 0, &err) == BORG_OK);
    CHECK(sched_submit(s, 101, p3, 3, 0, 0, 0, &greedy, 0, &err) == BORG_OK);
    CHECK(sched_submit(s, 102, p3, 3, 0, 0, 0, &greedy, 5, &err) == BORG_OK); /* higher priority */

    /* Two slots: the priority job and the first arrival get them. */
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    CHECK(n_adm == 2);
    CHECK((admitted[0] == 102 && admitted[1] == 100) || (admitted[0] == 100 && admitted[1] == 102));
    CHECK(b.n_tokens == 8); /* the budget */
    int saw_chunk = 0;
    for (int i = 0; i < b.n_seqs; i++) {
        if (b.seqs[i].req == 102)
            CHECK(b.seqs[i].n_tokens == 3 && b.seqs[i].sample == 1 && b.seqs[i].pos == 0);
        if (b.seqs[i].req == 100) {
            CHECK(b.seqs[i].n_tokens == 5 && b.seqs[i].sample == 0);
            saw_chunk = 1;
        }
    }
    CHECK(saw_chunk);
    CHECK(sched_in_flight(s) == 2);

    /* Nothing else is ready while both are in flight. */
    borg_batch b2;
    batch_init(&b2);
    CHECK(sched_build(s, &b2, admitted, &n_adm, &err) == BORG_OK);
    CHECK(b2.n_seqs == 0);

    sched_batch_done(s, &b);
    CHECK(sched_append(s, 102, 42, &full, &err) == BORG_OK);
    CHECK(full == 0);
    /* The scheduler keeps the history: the prompt, then the new token. */
    const int32_t *hist;
    int32_t n_hist;
    CHECK(sched_history(s, 102, &hist, &n_hist) && n_hist == 4 && hist[0] == 7 && hist[3] == 42);
    CHECK(sched_history(s, 101, &hist, &n_hist) && n_hist == 3); /* still waiting */
    CHECK(!sched_history(s, 999, &hist, &n_hist));
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    /* Decode first: job 102's new token at position 3, then the rest of 100's prompt. */
    CHECK(b.n_seqs == 2);
    CHECK(b.seqs[0].req == 102 && b.seqs[0].n_tokens == 1 && b.seqs[0].pos == 3 && b.tokens[0] == 42);
    CHECK(b.seqs[0].step == 1);
    CHECK(b.seqs[1].req == 100 && b.seqs[1].pos == 5 && b.seqs[1].n_tokens == 5 && b.seqs[1].sample == 1);
    CHECK(b.tokens[1] == 6);
    sched_batch_done(s, &b);

    /* Finishing frees the slot for the waiting job. */
    sched_finish(s, 102);
    CHECK(sched_active(s) == 1 && sched_waiting(s) == 1);
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    CHECK(n_adm == 1 && admitted[0] == 101);
    sched_finish(s, 100);
    sched_finish(s, 101);
    CHECK(sched_active(s) == 0 && sched_in_flight(s) == 0);

    int32_t big[64] = {0};
    CHECK(sched_submit(s, 103, big, 64, 0, 0, 0, &greedy, 0, &err) != BORG_OK);

    /* A replayed request continues its sampling steps where it was. */
    CHECK(sched_submit(s, 104, p3, 3, 7, 0, 0, &greedy, 0, &err) == BORG_OK);
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    CHECK(b.n_seqs == 1 && b.seqs[0].step == 7 && b.seqs[0].sample == 1);
    sched_batch_done(s, &b);
    CHECK(sched_append(s, 104, 5, &full, &err) == BORG_OK);
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    CHECK(b.n_seqs == 1 && b.seqs[0].step == 8);
    sched_finish(s, 104);

    /* A scored prompt of 10 tokens in chunks of the 8-token budget: every
     * chunk marked, each naming the prompt token after it, the last none;
     * decode steps are not scored. */
    CHECK(sched_submit(s, 105, p10, 10, 0, 10, 0, &greedy, 0, &err) == BORG_OK);
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    CHECK(b.n_seqs == 1 && b.seqs[0].n_tokens == 8 && b.seqs[0].score == 1 && b.seqs[0].next_token == 9 &&
          !b.seqs[0].sample);
    CHECK(batch_result_cap(&b) == 1 + 8);
    sched_batch_done(s, &b);
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    CHECK(b.n_seqs == 1 && b.seqs[0].pos == 8 && b.seqs[0].score == 1 && b.seqs[0].next_token == -1 &&
          b.seqs[0].sample);
    sched_batch_done(s, &b);
    CHECK(sched_append(s, 105, 5, &full, &err) == BORG_OK);
    CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
    CHECK(b.n_seqs == 1 && b.seqs[0].score == 0);
    sched_finish(s, 105);

    /* The scheduler decides when a sequence fills its context: 62 prompt
     * tokens in a 64-position slot take two more, the second fills it. */
    CHECK(sched_submit(s, 106, big, 62, 0, 0, 0, &greedy, 0, &err) == BORG_OK);
    for (int k = 0; k < 8; k++) {
        CHECK(sched_build(s, &b, admitted, &n_adm, &err) == BORG_OK);
        sched_batch_done(s, &b);
    }
    CHECK(sched_append(s, 106, 1, &full, &err) == BORG_OK && full == 0);
    CHECK(sched_append(s, 106, 2, &full, &err) == BORG_OK && full == 1);
    CHECK(sched_append(s, 106, 3, &full, &err) != BORG_OK);
    sched_finish(s, 106);
    batch_free(&b);
    batch_free(&b2);
    sched_free(s);
    return check_report();
}
