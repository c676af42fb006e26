#!/usr/bin/env bash
# Command 2: set up (including Mosquitto, PostgreSQL and VictoriaMetrics for the tests), then
# lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
