/* A chat template from a model file: recognising its family and its
 * default system prompt from arbitrary text, then rendering a conversation
 * with it. */
#include <stdlib.h>

#include "borg/chat_template.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char sys[] = "system", user[] = "user", asst[] = "assistant", hello[] = "Hello", hi[] = "Hi there";
    const chat_msg with_system[] = {{sys, hello}, {user, hello}, {asst, hi}, {user, hi}};
    borg_err err;
    chat_template t;
    if (chat_template_init((const char *)data, size, CHAT_NONE, &t, &err) != BORG_OK)
        return 0;
    char *out = NULL;
    if (chat_render(&t, with_system, 4, &out, &err) == BORG_OK)
        free(out);
    out = NULL;
    if (chat_render(&t, with_system + 1, 3, &out, &err) == BORG_OK)
        free(out);
    chat_template_free(&t);
    return 0;
}
