# Fuzz targets (tests/fuzz/): every target's corpus replayed through it on
# every run, with the ordinary compiler (replay.c stands in for libFuzzer);
# tests/fuzz/run.sh fuzzes them with clang's libFuzzer and grows the corpora.
foreach(t gguf jobs tokenizer frame chat_template)
  borg_add_unit(fuzz_replay_${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${t}.c ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay.c)
  add_test(NAME test_fuzz_replay_${t} COMMAND fuzz_replay_${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${t})
endforeach()
set_tests_properties(test_fuzz_replay_tokenizer PROPERTIES ENVIRONMENT "BORG_FUZZ_MODEL=${BORG_MODEL}")

if(BORG_FUZZ)
  foreach(t gguf jobs tokenizer frame chat_template)
    add_executable(fuzz_${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${t}.c)
    target_link_libraries(fuzz_${t} PRIVATE borgcore)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()
