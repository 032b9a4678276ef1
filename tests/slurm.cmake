# The sbatch scripts on a real Slurm: tests/tools/slurm_up.sh starts a
# private one-node cluster (munged, slurmctld, slurmd on their own ports,
# from Debian's slurm-wlm and munge, which tests/setup.sh installs) and the
# tests take it down again. They need root; if Slurm cannot start they fail.
set(BORG_SLURM_E2E ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
add_test(NAME e2e_slurm_batch
  COMMAND ${Python3_EXECUTABLE} ${BORG_SLURM_E2E}/test_slurm_batch.py
          --build ${CMAKE_BINARY_DIR} --model ${BORG_MODEL} --jobs ${CMAKE_SOURCE_DIR}/inputs/example.jsonl)
set_tests_properties(e2e_slurm_batch PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 600)

# A batch longer than its time limit (1 minute): drained, requeued and
# resumed until complete, with the tokens of a plain run. Under the
# sanitizers the batch is sized to 60 s of work: still more than a segment
# does (30 s before its warning, then the drain of the jobs in flight).
if(BORG_SANITIZE)
  set(borg_slurm_work_s 60)
else()
  set(borg_slurm_work_s 90)
endif()
add_test(NAME e2e_slurm_continue
  COMMAND ${Python3_EXECUTABLE} ${BORG_SLURM_E2E}/test_slurm_continue.py
          --borg $<TARGET_FILE:borg-infer> --build ${CMAKE_BINARY_DIR} --model ${BORG_MODEL}
          --work-s ${borg_slurm_work_s})
set_tests_properties(e2e_slurm_continue PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" RUN_SERIAL TRUE TIMEOUT 1200)
