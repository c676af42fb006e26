#!/usr/bin/env bash
# Command 1: set up, then run the main job (a simulated fleet through the whole system).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/qloop demo "$@"
