#!/usr/bin/env bash
# Install the Debian packages the test suite needs, when they are missing.
# Tests that need one of these fail in CI (CI=true) and skip elsewhere when absent.
set -euo pipefail

need=()
command -v systemd-journal-remote >/dev/null 2>&1 \
  || [ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
command -v journalctl >/dev/null 2>&1 || need+=(systemd)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
