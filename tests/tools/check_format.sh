#!/usr/bin/env bash
# Every C file follows the repository's .clang-format (clang-format 14, as
# Debian 12 ships it: tests/setup.sh installs it). Lists the files that do
# not, with the first lines clang-format would change.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang-format >/dev/null; then
  echo "clang-format is not installed (tests/setup.sh installs it)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find src kernels include tests bench -name '*.[ch]')
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (clang-format -i $f)"
    clang-format --dry-run "$f" 2>&1 | head -6
    bad=$((bad + 1))
  fi
done
echo "${#files[@]} files checked, $bad not formatted"
[ "$bad" = 0 ]
