# CPU matrix kernels: matmul() on every weight type against a double-precision
# reference, on the AVX2 and the portable path, with f32 and with 8-bit
# activations, and its batch/thread invariance.
add_executable(bench_matmul ${CMAKE_SOURCE_DIR}/bench/bench_matmul.c)
target_include_directories(bench_matmul PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(bench_matmul PRIVATE borgcore)
add_executable(bench_attention ${CMAKE_SOURCE_DIR}/bench/bench_attention.c)
target_include_directories(bench_attention PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cpu)
target_link_libraries(bench_attention PRIVATE borgcore m)

borg_add_unit(test_matmul ${CMAKE_CURRENT_SOURCE_DIR}/test_matmul.c)
target_include_directories(test_matmul PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cpu) # matmul_kernels.h
# One run per kernel path and activation mode; a path this machine lacks
# exits 77 and is reported as skipped.
foreach(isa portable avx2 avx512)
  foreach(act 0 1)
    if(act)
      set(name test_matmul_q8_${isa})
    else()
      set(name test_matmul_${isa})
    endif()
    add_test(NAME ${name} COMMAND test_matmul)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "BORG_ISA=${isa};BORG_Q8_ACTIVATIONS=${act}"
                         SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
endforeach()

# Attention (both paths) and rotary embedding against double references.
borg_add_unit(test_ops ${CMAKE_CURRENT_SOURCE_DIR}/test_ops.c)
target_include_directories(test_ops PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cpu) # ops_kernels.h
add_test(NAME test_ops COMMAND test_ops)
