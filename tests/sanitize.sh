#!/usr/bin/env bash
# The whole suite again, under AddressSanitizer and UndefinedBehaviorSanitizer,
# in a second build directory (build-asan/). Optimized (RelWithDebInfo: -O2 -g),
# so that the runs that load real models fit in CI's time; any sanitizer report
# fails its test (-fno-sanitize-recover). Leaks are checked in every process
# that does not start MPI; Open MPI's own start-up allocations are suppressed
# (tests/lsan.supp) and MPI runs check everything else. Run after tests/setup.sh.
# Usage: tests/sanitize.sh [ctest options, e.g. -L unit]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -x .venv/bin/mpicc ]; then
  echo "sanitize: run tests/setup.sh first (it makes .venv/ with Open MPI 5)" >&2
  exit 1
fi
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBORG_SANITIZE=ON \
  -DMPI_C_COMPILER="$root/.venv/bin/mpicc" -DMPIEXEC_EXECUTABLE="$root/.venv/bin/mpiexec" \
  -DPython3_EXECUTABLE="$root/.venv/bin/python" >/dev/null
cmake --build build-asan -j"$(nproc)"
# halt_on_error: the first report ends the process with a failure, so no
# test can pass over one.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:print_stacktrace=1:halt_on_error=1"
ctest --test-dir build-asan --output-on-failure -j2 "$@"
