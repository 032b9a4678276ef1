/* The entry points every fuzz target defines, as libFuzzer calls them;
 * replay.c calls them the same way over a corpus, so CTest runs every
 * target's corpus with the ordinary compiler and no libFuzzer. */
#ifndef BORG_FUZZ_H
#define BORG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
