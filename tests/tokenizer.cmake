# Tokenizer: ids must match llama.cpp's (goldens in tests/tokenizer/, made by
# make_golden.py with llama-cpp-python; CI only reads them).
set(BORG_TOK_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer)
set(BORG_TOK_DATA ${BORG_TEST_DATA}/tokenizer)

borg_add_unit(test_tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer.c)

# The real model; a missing file fails the test (run tests/setup.sh).
add_test(NAME test_tokenizer_smollm2
  COMMAND test_tokenizer smollm2 ${BORG_MODEL} ${BORG_TOK_DIR}/corpus.json ${BORG_TOK_DIR}/golden_smollm2.json)

# gemma-3-270m: SentencePiece with byte fallback, no space prefix.
add_test(NAME test_tokenizer_gemma3
  COMMAND test_tokenizer model ${CMAKE_SOURCE_DIR}/models/gemma-3-270m-q4_k_m.gguf ${BORG_TOK_DIR}/corpus.json
          ${BORG_TOK_DIR}/golden_gemma3.json)

add_test(NAME tokenizer_spm_vocab
  COMMAND ${Python3_EXECUTABLE} ${BORG_TOK_DIR}/make_spm_vocab.py ${BORG_TOK_DATA})
set_tests_properties(tokenizer_spm_vocab PROPERTIES FIXTURES_SETUP tokenizer_spm TIMEOUT 60)
add_test(NAME test_tokenizer_spm
  COMMAND test_tokenizer spm ${BORG_TOK_DATA} ${BORG_TOK_DIR}/corpus.json ${BORG_TOK_DIR}/golden_spm.json)
set_tests_properties(test_tokenizer_spm PROPERTIES FIXTURES_REQUIRED tokenizer_spm)

# The SmolLM2 vocabulary under the other pre-tokenizers.
add_test(NAME tokenizer_pre_vocabs
  COMMAND ${Python3_EXECUTABLE} ${BORG_TOK_DIR}/make_pre_vocabs.py ${BORG_MODEL} ${BORG_TOK_DATA})
set_tests_properties(tokenizer_pre_vocabs PROPERTIES FIXTURES_SETUP tokenizer_pre TIMEOUT 60)
add_test(NAME test_tokenizer_pre
  COMMAND test_tokenizer pre ${BORG_TOK_DATA} ${BORG_TOK_DIR}/corpus.json ${BORG_TOK_DIR}/golden_pre.json)
set_tests_properties(test_tokenizer_pre PROPERTIES FIXTURES_REQUIRED tokenizer_pre)

set_tests_properties(test_tokenizer_smollm2 test_tokenizer_gemma3 test_tokenizer_spm test_tokenizer_pre PROPERTIES TIMEOUT 60)
