# The build also works against Debian's Open MPI 4.1 (no ULFM). It is a
# plain build of its own, so a sanitized build directory leaves it out.
if(NOT BORG_SANITIZE)
add_test(NAME build_openmpi41
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/build_openmpi41.sh ${CMAKE_SOURCE_DIR} ${BORG_TEST_DATA}/build-openmpi41
          ${BORG_MODEL} ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)
set_tests_properties(build_openmpi41 PROPERTIES TIMEOUT 600 FIXTURES_SETUP openmpi41)

# A stage rank killed without ULFM under Debian's mpirun: exit 3 through
# borg-mpirun, then --resume completes the batch.
add_test(NAME e2e_rank_failure_openmpi41
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_launcher.py
          --borg ${BORG_TEST_DATA}/build-openmpi41/borg-infer --model ${BORG_MODEL}
          --launcher ${BORG_TEST_DATA}/build-openmpi41/borg-mpirun)
set_tests_properties(e2e_rank_failure_openmpi41 PROPERTIES FIXTURES_REQUIRED openmpi41
  ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 300)
endif()
