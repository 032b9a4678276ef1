# Two hosts on one machine (network namespaces joined by a veth pair,
# tests/tools/netns_hosts.sh; root needed): the link to the second host cut
# mid-batch under ULFM and the threaded heartbeat detector, through the
# launcher wrapper. Every job once, tokens of an undisturbed run, only host
# b's ranks declared dead, the launcher out within seconds of the last line.
add_test(NAME e2e_two_hosts
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_two_hosts.py
          --borg $<TARGET_FILE:borg-infer> --model ${BORG_MODEL} --launcher ${CMAKE_BINARY_DIR}/borg-mpirun
          --hosts-tool ${CMAKE_CURRENT_SOURCE_DIR}/tools/netns_hosts.sh)
set_tests_properties(e2e_two_hosts PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)
