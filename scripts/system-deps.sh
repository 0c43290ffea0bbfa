#!/usr/bin/env bash
# Installs Debian packages that are missing: the ones named as arguments, or by default the ones the
# test suite talks to (real peers, no fakes). Only as root; `apt-get update` first, because a fresh
# machine has no package lists. As another user it names what is missing and how to install it.
set -euo pipefail
if [ $# -gt 0 ]; then
  packages=("$@")
else
  packages=(curl mosquitto influxdb iproute2 chromium faketime)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]}; install them (sudo apt-get install ${missing[*]}) or run as root" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
