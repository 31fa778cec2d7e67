#!/usr/bin/env bash
# Runs every test of qipc on a fresh Debian 12 machine, installing what it needs:
#   1. the real Qt peers (PyQt5 = Qt 5.15, PySide6-Essentials = Qt 6.12) via scripts/setup-qt.sh;
#   2. formatting, lints (warnings are errors) and the documentation;
#   3. cargo test for the whole workspace with every feature: unit tests, doctests, the
#      conformance suite for every Linux backend, the lifetime regression tests, multi-process
#      tests, Qt interop, the programs end to end, the command's tests;
#   4. the library and the codec without their default features;
#   5. the stress suite at CI size (kill, creator, last-detacher, fork and mixed Qt storms,
#      `qipc gc` beside them; every failure count must be 0);
#   6. Windows under Wine against real Windows Qt, and macOS type-checked (scripts/test-windows.sh);
#   7. every crate's `rust-version` claim, with that toolchain;
#   8. `cargo package` of the published crates;
#   9. the benchmarks, built and run once at a tiny size so they cannot rot;
#  10. a check that nothing was left behind in the temp dir, /dev/shm or ipcs.
# A peer that cannot be set up makes this fail; nothing is skipped. Each step prints its time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$target_dir"
log="$target_dir/test-output.txt"

t_all=$(date +%s)
step() { printf '\n== %s\n' "$*"; t_step=$(date +%s); }
took() { echo "-- $1: $(( $(date +%s) - t_step )) s"; }

step "Rust components"
# Lints and formatting use a fixed toolchain, so that a newer stable's new lints
# show up as a deliberate upgrade here and not as a red CI run.
lint_toolchain=${QIPC_LINT_TOOLCHAIN:-1.95.0}
rustup toolchain list | grep -q "^$lint_toolchain-" ||
  rustup toolchain install "$lint_toolchain" --profile minimal >/dev/null
rustup component add --toolchain "$lint_toolchain" rustfmt clippy >/dev/null
took "components"

step "Qt peers"
scripts/setup-qt.sh
took "Qt peers"

step "format, lints, documentation"
cargo "+$lint_toolchain" fmt --all -- --check
cargo "+$lint_toolchain" clippy --workspace --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo "+$lint_toolchain" doc -q --workspace --no-deps --all-features
took "lints"

# System V objects that exist before the tests, so that the check at the end
# only looks at what appeared during the run.
shm_ids() { awk 'NR > 1 { print $2, $5 }' /proc/sysvipc/shm 2>/dev/null | sort; }
shm_before=$(shm_ids)
# Likewise the socket directories of wineservers (scripts/test-windows.sh removes its own).
wine_dirs() { ls -d "${TMPDIR:-/tmp}"/wine-* 2>/dev/null | sort || true; }
wine_before=$(wine_dirs)

step "tests (Linux; real Qt 5 and Qt 6)"
set +e
# (The stress suite runs on its own below, in release mode.)
cargo test --workspace --exclude qipc-stress --all-features --no-fail-fast 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo "all tests: $passed passed, $failed failed"
if [ "$tests_rc" != 0 ]; then
  echo "cargo test failed (exit $tests_rc); failing tests:"
  grep -E '^test .* FAILED$|^    [a-z_:0-9]+$' "$log" || true
  exit "$tests_rc"
fi
took "tests"

step "without default features"
cargo test -q -p qipc --no-default-features --lib --test conformance --test lifetime
cargo test -q -p qipc-datastream --no-default-features
took "no default features"

step "stress suite (CI size; every failure count must be 0)"
cargo test --release -p qipc-stress -- --nocapture
took "stress"

step "Windows (under Wine, real Windows Qt 5.15.2 and 6.12) and macOS (type-checked)"
scripts/test-windows.sh
took "Windows and macOS"

step "rust-version claims"
# Each crate says which Rust it needs; check it, library, tests and examples, with that toolchain.
claims=$(cargo metadata -q --format-version 1 --no-deps | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    print(p["name"], p["rust_version"] or "")')
while read -r name version; do
  [ -n "$version" ] || { echo "$name claims no rust-version"; exit 1; }
  rustup toolchain list | grep -q "^$version-" || rustup toolchain install "$version" --profile minimal >/dev/null
  echo "$name: Rust $version"
  cargo "+$version" check -q -p "$name" --all-targets --all-features --locked
done <<<"$claims"
took "rust versions"

step "packages"
cargo package -q -p qipc-datastream -p qipc -p qipc-cli --allow-dirty
took "packages"

step "benchmarks (quick smoke run)"
scripts/bench.sh --quick
took "benchmarks"

step "nothing left behind"
left=$( { ls -d "${TMPDIR:-/tmp}"/qipc_*test* "${TMPDIR:-/tmp}"/qipc_datastream_* "${TMPDIR:-/tmp}"/qipc-windows-build.* /dev/shm/*qipc_test* /dev/shm/sem.*qipc_test* /dev/shm/.qipc-tmp.* 2>/dev/null || true; } )
# A System V segment that appeared during the run and whose creator is dead
# is a leak (segments of live processes belong to someone else).
while read -r id cpid; do
  [ -n "$id" ] || continue
  if ! grep -qx "$id $cpid" <<<"$shm_before" && ! kill -0 "$cpid" 2>/dev/null; then
    left+=$'\n'"System V segment id $id (creator pid $cpid is gone)"
  fi
done <<<"$(shm_ids)"
left+=$'\n'$(comm -13 <(echo "$wine_before") <(wine_dirs))
if [ -n "${left//[[:space:]]/}" ]; then
  echo "tests left objects behind:"; echo "$left"; exit 1
fi
echo "clean"
echo "all tests: $passed passed, $failed failed; everything took $(( $(date +%s) - t_all )) s"
