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
# One test process per core (pytest-xdist): every process starts its own throwaway PostgreSQL,
# VictoriaMetrics and Mosquitto on free ports, so the processes share nothing but the machine.
# Work-stealing keeps both cores busy to the end; QLOOP_TEST_PROCESSES=0 runs in one process.
exec .venv/bin/python -m pytest -n "${QLOOP_TEST_PROCESSES:-auto}" --dist worksteal "$@"
