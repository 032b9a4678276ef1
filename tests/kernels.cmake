# CPU matrix kernels: matmul() on every weight type against a double-precision
# reference, on the AVX2 and the portable path, with f32 and with 8-bit
# activations, and its batch/thread invariance.
add_executable(bench_matmul ${CMAKE_SOURCE_DIR}/bench/bench_matmul.c)
target_include_directories(bench_matmul PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(bench_matmul PRIVATE borgcore)

borg_add_unit(test_matmul ${CMAKE_CURRENT_SOURCE_DIR}/test_matmul.c)
target_include_directories(test_matmul PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cpu) # matmul_kernels.h
add_test(NAME test_matmul COMMAND test_matmul)
set_tests_properties(test_matmul PROPERTIES ENVIRONMENT "BORG_Q8_ACTIVATIONS=0")
add_test(NAME test_matmul_portable COMMAND test_matmul)
set_tests_properties(test_matmul_portable PROPERTIES ENVIRONMENT "BORG_NO_AVX2=1;BORG_Q8_ACTIVATIONS=0")
add_test(NAME test_matmul_q8 COMMAND test_matmul)
set_tests_properties(test_matmul_q8 PROPERTIES ENVIRONMENT "BORG_Q8_ACTIVATIONS=1")
add_test(NAME test_matmul_q8_portable COMMAND test_matmul)
set_tests_properties(test_matmul_q8_portable PROPERTIES ENVIRONMENT "BORG_NO_AVX2=1;BORG_Q8_ACTIVATIONS=1")
set_tests_properties(test_matmul test_matmul_portable test_matmul_q8 test_matmul_q8_portable PROPERTIES TIMEOUT 300)

# Attention (both paths) and rotary embedding against double references.
borg_add_unit(test_ops ${CMAKE_CURRENT_SOURCE_DIR}/test_ops.c)
target_include_directories(test_ops PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cpu) # ops_kernels.h
add_test(NAME test_ops COMMAND test_ops)
