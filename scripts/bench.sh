#!/usr/bin/env bash
# Benchmarks qipc side by side with Qt 5.15, Qt 6 and the raw floor, in one run:
#   qipc (bench/qipc-bench, legacy System V key and POSIX native key), Qt 5 and Qt 6 (bench/qt/qt_bench.cpp
#   built against Debian's qtbase5-dev / qt6-base-dev) and the floor (bench/floor/floor.c: semop, robust
#   pthread mutex, sem_t, memcpy, pipe, socket, futex, spinning).
#
# usage: scripts/bench.sh [--quick] [--runs N] [--out DIR]
#   (full)     every measurement N times (default 3), interleaved; writes BENCHMARKS.md at the top of the
#              workspace and bench/plot.svg; raw outputs go to bench-out/results/.
#   --quick    everything once at a tiny size (for CI, so the benchmarks cannot rot); writes its report to
#              bench-out/quick/ and never touches BENCHMARKS.md. Fails if any program fails, if a
#              contended counter or a ping-pong/bulk check is wrong, or if anything is left behind.
#   --out DIR  write the report (BENCHMARKS.md, plot.svg) and raw results under DIR instead.
#
# Needs root (or the packages already installed) for `apt-get install` of qtbase5-dev, qt6-base-dev,
# g++, make and pkg-config. Benchmarks never run inside `cargo test`.
#
# Every run uses keys unique to it: a tag made of letters, and a private directory that serves as TMPDIR
# for the programs (Qt and qipc put their System V key files there) and as the ftok path of the floor's
# System V objects. A trap removes everything of the run (processes, key files, SysV segments and
# semaphores, /dev/shm entries) even when the run fails or is interrupted.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
runs=3
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --runs) runs=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then
  runs=1
  out=${out:-$root/bench-out/quick}
  md=$out/BENCHMARKS.md
  svg=$out/plot.svg
elif [ -n "$out" ]; then
  md=$out/BENCHMARKS.md
  svg=$out/plot.svg
else
  out=$root/bench-out
  md=$root/BENCHMARKS.md
  svg=$root/bench/plot.svg
fi
results=$out/results
bin=$root/bench-out/bin
started=$(date +%s)

say() { printf '== %s\n' "$*"; }

# ---- 1. tools and Qt ------------------------------------------------------------------------------
missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
if ! pkg-config --exists Qt5Core 2>/dev/null; then missing+=(qtbase5-dev); fi
if ! pkg-config --exists Qt6Core 2>/dev/null; then missing+=(qt6-base-dev); fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "bench.sh: need ${missing[*]} (apt-get install as root)" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}"
fi

# ---- 2. build -------------------------------------------------------------------------------------
say "build"
make -s -C "$root/bench" OUT="$bin"
(cd "$root" && cargo build --release -q -p qipc-bench)
qb=${CARGO_TARGET_DIR:-$root/target}/release/qipc-bench
[ -x "$qb" ] || { echo "bench.sh: $qb missing after build" >&2; exit 1; }

# ---- 3. run-unique names, clean-up trap -----------------------------------------------------------
tag=qipcbench$(printf '%s%05d' "$$" "$RANDOM" | tr 0-9 a-j)
rundir=$(mktemp -d "${TMPDIR:-/tmp}/qipcbench.XXXXXX")
export QIPC_BENCH_TAG=$tag QIPC_BENCH_DIR=$rundir
current=""

ftok_key() {  # ftok_key PATH PROJ -> decimal key as glibc computes it
  local dev ino
  dev=$(stat -c %d "$1") ino=$(stat -c %i "$1")
  echo $(( ($2 << 24) | ((dev & 0xff) << 16) | (ino & 0xffff) ))
}

# Removes the System V objects with the given keys (decimal) and prints what it removed.
remove_sysv_keys() {
  local keys=" $* " k id
  while read -r k id _; do
    case "$keys" in *" $k "*) ipcrm -m "$id" 2>/dev/null && echo "removed shm $id (key $k)" ;; esac
  done < <(tail -n +2 /proc/sysvipc/shm)
  while read -r k id _; do
    case "$keys" in *" $k "*) ipcrm -s "$id" 2>/dev/null && echo "removed sem $id (key $k)" ;; esac
  done < <(tail -n +2 /proc/sysvipc/sem)
}

