# Sourced (not run) by scripts/setup-wine.sh and scripts/wine-run: where the project's Wine
# prefix and Windows Python live, the environment every Wine process gets, and how to bring up
# the wineserver. Nothing here changes the machine.
#
# Layout (QIPC_WINE_DIR, default .wine-ci/ at the top of the repository; git ignores it):
#   prefix/        the Wine prefix (WINEPREFIX), Windows 10, with the stub DLLs in system32
#   stubs/         the stub DLLs built from scripts/wine-stubs/
#   win/python/    Windows CPython 3.13 (embeddable distribution)
#   win/site/      the Qt subsets: PySide6 + shiboken6 (Qt 6), PyQt5 + PyQt5-Qt5 + sip (Qt 5)

qipc_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QIPC_WINE_DIR=${QIPC_WINE_DIR:-$qipc_root/.wine-ci}
export WINEPREFIX="$QIPC_WINE_DIR/prefix"
export WINEARCH=win64
# Wine's debug channels print a lot of noise on stderr; the caller may still ask for some.
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono or Gecko install prompts when the prefix is created.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}

# `wine` is a wrapper that warns about a missing 32-bit Wine; the 64-bit loader is enough here.
QIPC_WINE64=/usr/lib/wine/wine64
QIPC_WIN_PYTHON_UNIX="$QIPC_WINE_DIR/win/python/python.exe"
# How long a wineserver stays up after its last process exits. Keeping it up makes each later
# Wine process start in ~20 ms instead of ~350 ms.
QIPC_WINESERVER_LINGER=${QIPC_WINESERVER_LINGER:-300}

# The Windows path of a Unix path, through the Z: drive that every prefix maps to "/".
# (The same answer as `winepath -w`, without starting a Wine process.)
qipc_win_path() {
  local p
  p=$(realpath -m "$1")
  printf 'Z:%s\n' "${p//\//\\}"
}

qipc_wineserver_bin() {
  local c
  for c in /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver "$(command -v wineserver 2>/dev/null || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then
      printf '%s\n' "$c"
      return 0
    fi
  done
  echo "wine: no wineserver found (is the wine64 package installed? run scripts/setup-wine.sh)" >&2
  return 1
}

# Makes sure a wineserver runs for the prefix, and that the prefix's services are up, before a
# Wine process whose output is read through a pipe starts. The first process of a new wineserver
# starts services.exe, rpcss and friends, which inherit that process's stdout/stderr; if those
# are a pipe, the reader sees no end of file until the services exit (seconds, or the whole
# linger time). So: start the server on its own with -p (persistent), then boot the prefix with
# all stdio on /dev/null; only then run the real program.
qipc_wineserver_up() {
  local server
  server=$(qipc_wineserver_bin) || return 1
  mkdir -p "$WINEPREFIX"
  # -p fails (exit status 2) when a server already runs for this prefix; that is fine.
  if "$server" -p"$QIPC_WINESERVER_LINGER" </dev/null >/dev/null 2>&1; then
    "$QIPC_WINE64" wineboot </dev/null >/dev/null 2>&1
  fi
}

# Stops the prefix's wineserver and removes the directory it made for its socket
# ($TMPDIR/wine-XXXXXX/server-<dev>-<inode of the prefix>, which Wine leaves behind).
qipc_wineserver_down() {
  local server dev ino d
  server=$(qipc_wineserver_bin 2>/dev/null) || return 0
  [ -d "$WINEPREFIX" ] || return 0
  "$server" -k </dev/null >/dev/null 2>&1 || true
  "$server" -w </dev/null >/dev/null 2>&1 || true
  read -r dev ino < <(stat -c '%d %i' "$WINEPREFIX")
  for d in "${TMPDIR:-/tmp}"/wine-*/"$(printf 'server-%x-%x' "$dev" "$ino")"; do
    if [ -d "$d" ]; then rm -rf "$(dirname "$d")"; fi
  done
}
