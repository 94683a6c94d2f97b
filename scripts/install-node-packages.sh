#!/usr/bin/env bash
# Installs the Debian packages the local cluster's node needs (`vcm local up --nodes 1`):
#   containerd, runc                the container runtime the kubelet talks to
#   containernetworking-plugins     the CNI bridge, host-local IPAM and loopback plugins (/usr/lib/cni)
#   iptables, ipset                 what kube-router's NetworkPolicy firewall programs
#   nftables                        kube-proxy's nftables mode (and `nft` to read rules back in tests)
#   busybox-static                  the static busybox the node's pause and probe images are made of
#   iproute2                        `ip` for the node's bridge
# No service is started or enabled: vcm starts containerd itself, with its own config, and stops it on down.
set -euo pipefail
PACKAGES=(containerd runc containernetworking-plugins iptables ipset nftables busybox-static iproute2)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "node packages: all installed (${PACKAGES[*]})"
  exit 0
fi
if ! command -v apt-get >/dev/null || ! [ -r /etc/debian_version ]; then
  echo "node packages: this is not Debian or Ubuntu (no apt-get); install these by hand: ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "node packages: missing ${missing[*]}; installing them needs root: sudo $0" >&2
  exit 1
fi
echo "node packages: installing ${missing[*]} (apt-get update first)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101 keeps the packages' init scripts from starting containerd as a host service
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created_policy=1
fi
trap 'if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "node packages: installed ${missing[*]}"
