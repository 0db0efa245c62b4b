#!/usr/bin/env bash
# Create ./.venv with Python 3.11+ and install the platform (and, with --test, the test tools). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
[ -n "$PY" ] || { echo "setup: no python3 found (need 3.11 or 3.12)" >&2; exit 2; }
"$PY" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' \
  || { echo "setup: $PY is $("$PY" -V 2>&1); need Python 3.11 or 3.12" >&2; exit 2; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
echo "setup: ready ($(.venv/bin/python -V), scc at .venv/bin/scc)"
