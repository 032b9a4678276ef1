#!/usr/bin/env bash
# Builds the project against Debian's Open MPI 4.1 (which has no ULFM) and
# runs a batch in one process with it: the build must not depend on
# Open MPI 5. e2e_rank_failure_openmpi41 then kills a rank of a run of this
# build (tests/mpi41.cmake). Usage: build_openmpi41.sh SOURCE_DIR BUILD_DIR MODEL JOBS
set -euo pipefail
src=$1 build=$2 model=$3 jobs=$4
mpicc=/usr/bin/mpicc.openmpi
if [ ! -x "$mpicc" ]; then
  echo "FAIL: $mpicc not found: install libopenmpi-dev (tests/setup.sh does)" >&2
  exit 1
fi
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMPI_C_COMPILER="$mpicc" \
  -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.openmpi >/dev/null
cmake --build "$build" -j2 --target borg-infer >/dev/null
grep -q "openmpi/lib/libmpi" "$build/CMakeCache.txt" || { echo "FAIL: not configured against Debian's Open MPI" >&2; exit 1; }
"$build/borg-infer" run --model "$model" --jobs "$jobs" --out "$build/results.jsonl" --force --quiet
lines=$(wc -l < "$build/results.jsonl")
want=$(grep -c . "$jobs")
[ "$lines" = "$want" ] || { echo "FAIL: $lines results for $want jobs" >&2; exit 1; }
echo "built against Debian's Open MPI 4.1 and ran $lines jobs"