# Everything this run may have left: key files in $rundir, SysV objects keyed on them (Qt/qipc use
# project id 'Q') or on $rundir itself (floor, ids 1..8), and /dev/shm entries with the tag.
leftovers() {
  local keys=() f
  for f in "$rundir"/*; do
    [ -e "$f" ] || continue
    keys+=("$(ftok_key "$f" 81)")
  done
  if [ -d "$rundir" ]; then
    for id in 1 2 3 4 5 6 7 8; do keys+=("$(ftok_key "$rundir" "$id")"); done
  fi
  echo "${keys[@]}"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$current" ] && kill -0 "$current" 2>/dev/null; then
    kill -TERM "$current" 2>/dev/null || true   # timeout(1) passes it on to its process group
    wait "$current" 2>/dev/null || true
  fi
  if [ -d "$rundir" ]; then
    remove_sysv_keys $(leftovers) || true
    rm -rf "$rundir"
  fi
  rm -f /dev/shm/*"$tag"* 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 4. sizes ---------------------------------------------------------------------------------------
if [ "$quick" = 1 ]; then
  LOCK_N=2000; LIFE_N=50
  C2_N=300; C4_N=150
  BULK=("4K 4096 5 50" "64K 65536 3 20" "1M 1048576 2 5")
  PP_N=400; PP_CHUNK=150
  T=60
else
  LOCK_N=1000000; LIFE_N=10000
  C2_N=50000; C4_N=25000
  BULK=("4K 4096 2000 100000" "1M 1048576 30 500" "256M 268435456 1 3")
  PP_N=50000; PP_CHUNK=25000
  T=900
fi

rm -rf "$results"
mkdir -p "$results"
failures=0

# run FILE ENV... -- CMD...   : appends the output of one program run to $results/FILE.txt
run() {
  local file=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local f=$results/$file.txt rc=0
  echo "## $(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg) ${envs[*]} :: ${*#$root/}" >> "$f"
  env "${envs[@]}" TMPDIR="$rundir" timeout --kill-after=10 "$T" "$@" >> "$f" 2>&1 &
  current=$!
  wait "$current" || rc=$?
  current=""
  if [ "$rc" != 0 ] || grep -q '^CHECK .* FAIL' "$f"; then
    echo "## FAILED rc=$rc" >> "$f"
    echo "FAILED ($rc): $file: ${*#$root/}" >&2
    tail -5 "$f" >&2
    failures=$((failures + 1))
    if [ "$quick" = 1 ]; then exit 1; fi
  fi
}

# ---- 5. machine -------------------------------------------------------------------------------------
{
  echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "mode $([ "$quick" = 1 ] && echo quick || echo full) runs=$runs"
  echo "nproc $(nproc)"
  echo "cpu $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "hypervisor $(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)"
  echo "kernel $(uname -r)"
  echo "os $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}")"
  echo "mem $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "qt5 $(pkg-config --modversion Qt5Core)"
  echo "qt6 $(pkg-config --modversion Qt6Core)"
  echo "gcc $(g++ -dumpfullversion)"
  echo "rustc $(rustc --version)"
  echo "tmpfs_for_keys $(df --output=fstype "$rundir" | tail -1)"
  echo "thp $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
  echo "thp_shmem $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null)"
  echo "nr_hugepages $(cat /proc/sys/vm/nr_hugepages 2>/dev/null)"
  echo "load_start $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$results/machine.txt"
run info.qt5 -- "$bin/qt5_bench" info
run info.qt6 -- "$bin/qt6_bench" info
run info.qipc-sysv -- "$qb" sysv info
run info.qipc-posix -- "$qb" posix info

# ---- 6. the suite, interleaved: every round runs every implementation of a measurement back to back, -----
# starting each round with a different one (so no implementation always runs first, e.g. right after memory
# was freed: this VM returns freed memory to the host).
QIPC=("qipc-sysv:$qb sysv" "qipc-posix:$qb posix")
QT=("qt5:$bin/qt5_bench" "qt6:$bin/qt6_bench")
pin_env() { [ "$1" = none ] && echo "PIN=" || echo "PIN=$1"; }
jobs=()
add() { jobs+=("$1|$2|$3"); }   # add FILE ENV "COMMAND ARGS"
flush_jobs() {                  # runs the queued jobs, rotated by the round number
  local n=${#jobs[@]} i spec file env cmd
  for ((i = 0; i < n; i++)); do
    spec=${jobs[$(( (i + round - 1) % n ))]}
    file=${spec%%|*}; spec=${spec#*|}
    env=${spec%%|*}; cmd=${spec#*|}
    if [ -n "$env" ]; then run "$file" "$env" -- $cmd; else run "$file" -- $cmd; fi
  done
  jobs=()
}

for round in $(seq 1 "$runs"); do
  say "round $round/$runs: lock"
  for impl in "${QT[@]}" "${QIPC[@]}"; do add "${impl%%:*}.lock" "" "${impl#*:} lock $LOCK_N"; done
  add floor.lock "" "$bin/floor lock $LOCK_N"
  flush_jobs

  say "round $round/$runs: create, attach"
  for what in create attach; do
    for impl in "${QT[@]}" "${QIPC[@]}"; do add "${impl%%:*}.$what" "" "${impl#*:} $what $LIFE_N"; done
    add floor.$what "" "$bin/floor $what $LIFE_N"
    flush_jobs
  done

  say "round $round/$runs: contended counter"
  for pin in same split none; do
    for np in 2 4; do
      n=$([ $np = 2 ] && echo $C2_N || echo $C4_N)
      for impl in "${QT[@]}" "${QIPC[@]}"; do
        add "${impl%%:*}.contend$np.$pin" "$(pin_env $pin)" "${impl#*:} contend $np $n"
      done
      for prim in semop namedsem pthread; do
        add "floor-$prim.contend$np.$pin" "$(pin_env $pin)" "$bin/floor contend $prim $np $n"
      done
      flush_jobs
    done
  done

  say "round $round/$runs: bulk"
  for spec in "${BULK[@]}"; do
    set -- $spec
    for impl in "${QT[@]}" "${QIPC[@]}"; do add "${impl%%:*}.bulk.$1" "" "${impl#*:} bulk $2 $3 $4"; done
    add "floor.bulk.$1" "" "$bin/floor bulk $2 $3 $4"
    flush_jobs
  done

  say "round $round/$runs: ping-pong"
  for pin in same split none; do
    e=$(pin_env $pin)
    for impl in "${QT[@]}"; do add "${impl%%:*}.pingpong.$pin" "$e" "${impl#*:} pingpong $PP_N $PP_CHUNK"; done
    for impl in "${QIPC[@]}"; do add "${impl%%:*}.pingpong.$pin" "$e" "${impl#*:} pingpong $PP_N $PP_CHUNK undo"; done
    add "qipc-sysv-noundo.pingpong.$pin" "$e" "$qb sysv pingpong $PP_N $PP_N noundo"
    for v in semop semt pipe socket futex spin; do
      [ "$v" = spin ] && [ "$pin" = same ] && continue   # spinning against a partner on the same CPU measures the time slice
      add "floor-$v.pingpong.$pin" "$e" "$bin/floor pingpong $v $PP_N"
    done
    flush_jobs
  done
done
echo "load_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$results/machine.txt"
echo "elapsed_s $(( $(date +%s) - started ))" >> "$results/machine.txt"

# ---- 7. nothing left behind? (the programs must clean up after themselves; the trap would hide it) ----
left=$( { ls -A "$rundir"; ls /dev/shm | grep -F "$tag"; remove_sysv_keys $(leftovers); } 2>/dev/null || true)
if [ -n "$left" ]; then
  echo "bench.sh: the programs left objects behind:" >&2
  echo "$left" >&2
  echo "leftovers $(echo "$left" | tr '\n' ' ')" >> "$results/machine.txt"
  failures=$((failures + 1))
fi

# ---- 8. single-process micro-benchmarks (divan) ---------------------------------------------------------
say "micro-benchmarks (divan, bench/qipc-bench/benches/micro.rs)"
if [ "$quick" = 1 ]; then
  micro_args=(--test)
else
  micro_args=()
fi
if ! (cd "$root" && cargo bench -q -p qipc-bench --bench micro -- "${micro_args[@]}") > "$results/micro.txt" 2>&1; then
  cat "$results/micro.txt" >&2
  echo "bench.sh: the divan micro-benchmarks failed" >&2
  failures=$((failures + 1))
fi

# ---- 9. report ----------------------------------------------------------------------------------------
say "report"
mkdir -p "$(dirname "$md")" "$(dirname "$svg")"
python3 "$root/bench/report.py" --results "$results" --md "$md" --svg "$svg" \
  $([ "$quick" = 1 ] && echo --quick) --failures "$failures"
if [ "$quick" != 1 ] && [ -s "$results/micro.txt" ]; then
  {
    echo
    echo "## Single-process micro-benchmarks (divan)"
    echo
    echo 'From `cargo bench -p qipc-bench --bench micro` in the same run (qipc only; no Qt equivalent).'
    echo
    echo '```text'
    grep -v '^ *$' "$results/micro.txt"
    echo '```'
  } >> "$md"
fi
echo "report: $md"
echo "plot:   $svg"
echo "raw:    $results"
echo "took $(( $(date +%s) - started )) s"
if [ "$failures" != 0 ]; then
  echo "bench.sh: $failures failure(s)" >&2
  exit 1
fi
