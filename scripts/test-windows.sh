#!/usr/bin/env bash
# Builds and tests qipc's Windows OS layer (qipc/src/sys/windows*.rs) through tests/windows-probe:
#   1. scripts/setup-wine.sh (MinGW, Wine, the prefix, Windows Python + Qt 5.15.2 / 6.12);
#   2. clippy with -D warnings for Linux and for x86_64-pc-windows-gnu;
#   3. cargo test on Linux (the name derivation's unit tests);
#   4. cargo test --target x86_64-pc-windows-gnu under Wine: the same, the Win32 wrappers' tests and
#      the interop tests against real Windows Qt (tests/qt/win_peer.py).
# A missing peer fails the run; nothing is skipped. Extra arguments go to the Windows cargo test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n== %s\n' "$*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

step "Wine, Windows Python and Qt"
"$root/scripts/setup-wine.sh"

cd "$root/tests/windows-probe"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$root/scripts/wine-run"

step "lints (Linux and Windows targets)"
cargo fmt -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --target x86_64-pc-windows-gnu --all-targets -- -D warnings

step "tests on Linux"
cargo test

step "tests under Wine"
t=$(date +%s.%N)
cargo test --target x86_64-pc-windows-gnu --no-run
echo "built in $(elapsed "$t")"
t=$(date +%s.%N)
cargo test --target x86_64-pc-windows-gnu "$@"
echo "Windows tests ran in $(elapsed "$t")"
