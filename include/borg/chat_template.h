/* Rendering chat messages into a prompt the way the model was trained.
 *
 * GGUF files carry a Jinja template (tokenizer.chat_template). Rather than
 * embed a Jinja engine, the template's family is recognised by its markers
 * and rendered natively: ChatML (<|im_start|>), Llama-3 (<|start_header_id|>)
 * and Llama-2 ([INST]). A default system prompt that a ChatML template adds
 * when the conversation has none is honoured. */
#ifndef BORG_CHAT_TEMPLATE_H
#define BORG_CHAT_TEMPLATE_H

#include <stddef.h>

#include "borg/error.h"
#include "borg/jobs.h"

typedef enum { CHAT_NONE, CHAT_CHATML, CHAT_LLAMA3, CHAT_LLAMA2 } chat_style;

typedef struct {
    chat_style style;
    char *default_system; /* NULL when the template adds none */
} chat_template;

/* template_text may be NULL (the model has none). has_im_start says the
 * vocabulary has <|im_start|>, in which case ChatML is the fallback. */
borg_status chat_template_init(const char *template_text, size_t len, int has_im_start,
                               chat_template *out, borg_err *err);
void chat_template_free(chat_template *t);

const char *chat_style_name(chat_style s);

/* Renders messages plus the assistant turn's opening into *out (malloc'd).
 * Fails with BORG_EINPUT when the model has no known chat format. */
borg_status chat_render(const chat_template *t, const chat_msg *msgs, size_t n, char **out,
                        borg_err *err);

#endif
