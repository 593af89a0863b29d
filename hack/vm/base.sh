#!/usr/bin/env bash
# base.sh OUT: the real node's Debian 12 root filesystem (make test-node),
# built by mmdebstrap from this machine's own apt sources, given on standard
# input so that no mirror's address is written here. Cached: OUT is
# _output/vm/base-<hash of this file>; nothing is done when it exists.
# One to seven minutes (machine's load) and about 630 MB; the kernel and
# initrd are in OUT/boot.
set -euo pipefail
out=$1
[ -e "$out/.done" ] && exit 0
command -v mmdebstrap >/dev/null || { echo "base.sh: mmdebstrap missing (apt-get install mmdebstrap)" >&2; exit 1; }
src=/etc/apt/sources.list.d/debian.sources
[ -r "$src" ] || src=/etc/apt/sources.list
rm -rf "$out" "$out.tmp"
mkdir -p "$(dirname "$out")"
# systemd, logind and D-Bus (all three reboot methods), the kernel, what
# containerd, runc and the CNI bridge need (iptables, kmod, iproute2,
# conntrack, libseccomp2), nothing else.
nice -n 10 mmdebstrap --variant=minbase --quiet \
  --include=systemd-sysv,udev,dbus,iproute2,kmod,linux-image-amd64,util-linux,procps,iptables,conntrack,libseccomp2,e2fsprogs,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --format=directory bookworm "$out.tmp" - < "$src"
touch "$out.tmp/.done"
mv "$out.tmp" "$out"
