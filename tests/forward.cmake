# The forward pass against the independent numpy reference (tests/reference/).
borg_add_unit(forward_dump forward_dump.c)
add_test(NAME forward_reference_model
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_forward.py
          --dump $<TARGET_FILE:forward_dump> --model ${BORG_MODEL} --gen 32)
add_test(NAME forward_reference_tiny
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_forward.py
          --dump $<TARGET_FILE:forward_dump> --tiny ${BORG_TEST_DATA}/tiny --gen 8)
set_tests_properties(forward_reference_model forward_reference_tiny PROPERTIES
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" TIMEOUT 600)
