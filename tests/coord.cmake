# Coordinator logic: jobs, sampling, scheduling, chat templates, requests, results.
foreach(t jobs sampler scheduler chat_template requests results)
  borg_add_unit(test_${t} test_${t}.c)
  add_test(NAME test_${t} COMMAND test_${t})
  set_tests_properties(test_${t} PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}")
endforeach()

# The job-id set behind the duplicate-id check.
borg_add_unit(test_idset ${CMAKE_CURRENT_SOURCE_DIR}/test_idset.c)
add_test(NAME test_idset COMMAND test_idset)
