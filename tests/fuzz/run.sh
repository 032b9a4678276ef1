#!/usr/bin/env bash
# Fuzzes each target with clang's libFuzzer (ASan + UBSan) for SECONDS
# each, then adds to tests/fuzz/corpus/TARGET the small inputs of the
# merged corpus, and prints a line per target for tests/fuzz/README.md.
#
#   tests/fuzz/run.sh [SECONDS [TARGET...]]     (default 600 s; every target)
#
# Needs clang and libclang-rt-14-dev (Debian), the venv's Open MPI and the
# default model (tests/setup.sh). A crash or sanitizer report stops the run
# and leaves its input in build-fuzz/crash-TARGET-*: fix it, then add the
# input to the target's corpus as its regression test.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-600}
shift || true
targets=${*:-gguf jobs tokenizer frame chat_template}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBORG_FUZZ=ON \
  -DBORG_WERROR=OFF -DMPI_C_COMPILER="$PWD/.venv/bin/mpicc" -DPython3_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
for t in $targets; do
  cmake --build build-fuzz -j"$(nproc)" --target "fuzz_$t" >/dev/null
done
export BORG_FUZZ_MODEL="$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf"
for t in $targets; do
  found="build-fuzz/found-$t"
  mkdir -p "$found"
  log="build-fuzz/fuzz-$t.log"
  # New inputs go to $found; the committed corpus is only read.
  "build-fuzz/tests/fuzz_$t" -max_total_time="$secs" -max_len=262144 -rss_limit_mb=4096 -timeout=20 \
    -artifact_prefix="build-fuzz/crash-$t-" -print_final_stats=1 "$found" "tests/fuzz/corpus/$t" >"$log" 2>&1 || {
    echo "fuzz_$t: a finding; see $log and build-fuzz/crash-$t-*" >&2
    exit 1
  }
  before=$(ls "tests/fuzz/corpus/$t" | wc -l)
  # The smallest set with all the coverage found; of it, the inputs of up
  # to 16 KiB join the committed corpus (CTest replays it), the rest stays
  # in $found for the next campaign.
  merged="build-fuzz/merged-$t"
  rm -rf "$merged" && mkdir -p "$merged"
  "build-fuzz/tests/fuzz_$t" -merge=1 "$merged" "tests/fuzz/corpus/$t" "$found" >>"$log" 2>&1
  find "$merged" -type f -size -16k -exec cp -n {} "tests/fuzz/corpus/$t/" \;
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  echo "fuzz_$t: ${secs} s, ${runs:-?} runs, coverage ${cov:-?} edges, no finding; corpus $before -> $(ls "tests/fuzz/corpus/$t" | wc -l) inputs"
done
