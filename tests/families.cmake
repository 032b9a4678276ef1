# Model families against llama.cpp, and what the program refuses to run.
set(BORG_GEMMA_MODEL ${CMAKE_SOURCE_DIR}/models/gemma-3-270m-q4_k_m.gguf)
set(BORG_FAMILIES llama3,llama_linear,qwen2,qwen3,gemma3)

# Greedy ids of tiny F32 models of each family equal llama.cpp's
# (tests/goldens/families.json), in one process and through a pipeline.
add_test(NAME e2e_families
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_families.py --borg $<TARGET_FILE:borg-infer>
          --families ${BORG_FAMILIES})
add_test(NAME e2e_families_pipeline
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_families.py --borg $<TARGET_FILE:borg-infer>
          --families ${BORG_FAMILIES} --np 3 --mpiexec ${MPIEXEC_EXECUTABLE})
# The same gemma3 answers when its sliding-window layers keep a ring of
# window + budget - 1 = 10 (or 8) rows that wraps many times over 70 positions.
add_test(NAME e2e_families_ring
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_families.py --borg $<TARGET_FILE:borg-infer>
          --families gemma3 --batch-tokens 3)
add_test(NAME e2e_families_ring_pipeline
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_families.py --borg $<TARGET_FILE:borg-infer>
          --families gemma3 --batch-tokens 1 --np 3 --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(e2e_families e2e_families_pipeline e2e_families_ring e2e_families_ring_pipeline PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)

# Files asking for what is not implemented: each refused by name, exit 2.
add_test(NAME refused_models
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/tools/make_refused_models.py --dir ${BORG_TEST_DATA}/refused)
set_tests_properties(refused_models PROPERTIES FIXTURES_SETUP refused_data TIMEOUT 120)
set(BORG_REFUSED ${BORG_TEST_DATA}/refused)
borg_cli_test(cli_refuse_rope_yarn --exit 2 --stderr-has "rope scaling type 'yarn'"
  --stderr-has "llama.rope.scaling.type" -- info --model ${BORG_REFUSED}/rope_yarn.gguf)
borg_cli_test(cli_refuse_unknown_tensor --exit 2 --stderr-has "tensor 'blk.0.attn_gate.weight'"
  -- info --model ${BORG_REFUSED}/unknown_tensor.gguf)
borg_cli_test(cli_refuse_unknown_arch --exit 2 --stderr-has "unsupported architecture 'mamba'"
  -- info --model ${BORG_REFUSED}/unknown_arch.gguf)
borg_cli_test(cli_refuse_unknown_key --exit 2 --stderr-has "metadata key 'llama.attention.clamp_kqv'"
  -- info --model ${BORG_REFUSED}/unknown_key.gguf)
borg_cli_test(cli_refuse_llama_window --exit 2 --stderr-has "llama.attention.sliding_window"
  -- info --model ${BORG_REFUSED}/llama_window.gguf)
borg_cli_test(cli_refuse_phi3 --exit 2 --stderr-has "unsupported architecture 'phi3'"
  -- info --model ${BORG_REFUSED}/phi3.gguf)
# A run is refused the same way, before a job is read or a layer loaded.
borg_cli_test(cli_refuse_run_rope_yarn --exit 2 --stderr-has "rope scaling type 'yarn'"
  -- run --model ${BORG_REFUSED}/rope_yarn.gguf --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl
     --out ${BORG_TEST_DATA}/refused/never.jsonl --force)
set_tests_properties(cli_refuse_rope_yarn cli_refuse_unknown_tensor cli_refuse_unknown_arch cli_refuse_unknown_key
  cli_refuse_llama_window cli_refuse_phi3 cli_refuse_run_rope_yarn PROPERTIES FIXTURES_REQUIRED refused_data)

borg_cli_test(cli_info_gemma --stdout-re "^architecture +gemma3$" --stdout-re "^sliding window +512 tokens on 15 of 18"
  --stdout-re "^ +Q5_0 " -- info --model ${BORG_GEMMA_MODEL})

# gemma-3-270m: the same answers however its layers are split, and a
# killed stage survived with identical answers.
add_test(NAME e2e_gemma_split_invariance
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_split_invariance.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_GEMMA_MODEL}
          --mpiexec ${MPIEXEC_EXECUTABLE} --uneven 3,10,5 ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)
add_test(NAME e2e_gemma_rank_failure
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_ulfm.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_GEMMA_MODEL} --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(e2e_gemma_split_invariance e2e_gemma_rank_failure PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 900)

# Greedy continuations of the inputs/ jobs on the real models against
# llama.cpp's (tests/goldens/continuations.json, F32 KV cache, so ours is
# F32 too): the same prompts, and the same ids until a step where
# llama.cpp's own top two were close.
add_test(NAME e2e_continuations_smollm2
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_continuations.py --borg $<TARGET_FILE:borg-infer>
          --model-name smollm2 --model ${BORG_MODEL})
add_test(NAME e2e_continuations_gemma3
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_continuations.py --borg $<TARGET_FILE:borg-infer>
          --model-name gemma3 --model ${BORG_GEMMA_MODEL}
          "--expect=The capital of France is the city of=> Paris"
          "--expect=Question: What is the capital of France?\nAnswer:=> Paris")
set_tests_properties(e2e_continuations_smollm2 e2e_continuations_gemma3 PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" TIMEOUT 300)

# borg-infer perplexity against llama-perplexity (tests/goldens/perplexity.json)
# on the first chunks of tests/perplexity/text.txt: within 1% of llama.cpp
# with the same KV cache: F32 in both activation modes, and the default F16
# in one process, through a pipeline and with gemma3's sliding windows.
foreach(mode q8 f32)
  add_test(NAME e2e_perplexity_smollm2_${mode}
    COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_perplexity.py --borg $<TARGET_FILE:borg-infer>
            --model ${BORG_MODEL} --model-name smollm2 --ctx 512 --chunks 4 --activations ${mode} --kv-dtype f32)
endforeach()
add_test(NAME e2e_perplexity_smollm2_kv_f16
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_perplexity.py --borg $<TARGET_FILE:borg-infer>
          --model ${BORG_MODEL} --model-name smollm2 --ctx 512 --chunks 4 --kv-dtype f16)
add_test(NAME e2e_perplexity_smollm2_pipeline
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_perplexity.py --borg $<TARGET_FILE:borg-infer>
          --model ${BORG_MODEL} --model-name smollm2 --ctx 128 --chunks 8 --np 3 --mpiexec ${MPIEXEC_EXECUTABLE})
add_test(NAME e2e_perplexity_gemma3
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_perplexity.py --borg $<TARGET_FILE:borg-infer>
          --model ${BORG_GEMMA_MODEL} --model-name gemma3 --ctx 512 --chunks 2)
set_tests_properties(e2e_perplexity_smollm2_q8 e2e_perplexity_smollm2_f32 e2e_perplexity_smollm2_kv_f16
  e2e_perplexity_smollm2_pipeline e2e_perplexity_gemma3 PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)
