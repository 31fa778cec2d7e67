#!/usr/bin/env bash
# Installs the real Qt peers that the interop tests run against, in a local
# virtual environment (.qt-venv at the top of the repository, or $QIPC_QT_VENV):
#   - PyQt5 from PyPI             -> Qt 5.15
#   - PySide6-Essentials from PyPI -> Qt 6.12
# It is idempotent and fails loudly: the interop tests never skip a missing peer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${QIPC_QT_VENV:-$root/.qt-venv}

check() {
  "$venv/bin/python" - <<'PY'
from PyQt5.QtCore import QT_VERSION_STR
from PyQt5.QtGui import QImage as Q5Image
from PySide6.QtCore import qVersion
from PySide6.QtGui import QImage as Q6Image
assert QT_VERSION_STR.startswith("5.15"), QT_VERSION_STR
assert qVersion().startswith("6."), qVersion()
print(f"Qt peers ready: PyQt5 (Qt {QT_VERSION_STR}), PySide6 (Qt {qVersion()})")
PY
}

if [ -x "$venv/bin/python" ] && check 2>/dev/null; then
  exit 0
fi

python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >/dev/null
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  'PyQt5>=5.15,<5.16' 'PySide6-Essentials>=6.12,<6.13'

if ! check 2>/dev/null; then
  # QtGui needs a few shared libraries that a minimal image may lack.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 >/dev/null
  fi
fi
check
