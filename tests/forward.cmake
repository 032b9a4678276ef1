# The forward pass against the independent numpy reference (tests/reference/).
# Under the sanitizers fewer steps: what they check is the code each step
# runs, and 8 steps run all of it.
borg_add_unit(forward_dump forward_dump.c)
if(BORG_SANITIZE)
  set(borg_forward_gen 8)
else()
  set(borg_forward_gen 32)
endif()
add_test(NAME forward_reference_model
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_forward.py
          --dump $<TARGET_FILE:forward_dump> --model ${BORG_MODEL} --gen ${borg_forward_gen})
add_test(NAME forward_reference_tiny
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_forward.py
          --dump $<TARGET_FILE:forward_dump> --tiny ${BORG_TEST_DATA}/tiny --gen 8)
set_tests_properties(forward_reference_model forward_reference_tiny PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" TIMEOUT 600)
# Each greedy token's log-probability in the --h5 file against the reference's,
# teacher forced on tiny models; skipped (77) in a build without HDF5.
add_test(NAME reference_logprobs
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_logprobs.py
          --borg $<TARGET_FILE:borg-infer>)
set_tests_properties(reference_logprobs PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" SKIP_RETURN_CODE 77 TIMEOUT 300)
