#!/usr/bin/env bash
# The README's first command: set everything up, then run the main job (a synthetic LLR day, live board).
# Extra arguments go to `scc demo` (e.g. --scenario surge --speed 1440 --hours 12).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/scc demo "$@"
