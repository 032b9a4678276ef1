# The logger: human and JSON lines, levels, ranks per thread.
borg_add_unit(test_log ${CMAKE_CURRENT_SOURCE_DIR}/test_log.c)
add_test(NAME test_log COMMAND test_log)
set_tests_properties(test_log PROPERTIES TIMEOUT 60)
