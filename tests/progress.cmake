# Progress: the terminal line, progress events, the metrics and status files, `borg-infer status`.
borg_add_unit(test_progress ${CMAKE_CURRENT_SOURCE_DIR}/test_progress.c)
add_test(NAME test_progress COMMAND test_progress)
# The metrics file through the real Prometheus parser (prometheus_client, installed by tests/setup.sh).
add_test(NAME test_progress_metrics
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/tools/check_metrics.py --writer $<TARGET_FILE:test_progress>)
set_tests_properties(test_progress test_progress_metrics PROPERTIES ENVIRONMENT "TMPDIR=${BORG_TEST_DATA}" TIMEOUT 60)

borg_cli_test(cli_status_help --stdout-has "Usage: borg-infer status --run-dir DIR" -- status --help)
borg_cli_test(cli_status_no_run_dir --exit 2 --stderr-has "status: give --run-dir" -- status)
borg_cli_test(cli_status_no_file --exit 2 --stderr-has "no_such_run/status.json: no status file"
  -- status --run-dir ${BORG_TEST_DATA}/no_such_run)
borg_cli_test(cli_run_help_progress --stdout-has "--progress-s S" --stdout-has "--metrics FILE" -- run --help)
borg_cli_test(cli_bad_progress_s --exit 2 --stderr-has "--progress-s needs a number of seconds (got 'soon')"
  -- run --model ${BORG_MODEL} --jobs j.jsonl --out r.jsonl --progress-s soon)
