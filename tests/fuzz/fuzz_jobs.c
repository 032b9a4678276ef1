/* A job line from a script that broke: the parser for every shape (simple,
 * chat, token ids, OpenAI batch), then the chat renderer of each style over
 * whatever messages it accepted. */
#include <stdlib.h>

#include "borg/chat_template.h"
#include "borg/jobs.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    borg_err err;
    borg_job job;
    if (job_parse((const char *)data, size, 1, 0, &job, &err) != BORG_OK)
        return 0;
    if (!job.error && job.n_messages > 0) { /* a job with an error is answered, never rendered */
        const chat_style styles[] = {CHAT_CHATML, CHAT_LLAMA3, CHAT_LLAMA2, CHAT_GEMMA, CHAT_NONE};
        for (size_t i = 0; i < sizeof styles / sizeof *styles; i++) {
            chat_template t;
            char *out = NULL;
            if (chat_template_init(NULL, 0, styles[i], &t, &err) != BORG_OK)
                continue;
            if (chat_render(&t, job.messages, job.n_messages, &out, &err) == BORG_OK)
                free(out);
            chat_template_free(&t);
        }
    }
    job_free(&job);
    return 0;
}
