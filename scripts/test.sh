#!/usr/bin/env bash
# Quick start, command 2: run the whole test suite (lint, types, every test, real backends and SDKs).
# Installs what it needs first. Extra arguments go to pytest (e.g. -k paging, -x).
source "$(dirname "$0")/_bootstrap.sh"
ensure_venv "[test]"

# Real servers and a real browser for the tests that use them, from Debian's packages: PostgreSQL
# (the tests start their own cluster on a free port), nginx (the deployment guide's config is
# tested as written), Chromium (the web console's browser tests, driven by the playwright package
# with executable_path; Playwright's own browser download is never used). SeaweedFS, the S3 server,
# comes from PyPI with the test extras.
need=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/chromium ] || need+=(chromium)
# The container tests (tests/test_container.py): podman (no Docker engine here), runc (crun refuses
# cgroup v1) and mmdebstrap (the base images, as no image registry answers).
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)  # tests/test_pgbouncer.py: transaction pooling
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} (apt)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The beta-era Python SDK lives in its own venv beside the newest one.
OLD_SDK=.venv-sdk-1.1.0
if [ ! -x "$OLD_SDK/bin/python" ] || ! "$OLD_SDK/bin/python" -c 'import anthropic' 2>/dev/null; then
  echo "==> creating $OLD_SDK (anthropic==1.1.0)" >&2
  .venv/bin/python -m venv "$OLD_SDK"
  "$OLD_SDK/bin/python" -m pip install --quiet anthropic==1.1.0
fi
export FILESAPI_OLD_SDK_PYTHON="$ROOT/$OLD_SDK/bin/python"

# The gateway tests' third-party Messages mock (aimock) and the TypeScript SDK, from npm's lock
# files (tests/gateway_node, conformance/typescript); the tests run the same `npm ci` themselves
# when a lock file changed.
if command -v npm >/dev/null 2>&1; then
  for dir in tests/gateway_node conformance/typescript; do
    [ -f "$dir/node_modules/.conformance-lock-sha256" ] || (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error \
      && sha256sum package-lock.json | cut -d' ' -f1 | tr -d '\n' >node_modules/.conformance-lock-sha256)
  done
fi

echo "==> ruff" >&2
.venv/bin/ruff check src tests bench conformance
.venv/bin/ruff format --check src tests bench conformance
echo "==> mypy --strict" >&2
.venv/bin/mypy
echo "==> pytest" >&2
exec .venv/bin/python -m pytest "$@"
