#!/usr/bin/env bash
# Runs every test of qipc on a fresh Debian 12 machine, installing what it needs:
#   1. the real Qt peers (PyQt5 = Qt 5.15, PySide6-Essentials = Qt 6.12) via scripts/setup-qt.sh;
#   2. formatting and lints;
#   3. cargo test for the whole workspace: unit tests, doctests, multi-process tests,
#      Qt interop tests, CLI tests and the seeds' programs end to end;
#   4. the benchmarks, built and run once at a tiny size so they cannot rot;
#   5. a check that nothing was left behind in the temp dir, /dev/shm or ipcs.
# A peer that cannot be set up makes this fail; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Qt peers"
scripts/setup-qt.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# System V objects that exist before the tests, so that the check at the end
# only looks at what appeared during the run.
shm_ids() { awk 'NR > 1 { print $2, $5 }' /proc/sysvipc/shm 2>/dev/null | sort; }
shm_before=$(shm_ids)

step "tests"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
tests_rc=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '[0-9]+ passed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "all tests: $passed passed, $failed failed"
if [ "$tests_rc" != 0 ]; then
  echo "cargo test failed (exit $tests_rc); failing tests:"
  grep -E '^test .* FAILED$|^    [a-z_:]+$' target/test-output.txt || true
  exit "$tests_rc"
fi

step "benchmarks (quick smoke run)"
scripts/bench.sh --quick

step "nothing left behind"
left=$( { ls -d "${TMPDIR:-/tmp}"/qipc_*test* /dev/shm/*qipc_test* /dev/shm/sem.*qipc_test* 2>/dev/null || true; } )
# A System V segment that appeared during the run and whose creator is dead
# is a leak (segments of live processes belong to someone else).
while read -r id cpid; do
  [ -n "$id" ] || continue
  if ! grep -qx "$id $cpid" <<<"$shm_before" && ! kill -0 "$cpid" 2>/dev/null; then
    left+=$'\n'"System V segment id $id (creator pid $cpid is gone)"
  fi
done <<<"$(shm_ids)"
if [ -n "${left//[[:space:]]/}" ]; then
  echo "tests left objects behind:"; echo "$left"; exit 1
fi
echo "clean"
echo "all tests: $passed passed, $failed failed"
