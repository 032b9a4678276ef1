# Wire frames between ranks.
borg_add_unit(test_frame ${CMAKE_CURRENT_SOURCE_DIR}/test_frame.c)
add_test(NAME test_frame COMMAND test_frame)
set_tests_properties(test_frame PROPERTIES TIMEOUT 60)

# Which ranks do what: replicas, stages and spares, after failures too.
borg_add_unit(test_topology ${CMAKE_CURRENT_SOURCE_DIR}/test_topology.c)
add_test(NAME test_topology COMMAND test_topology)
