#!/usr/bin/env bash
# Quick start, command 1: serve the Files API on the embedded default (SQLite + ./.filesapi/).
# Extra arguments go to `filesapi serve` (see `scripts/serve.sh --help`).
source "$(dirname "$0")/_bootstrap.sh"
ensure_venv ""
exec .venv/bin/filesapi serve "$@"
