/* A model file from a stranger: the GGUF reader, then what loading reads
 * from it (the family's hyperparameters, every tensor's presence, type and
 * shape, the tokenizer, the chat template), through an in-memory file. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "borg/chat_template.h"
#include "borg/family.h"
#include "borg/gguf.h"
#include "borg/model.h"
#include "borg/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static void load_all(const gguf_file *f)
{
    borg_err err;
    borg_hparams hp;
    if (family_hparams(f, &hp, &err) == BORG_OK && hp.n_layer <= 64) {
        borg_model *m;
        if (model_load(f, 0, hp.n_layer, 1, 1, NULL, &m, &err) == BORG_OK)
            model_free(m);
    }
    borg_tokenizer *tok;
    if (tokenizer_load(f, &tok, &err) == BORG_OK) {
        gguf_str text = {0};
        chat_template t;
        int has = gguf_get_str(f, "tokenizer.chat_template", &text, &err) == BORG_OK;
        if (chat_template_init(has ? text.ptr : NULL, has ? (size_t)text.len : 0, chat_vocab_style(tok), &t, &err) ==
            BORG_OK)
            chat_template_free(&t);
        tokenizer_free(tok);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.gguf", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    borg_err err;
    gguf_file *f;
    if (write(fd, data, size) == (ssize_t)size && gguf_open(path, &f, &err) == BORG_OK) {
        load_all(f);
        gguf_close(f);
    }
    close(fd);
    return 0;
}
