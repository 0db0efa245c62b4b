#!/usr/bin/env bash
# The README's second command (and CI's): set up with the test tools, lint and type-check, then run every test.
# pytest's exit code 5 ("no tests collected") is a failure here, never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit $?
# Real Prometheus and Alertmanager for the alerting test (Debian packages; the test starts and stops its own).
bash scripts/install-monitoring.sh || exit $?
.venv/bin/ruff check . || exit $?
.venv/bin/mypy || exit $?  # the packages and benchmarks, as pyproject.toml's [tool.mypy] lists them
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
