#!/usr/bin/env bash
# Debian packages the test suite talks to (real peers, no fakes). Installed only when missing,
# and only as root; `apt-get update` first because a fresh machine has no package lists.
set -euo pipefail
packages=(curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]}; install them (sudo apt-get install ${missing[*]}) or run as root" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
