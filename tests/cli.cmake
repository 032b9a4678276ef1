# The borg-infer command line: exit codes and messages (tests/cli_expect.py).
set(BORG_INFER $<TARGET_FILE:borg-infer>)

# borg_cli_test(NAME CHECKS... -- ARGS...): runs borg-infer ARGS under the checks.
function(borg_cli_test name)
  list(FIND ARGN "--" split)
  list(SUBLIST ARGN 0 ${split} checks)
  math(EXPR first "${split} + 1")
  list(SUBLIST ARGN ${first} -1 args)
  add_test(NAME ${name}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cli_expect.py ${checks} -- ${BORG_INFER} ${args})
  set_tests_properties(${name} PROPERTIES TIMEOUT 120)
endfunction()

borg_cli_test(cli_help --stdout-has "Usage: borg-infer <command>" --stdout-has "Commands:"
  --stdout-has "tokenize" -- --help)
borg_cli_test(cli_run_help --stdout-has "Usage: borg-infer run" --stdout-has "--jobs" -- run --help)
borg_cli_test(cli_info_help --stdout-has "Usage: borg-infer info" -- info --help)
borg_cli_test(cli_tokenize_help --stdout-has "Usage: borg-infer tokenize" -- tokenize --help)
borg_cli_test(cli_version --stdout-re "^borg-infer [0-9]+\\.[0-9]+" -- --version)

borg_cli_test(cli_unknown_command --exit 2 --stderr-has "unknown command 'frobnicate'" --stderr-has "--help"
  -- frobnicate)
borg_cli_test(cli_unknown_option --exit 2 --stderr-has "'--frobnicate'" --stderr-has "borg-infer info --help"
  -- info --model ${BORG_MODEL} --frobnicate)
borg_cli_test(cli_missing_model --exit 2 --stderr-has "info: --model is required" -- info)
borg_cli_test(cli_missing_model_value --exit 2 --stderr-has "'--model'" -- tokenize --model)
borg_cli_test(cli_run_missing_jobs --exit 2 --stderr-has "--jobs and --out are required" -- run --model ${BORG_MODEL})
borg_cli_test(cli_bad_threads --exit 2 --stderr-has "--threads needs an integer"
  -- run --model ${BORG_MODEL} --jobs j.jsonl --out r.jsonl --threads zero)
borg_cli_test(cli_bad_wire_dtype --exit 2 --stderr-has "--wire-dtype must be f32, f16 or bf16 (got 'f8')"
  -- run --model ${BORG_MODEL} --jobs j.jsonl --out r.jsonl --wire-dtype f8)
borg_cli_test(cli_bad_kv_dtype --exit 2 --stderr-has "--kv-dtype must be f16 or f32 (got 'q8')"
  -- run --model ${BORG_MODEL} --jobs j.jsonl --out r.jsonl --kv-dtype q8)
borg_cli_test(cli_run_help_kv_dtype --stdout-has "--kv-dtype T" --stdout-has "f16 (default" -- run --help)
# An f16 cache is half an f32 one: SmolLM2's 30 layers over 2 stages, 32 slots x 4096 positions.
borg_cli_test(cli_plan_kv_f16 --stdout-re "^0 +0-19 +20 .* 1920\\.0 " --stdout-has "KV in f16"
  -- plan --model ${BORG_MODEL} --stages 2)
borg_cli_test(cli_plan_kv_f32 --stdout-re "^0 +0-19 +20 .* 3840\\.0 " --stdout-has "KV in f32"
  -- plan --model ${BORG_MODEL} --stages 2 --kv-dtype f32)
borg_cli_test(cli_bad_activations --exit 2 --stderr-has "--activations must be q8 or f32 (got 'int4')"
  -- run --model ${BORG_MODEL} --jobs j.jsonl --out r.jsonl --activations int4)
borg_cli_test(cli_plan_no_stages --exit 2 --stderr-has "plan: --stages is required" -- plan --model ${BORG_MODEL})
borg_cli_test(cli_tokenize_no_text --exit 2 --stderr-has "give the TEXT" -- tokenize --model ${BORG_MODEL})
borg_cli_test(cli_info_missing_file --exit 1 --stderr-has "no_such_model.gguf: cannot open"
  -- info --model ${BORG_TEST_DATA}/no_such_model.gguf)

add_test(NAME cli_info_bad_gguf
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cli_expect.py --bad-gguf ${BORG_TEST_DATA}/gguf
          -- ${BORG_INFER})
set_tests_properties(cli_info_bad_gguf PROPERTIES FIXTURES_REQUIRED gguf_data TIMEOUT 300)

borg_cli_test(cli_info_model --stdout-re "^architecture +llama$" --stdout-re "^layers +30$" --stdout-re "^ +Q4_1 "
  -- info --model ${BORG_MODEL})
borg_cli_test(cli_tokenize_model --stdout-re "^19556 905$" -- tokenize --model ${BORG_MODEL} "Hello world")
borg_cli_test(cli_tokenize_special --stdout-re "^1 4093$" -- tokenize --model ${BORG_MODEL} "<|im_start|>user")
borg_cli_test(cli_tokenize_no_special --stdout-re "^[0-9]+( [0-9]+)+$" --stdout-not-re "^1 "
  -- tokenize --model ${BORG_MODEL} --no-special "<|im_start|>user")
