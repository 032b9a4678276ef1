#define _GNU_SOURCE
#include "borg/chat_template.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *find_in(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle));
}

/* A ChatML template that opens with a fixed system turn when the first
 * message is not a system message carries that text literally. */
static char *chatml_default_system(const char *tmpl, size_t len)
{
    static const char open[] = "<|im_start|>system\n";
    if (!find_in(tmpl, len, "!= 'system'") && !find_in(tmpl, len, "!= \"system\""))
        return NULL;
    const char *s = find_in(tmpl, len, open);
    if (!s)
        return NULL;
    s += strlen(open);
    const char *e = find_in(s, len - (size_t)(s - tmpl), "<|im_end|>");
    if (!e)
        return NULL;
    return strndup(s, (size_t)(e - s));
}

chat_style chat_vocab_style(const borg_tokenizer *tok)
{
    if (tokenizer_find(tok, "<|im_start|>") >= 0)
        return CHAT_CHATML;
    if (tokenizer_find(tok, "<start_of_turn>") >= 0)
        return CHAT_GEMMA;
    return CHAT_NONE;
}

borg_status chat_template_init(const char *tmpl, size_t len, chat_style fallback, chat_template *out, borg_err *err)
{
    memset(out, 0, sizeof *out);
    if (tmpl && find_in(tmpl, len, "<|im_start|>")) {
        out->style = CHAT_CHATML;
        out->default_system = chatml_default_system(tmpl, len);
    } else if (tmpl && find_in(tmpl, len, "<|start_header_id|>")) {
        out->style = CHAT_LLAMA3;
    } else if (tmpl && find_in(tmpl, len, "<start_of_turn>")) {
        out->style = CHAT_GEMMA;
    } else if (tmpl && find_in(tmpl, len, "[INST]")) {
        out->style = CHAT_LLAMA2;
    } else {
        out->style = fallback;
    }
    return BORG_OK;
}

void chat_template_free(chat_template *t)
{
    free(t->default_system);
    memset(t, 0, sizeof *t);
}

const char *chat_style_name(chat_style s)
{
    switch (s) {
    case CHAT_CHATML: return "chatml";
    case CHAT_LLAMA3: return "llama3";
    case CHAT_LLAMA2: return "llama2";
    case CHAT_GEMMA: return "gemma";
    default: return "none";
    }
}

static int is_system(const chat_msg *m) { return !strcmp(m->role, "system") || !strcmp(m->role, "developer"); }

static void render_chatml(FILE *o, const chat_template *t, const chat_msg *msgs, size_t n)
{
    if (t->default_system && !is_system(&msgs[0]))
        fprintf(o, "<|im_start|>system\n%s<|im_end|>\n", t->default_system);
    for (size_t i = 0; i < n; i++)
        fprintf(o, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role, msgs[i].content);
    fputs("<|im_start|>assistant\n", o);
}

static void render_llama3(FILE *o, const chat_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(o, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", msgs[i].role, msgs[i].content);
    fputs("<|start_header_id|>assistant<|end_header_id|>\n\n", o);
}

/* Gemma has no system turn: the system text opens the first user turn,
 * and the assistant is "model". Contents are trimmed, as its template does. */
static void render_gemma(FILE *o, const chat_msg *msgs, size_t n)
{
    size_t i = 0;
    const char *sys = NULL;
    if (n && is_system(&msgs[0]))
        sys = msgs[i++].content;
    for (int first = 1; i < n; i++, first = 0) {
        const char *c = msgs[i].content, *e = c + strlen(c);
        while (*c && isspace((unsigned char)*c))
            c++;
        while (e > c && isspace((unsigned char)e[-1]))
            e--;
        const char *role = !strcmp(msgs[i].role, "assistant") ? "model" : msgs[i].role;
        fprintf(o, "<start_of_turn>%s\n", role);
        if (first && sys)
            fprintf(o, "%s\n\n", sys);
        fprintf(o, "%.*s<end_of_turn>\n", (int)(e - c), c);
    }
    fputs("<start_of_turn>model\n", o);
}

/* Llama-2 folds the system prompt into the first user turn. */
static void render_llama2(FILE *o, const chat_msg *msgs, size_t n)
{
    const char *sys = NULL;
    size_t i = 0;
    if (n && is_system(&msgs[0]))
        sys = msgs[i++].content;
    for (int first = 1; i < n; i++) {
        if (!strcmp(msgs[i].role, "assistant")) {
            fprintf(o, " %s </s>", msgs[i].content);
            continue;
        }
        if (!first)
            fputs("<s>", o);
        if (first && sys)
            fprintf(o, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", sys, msgs[i].content);
        else
            fprintf(o, "[INST] %s [/INST]", msgs[i].content);
        first = 0;
    }
}

borg_status chat_render(const chat_template *t, const chat_msg *msgs, size_t n, char **out, borg_err *err)
{
    if (t->style == CHAT_NONE)
        return borg_fail(err, BORG_EINPUT,
                         "the model has no chat template this program understands; give a prompt instead of messages");
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o)
        return borg_fail(err, BORG_ENOMEM, "out of memory rendering a chat");
    switch (t->style) {
    case CHAT_CHATML: render_chatml(o, t, msgs, n); break;
    case CHAT_LLAMA3: render_llama3(o, msgs, n); break;
    case CHAT_GEMMA: render_gemma(o, msgs, n); break;
    default: render_llama2(o, msgs, n); break;
    }
    if (fclose(o) != 0 || !buf) {
        free(buf);
        return borg_fail(err, BORG_ENOMEM, "out of memory rendering a chat");
    }
    *out = buf;
    return BORG_OK;
}
