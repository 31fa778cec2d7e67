#!/usr/bin/env bash
# The Windows and macOS part of qipc's checks, in one command, on a fresh Debian 12 machine:
#   1. scripts/setup-wine.sh: MinGW, Wine 8, the prefix, Windows Python + Qt 5.15.2 / 6.12, and the
#      Rust target x86_64-pc-windows-gnu; then the Rust targets aarch64/x86_64-apple-darwin;
#   2. rustfmt, and clippy -D warnings for x86_64-pc-windows-gnu, aarch64-apple-darwin and
#      x86_64-apple-darwin (macOS is type-checked only: nothing can link or run it here);
#   3. on Linux: qipc's unit tests of the name derivations (Qt's Windows names, the Darwin and
#      Windows key rules);
#   4. under Wine: qipc's unit tests, the conformance suite (every behaviour for legacy and
#      windows: native keys, with the multi-process ones: N x M locked increments, writer ->
#      reader, a holder killed with TerminateProcess), the interop tests against real Windows
#      Qt 6.12 and 5.15.2 (tests/windows_interop.rs, which also opens the objects Qt holds for
#      awkward keys and runs the example programs).
# A missing peer fails the run; nothing is skipped. Each step prints its time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
t_all=$(date +%s.%N)
step() { printf '\n== %s\n' "$*"; t_step=$(date +%s.%N); }
took() { awk -v a="$t_step" -v b="$(date +%s.%N)" -v n="$1" 'BEGIN { printf "-- %s: %.1f s\n", n, b - a }'; }

WIN=x86_64-pc-windows-gnu
APPLE=(aarch64-apple-darwin x86_64-apple-darwin)
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$root/scripts/wine-run"
# Two cores, shared: keep the builds modest.
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

step "Wine, Windows Python and Qt; Rust targets"
"$root/scripts/setup-wine.sh"
installed=$(rustup target list --installed)
for t in "${APPLE[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
# Lints use the same fixed toolchain as scripts/test.sh.
lint_toolchain=${QIPC_LINT_TOOLCHAIN:-1.95.0}
rustup toolchain list | grep -q "^$lint_toolchain-" ||
  rustup toolchain install "$lint_toolchain" --profile minimal >/dev/null
rustup component add --toolchain "$lint_toolchain" rustfmt clippy >/dev/null
lint_installed=$(rustup target list --installed --toolchain "$lint_toolchain")
for t in "$WIN" "${APPLE[@]}"; do
  grep -qx "$t" <<<"$lint_installed" || rustup target add --toolchain "$lint_toolchain" "$t"
done
took "setup"

cd "$root"
step "lints: rustfmt; clippy -D warnings for Windows and both Apple targets"
cargo "+$lint_toolchain" fmt -p qipc -- --check
for t in "$WIN" "${APPLE[@]}"; do
  echo "clippy --target $t"
  cargo "+$lint_toolchain" clippy -q --target "$t" -p qipc --all-targets -- -D warnings
  cargo "+$lint_toolchain" clippy -q --target "$t" -p qipc --all-targets --features qimage,qt-interop -- -D warnings
done
took "lints"

step "Linux: the unit tests of the name derivations"
cargo test -q -p qipc --lib -- key:: windows_names
took "Linux unit tests"

step "Windows build (tests and examples)"
# MinGW's dlltool (run by rustc for windows-sys' import libraries) leaves
# empty ccXXXXXX files in the temp dir: give it one of its own, removed at the end.
build_tmp=$(mktemp -d "${TMPDIR:-/tmp}/qipc-windows-build.XXXXXX")
# At the end, also stop the wineserver and remove the socket directory Wine leaves in the temp dir.
# shellcheck source=scripts/wine-common.sh
source "$root/scripts/wine-common.sh"
trap 'rm -rf "$build_tmp"; qipc_wineserver_down' EXIT
TMPDIR=$build_tmp cargo build -q --target "$WIN" -p qipc --features qimage --examples
TMPDIR=$build_tmp cargo test -q --target "$WIN" -p qipc --features qimage --lib --test conformance --no-run
TMPDIR=$build_tmp cargo test -q --target "$WIN" -p qipc --features qimage,qt-interop --test windows_interop --no-run
took "Windows build"

step "under Wine: qipc's unit tests and the conformance suite (processes included)"
cargo test --target "$WIN" -p qipc --features qimage --lib --test conformance
took "unit + conformance under Wine"

step "under Wine: interop with real Windows Qt 6.12 and 5.15.2, and the example programs"
cargo test --target "$WIN" -p qipc --features qimage,qt-interop --test windows_interop -- --nocapture
took "qipc interop under Wine"

awk -v a="$t_all" -v b="$(date +%s.%N)" 'BEGIN { printf "\n== scripts/test-windows.sh: all passed in %.1f s\n", b - a }'
