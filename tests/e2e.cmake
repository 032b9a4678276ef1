# End to end on the default model: the example batch, and the layer-split
# invariance of every job in inputs/ through MPI pipelines (with the
# defaults, and with f32 activations and an f32 KV cache).
set(BORG_E2E ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
file(GLOB BORG_INPUT_JOBS ${CMAKE_SOURCE_DIR}/inputs/*.jsonl)

add_test(NAME e2e_example
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_example.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL}
          --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)

add_test(NAME e2e_example_pipeline
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_example.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --np 3 --threads 1
          --mpiexec ${MPIEXEC_EXECUTABLE} --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)

# The KV cache's type: f16 by default, f32 asked for, both in the summary;
# a stage started with another one is refused.
add_test(NAME e2e_kv_dtype
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_kv_dtype.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --mpiexec ${MPIEXEC_EXECUTABLE}
          --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)

add_test(NAME e2e_split_invariance
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_split_invariance.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL}
          --mpiexec ${MPIEXEC_EXECUTABLE} --uneven 3,20,7 ${BORG_INPUT_JOBS})
add_test(NAME e2e_split_invariance_f32
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_split_invariance.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --activations f32 --kv-dtype f32
          --mpiexec ${MPIEXEC_EXECUTABLE} --uneven 3,20,7 ${BORG_INPUT_JOBS})
set_tests_properties(e2e_example e2e_example_pipeline e2e_kv_dtype e2e_split_invariance e2e_split_invariance_f32 PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 900)

add_test(NAME e2e_formats
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_formats.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL})
add_test(NAME e2e_formats_pipeline
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_formats.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --np 3 --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(e2e_formats e2e_formats_pipeline PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)

# Nothing lost: resume, stop signals, deadline, timeouts, cancellation.
add_test(NAME e2e_resume
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_resume.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL})
add_test(NAME e2e_resume_pipeline
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_resume.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --np 3 --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(e2e_resume e2e_resume_pipeline PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)

add_test(NAME e2e_damaged_frame
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_crc.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --mpiexec ${MPIEXEC_EXECUTABLE}
          --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)
set_tests_properties(e2e_damaged_frame PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)

# A stage rank killed mid-batch: ULFM recovery, or (without it) --resume.
add_test(NAME e2e_rank_failure
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_ulfm.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(e2e_rank_failure PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 900)

# The same kill without ULFM, through the launcher wrapper: exit 3, then --resume.
add_test(NAME e2e_rank_failure_no_ft
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_launcher.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --launcher ${CMAKE_BINARY_DIR}/borg-mpirun)
set_tests_properties(e2e_rank_failure_no_ft PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)

# A stage that loaded another model, mode or split stops the run (exit 2).
add_test(NAME e2e_stage_mismatch
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_mismatch.py --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL}
          --other ${CMAKE_SOURCE_DIR}/models/gemma-3-270m-q4_k_m.gguf --mpiexec ${MPIEXEC_EXECUTABLE}
          --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)
set_tests_properties(e2e_stage_mismatch PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)

# Embeddings: pooled final hidden states, the same bits however the
# prompt is chunked and the layers split.
add_test(NAME e2e_embeddings
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_embeddings.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --mpiexec ${MPIEXEC_EXECUTABLE})
set_tests_properties(e2e_embeddings PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)

# Progress on a terminal and in a pipe, status while running, metrics.
add_test(NAME e2e_progress
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_progress.py --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL})
set_tests_properties(e2e_progress PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)

# --trace: Chrome trace-event JSON with spans from every rank.
add_test(NAME e2e_trace
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_trace.py --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL}
          --mpiexec ${MPIEXEC_EXECUTABLE} --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)
set_tests_properties(e2e_trace PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)

# --h5: HDF5 results in step with the JSONL, through a kill and --resume.
add_test(NAME e2e_h5
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_h5.py --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL})
set_tests_properties(e2e_h5 PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)

# Duplicate ids: one result per id, errors naming the first line, through a kill and --resume.
add_test(NAME e2e_duplicate_ids
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_duplicates.py --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL})
set_tests_properties(e2e_duplicate_ids PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)

# Results that cannot be written: unwritable paths (exit 2), a full disk (exit 3, then --resume).
add_test(NAME e2e_full_disk
  COMMAND ${Python3_EXECUTABLE} ${BORG_E2E}/test_full_disk.py --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL})
set_tests_properties(e2e_full_disk PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)
