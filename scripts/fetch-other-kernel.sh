#!/usr/bin/env bash
# Fetches a second guest kernel, Debian's newest bookworm-backports cloud
# kernel (6.12 today), into /var/cache/ckpt-vm/other, for
# TestCompatAcrossKernels: a 32-bit program dumped in the guest on the
# stable kernel (6.1) and restored in a guest on this one, whose 32-bit
# vDSO differs. CI does not run it: qemu 7.2's software emulation runs
# this kernel unreliably (its boot oopses now and then). Then:
#
#   CKPT_VM_OTHER_KERNEL=$(ls /var/cache/ckpt-vm/other/vmlinuz-*) \
#     go test ./test/e2e -run TestCompatAcrossKernels -v
set -euo pipefail
other=/var/cache/ckpt-vm/other
mirror=http://deb.debian.org/debian
file=$(curl -fsS "$mirror/dists/bookworm-backports/main/binary-amd64/Packages.xz" | xz -dc |
	awk '/^Package: linux-image-[0-9][^ ]*-cloud-amd64$/ { p = 1 } /^Filename:/ { if (p) print $2; p = 0 }' | sort -V | tail -n1)
[ -n "$file" ] || { echo "fetch-other-kernel: no cloud kernel in bookworm-backports" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsS -o "$tmp/k.deb" "$mirror/$file"
dpkg-deb -x "$tmp/k.deb" "$tmp/root"
mkdir -p "$other"
cp "$tmp"/root/boot/vmlinuz-* "$other"/
ls "$other"/vmlinuz-*
