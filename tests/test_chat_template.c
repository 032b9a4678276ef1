/* Chat rendering for each template family, including ChatML's default
 * system turn as SmolLM2's template writes it. */
#include <stdlib.h>
#include <string.h>

#include "borg/chat_template.h"
#include "check.h"

static const char k_smollm_template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

static char *render(const char *tmpl, chat_style fallback, const chat_msg *m, size_t n, borg_status *st)
{
    chat_template t;
    borg_err err = {0};
    CHECK(chat_template_init(tmpl, tmpl ? strlen(tmpl) : 0, fallback, &t, &err) == BORG_OK);
    char *out = NULL;
    *st = chat_render(&t, m, n, &out, &err);
    chat_template_free(&t);
    return out;
}

int main(void)
{
    chat_msg user[] = {{"user", "Hi"}};
    chat_msg sys_user[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}};
    borg_status st;
    char *s = render(k_smollm_template, CHAT_CHATML, user, 1, &st);
    CHECK(st == BORG_OK);
    CHECK_STR(s, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                 "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    s = render(k_smollm_template, CHAT_CHATML, sys_user, 2, &st);
    CHECK_STR(s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    s = render("{{ '<|start_header_id|>' }}", CHAT_NONE, sys_user, 2, &st);
    CHECK_STR(s, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(s);
    s = render("[INST]", CHAT_NONE, sys_user, 4, &st);
    CHECK_STR(s, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]");
    free(s);
    s = render(NULL, CHAT_CHATML, user, 1, &st); /* no template, ChatML vocabulary */
    CHECK_STR(s, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    s = render(NULL, CHAT_NONE, user, 1, &st);
    CHECK(st == BORG_EINPUT && s == NULL);
    /* Gemma: system text opens the first user turn, the assistant is
     * "model", contents trimmed; the same from its template or its vocabulary. */
    chat_msg padded[] = {{"system", "Be brief."}, {"user", " Hi\n"}, {"assistant", "Hello."}, {"user", "Bye"}};
    const char *gemma = "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n";
    s = render("{{ '<start_of_turn>' + role }}", CHAT_NONE, padded, 4, &st);
    CHECK_STR(s, gemma);
    free(s);
    s = render(NULL, CHAT_GEMMA, padded, 4, &st);
    CHECK_STR(s, gemma);
    free(s);
    return check_report();
}
