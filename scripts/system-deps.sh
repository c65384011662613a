#!/usr/bin/env bash
# Install the Debian packages the test suite needs, when they are missing.
# Tests that need one of these fail in CI (CI=true) and skip elsewhere when absent.
# Installs as root, or through sudo when it needs no password; otherwise prints the
# apt-get line to run. Never downloads browsers any other way (no `playwright install`):
# the browser test drives Debian's chromium at /usr/bin/chromium.
set -euo pipefail

need=()
# A tool in the sbin directories counts even when they are not on PATH (a non-root user).
have() { PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }
command -v systemd-journal-remote >/dev/null 2>&1 \
  || [ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
command -v journalctl >/dev/null 2>&1 || need+=(systemd)
# The browser test: Debian's Chromium, and a colour emoji font so the app's page icons
# render in its screenshots (which the README shows) instead of empty boxes.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
# Response playbooks: the firewall backends run for real inside a network namespace
# the tests create (`ip netns`), nftables and ipset + iptables.
have nft || need+=(nftables)
have iptables || need+=(iptables)
have ipset || need+=(ipset)
have ip || need+=(iproute2)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "system-deps: missing ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
