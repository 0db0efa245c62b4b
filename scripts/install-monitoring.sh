#!/usr/bin/env bash
# Install Prometheus (2.42) and Alertmanager (0.25) from Debian's repositories, for the alerting tests. Idempotent:
# does nothing when both binaries are present. Needs root (or sudo). Starts nothing: the tests run their own
# servers on loopback, on free ports, and stop them by pid.
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-monitoring: $(prometheus --version 2>&1 | head -1)"
  echo "install-monitoring: $(prometheus-alertmanager --version 2>&1 | head -1)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-monitoring: need root or sudo to install ${missing[*]}" >&2; exit 2; }
  SUDO="sudo"
fi
command -v apt-get >/dev/null 2>&1 || { echo "install-monitoring: apt-get not found (Debian/Ubuntu only)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "install-monitoring: installed ${missing[*]}: $(prometheus --version 2>&1 | head -1)"
