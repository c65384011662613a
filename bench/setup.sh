#!/usr/bin/env bash
# Install what `make bench` compares against: Debian's fail2ban (for fail2ban-regex).
# Safe to run again; needs root (or sudo) on Debian/Ubuntu; never prompts.
set -euo pipefail

if command -v fail2ban-regex >/dev/null 2>&1; then
    echo "fail2ban-regex present: $(fail2ban-regex --version 2>/dev/null | head -n 1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "bench/setup.sh: need root to install fail2ban (apt-get)" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y fail2ban
command -v fail2ban-regex >/dev/null
echo "installed: $(fail2ban-regex --version 2>/dev/null | head -n 1)"
