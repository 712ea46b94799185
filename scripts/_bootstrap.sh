# Sourced by serve.sh and test.sh: make .venv (Python >= 3.11) and install filesapi into it.
# Re-installs only when pyproject.toml changes, so the second run starts at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "filesapi needs Python >= 3.11 (python3.11 not found)" >&2
  return 1
}

ensure_venv() {  # ensure_venv EXTRAS  (e.g. "" or "[test]")
  local extras="$1" stamp
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv" >&2
    "$(find_python)" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)${extras//[\[\]]/-}"
  if [ ! -f "$stamp" ]; then
    echo "==> installing filesapi${extras} into .venv" >&2
    .venv/bin/python -m pip install --quiet -e ".${extras}"
    touch "$stamp"
  fi
}
