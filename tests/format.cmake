# The code follows .clang-format (tests/tools/check_format.sh).
add_test(NAME format_check COMMAND ${CMAKE_SOURCE_DIR}/tests/tools/check_format.sh)
set_tests_properties(format_check PROPERTIES TIMEOUT 120)
