# The build also works against Debian's Open MPI 4.1 (no ULFM).
add_test(NAME build_openmpi41
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/build_openmpi41.sh ${CMAKE_SOURCE_DIR} ${BORG_TEST_DATA}/build-openmpi41
          ${BORG_MODEL} ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)
set_tests_properties(build_openmpi41 PROPERTIES TIMEOUT 600)
