#!/usr/bin/env bash
# Installs the Debian packages the tests, the lab and the demo need, when any is missing.
set -euo pipefail
packages=(pacemaker pacemaker-cli-utils corosync crmsh pcs resource-agents mariadb-server mariadb-client
  prometheus python3-prometheus-client
  percona-toolkit libxml2-utils iproute2 util-linux procps psmisc coreutils strace booth
  booth-pacemaker iputils-ping python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "error: missing Debian packages (${missing[*]}) and not root: run as root or install them" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Nothing may auto-start on a machine without systemd: policy-rc.d refuses service starts.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
fi
apt-get update -qq >&2
apt-get install -y -qq "${missing[@]}" >&2
