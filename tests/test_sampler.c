/* Sampling: greedy is argmax, draws are reproducible per (seed, step), and
 * each truncation keeps exactly the tokens it should. */
#include <math.h>
#include <stdlib.h>

#include "borg/sampler.h"
#include "check.h"

enum { V = 50 };

int main(void)
{
    borg_sampler *s;
    borg_err err = {0};
    CHECK(sampler_create(V, &s, &err) == BORG_OK);
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = (float)((i * 37) % V) / 10.0f; /* a permutation: max at i with (i*37)%50 == 49 */
    int top = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > logits[top])
            top = i;

    borg_sampling greedy = {0.0f, 0, 1.0f, 0.0f, 1};
    float lp;
    CHECK(sampler_pick(s, logits, &greedy, 0, &lp) == top);
    double lse = 0;
    for (int i = 0; i < V; i++)
        lse += exp(logits[i]);
    CHECK(fabs(lp - (logits[top] - log(lse))) < 1e-4);

    borg_sampling k1 = {1.0f, 1, 1.0f, 0.0f, 1};
    CHECK(sampler_pick(s, logits, &k1, 3, NULL) == top);

    /* Same seed and step, same token; the sequence over steps varies. */
    borg_sampling hot = {1.5f, 0, 1.0f, 0.0f, 99};
    int distinct = 0, first = sampler_pick(s, logits, &hot, 0, NULL);
    for (int step = 0; step < 64; step++) {
        int a = sampler_pick(s, logits, &hot, step, NULL);
        CHECK(a == sampler_pick(s, logits, &hot, step, NULL));
        distinct += a != first;
    }
    CHECK(distinct > 0);

    /* top_k = 3 only ever yields the three largest logits. */
    borg_sampling k3 = {2.0f, 3, 1.0f, 0.0f, 5};
    for (int step = 0; step < 200; step++) {
        int t = sampler_pick(s, logits, &k3, step, NULL);
        CHECK(logits[t] >= 4.7f - 1e-6f);
    }
    /* min_p = 0.5 keeps tokens with p >= p_max / 2: logit within ln 2 of the top. */
    borg_sampling mp = {1.0f, 0, 1.0f, 0.5f, 6};
    for (int step = 0; step < 200; step++) {
        int t = sampler_pick(s, logits, &mp, step, NULL);
        CHECK(logits[t] >= logits[top] - (float)log(2.0) - 1e-6f);
    }
    /* top_p small enough keeps only the top token. */
    borg_sampling tp = {1.0f, 0, 0.01f, 0.0f, 7};
    for (int step = 0; step < 50; step++)
        CHECK(sampler_pick(s, logits, &tp, step, NULL) == top);

    /* Frequencies follow softmax: over 4000 draws between two equal-logit
     * tokens and one far below, the two share the draws about evenly. */
    float two[V];
    for (int i = 0; i < V; i++)
        two[i] = -30.0f;
    two[10] = two[20] = 1.0f;
    borg_sampling t1 = {1.0f, 0, 1.0f, 0.0f, 11};
    int c10 = 0, c20 = 0;
    for (int step = 0; step < 4000; step++) {
        int t = sampler_pick(s, two, &t1, step, NULL);
        c10 += t == 10;
        c20 += t == 20;
    }
    CHECK(c10 + c20 == 4000);
    CHECK(c10 > 1800 && c20 > 1800);
    sampler_free(s);
    return check_report();
}
