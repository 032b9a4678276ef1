/* Rendering chat messages into a prompt the way the model was trained.
 *
 * GGUF files carry a Jinja template (tokenizer.chat_template). Rather than
 * embed a Jinja engine, the template's family is recognised by its markers
 * and rendered natively: ChatML (<|im_start|>), Llama-3 (<|start_header_id|>),
 * Llama-2 ([INST]) and Gemma (<start_of_turn>). A default system prompt that a ChatML template adds
 * when the conversation has none is honoured. */
#ifndef BORG_CHAT_TEMPLATE_H
#define BORG_CHAT_TEMPLATE_H

#include <stddef.h>

#include "borg/error.h"
#include "borg/jobs.h"
#include "borg/tokenizer.h"

typedef enum { CHAT_NONE, CHAT_CHATML, CHAT_LLAMA3, CHAT_LLAMA2, CHAT_GEMMA } chat_style;

typedef struct {
    chat_style style;
    char *default_system; /* NULL when the template adds none */
} chat_template;

/* The style a vocabulary implies when the file has no template it names:
 * ChatML with <|im_start|>, Gemma with <start_of_turn>, else none. */
chat_style chat_vocab_style(const borg_tokenizer *tok);

/* template_text may be NULL (the model has none); fallback is the style
 * used when the template is absent or not recognised. */
borg_status chat_template_init(const char *template_text, size_t len, chat_style fallback, chat_template *out,
                               borg_err *err);
void chat_template_free(chat_template *t);

const char *chat_style_name(chat_style s);

/* Renders messages plus the assistant turn's opening into *out (malloc'd).
 * Fails with BORG_EINPUT when the model has no known chat format. */
borg_status chat_render(const chat_template *t, const chat_msg *msgs, size_t n, char **out, borg_err *err);

#endif
