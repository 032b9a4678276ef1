# GGUF reader and dequantization.
set(BORG_GGUF_FIXTURES ${BORG_TEST_DATA}/gguf)

add_test(NAME gguf_fixtures
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/tools/gguf_fixtures.py ${BORG_GGUF_FIXTURES})
set_tests_properties(gguf_fixtures PROPERTIES FIXTURES_SETUP gguf_data TIMEOUT 60)

borg_add_unit(test_quant ${CMAKE_CURRENT_SOURCE_DIR}/test_quant.c)
add_test(NAME test_quant COMMAND test_quant ${BORG_GGUF_FIXTURES})

borg_add_unit(test_gguf ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf.c)
add_test(NAME test_gguf COMMAND test_gguf ${BORG_GGUF_FIXTURES} ${BORG_MODEL})

set_tests_properties(test_quant test_gguf PROPERTIES FIXTURES_REQUIRED gguf_data TIMEOUT 120)
