# The HDF5 results file, read back with h5py (tests/tools/check_h5.py).
borg_add_unit(test_h5out ${CMAKE_CURRENT_SOURCE_DIR}/test_h5out.c)
add_test(NAME test_h5out COMMAND test_h5out ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/tools/check_h5.py)
set_tests_properties(test_h5out PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" TIMEOUT 120)

# The same writer compiled without HDF5: h5out_open refuses, naming what to install.
if(HDF5_FOUND)
  add_executable(test_h5out_nohdf5 ${CMAKE_CURRENT_SOURCE_DIR}/test_h5out.c
    ${CMAKE_SOURCE_DIR}/src/coord/h5out.c ${CMAKE_SOURCE_DIR}/src/error.c)
  target_include_directories(test_h5out_nohdf5 PRIVATE ${CMAKE_SOURCE_DIR}/include ${CJSON_INCLUDE_DIR})
  target_link_libraries(test_h5out_nohdf5 PRIVATE m)
  add_test(NAME test_h5out_nohdf5 COMMAND test_h5out_nohdf5)
endif()
