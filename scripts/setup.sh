#!/usr/bin/env bash
# Installs what ckpt's sample and tests need on a fresh Debian machine (as
# root): gcc -m32 (gcc-multilib), make, Debian's crit (criu and
# python3-protobuf) to prove that crit can read ckpt's images, and qemu,
# busybox and a Debian kernel that runs ia32 programs, for the test guest
# (test/vm) that runs them when this kernel refuses them; sqlite3, tmux and
# vim, redis-server, redis-cli, nginx, curl and postgresql for the end-to-end tests of real
# programs (the tests start them with their own configuration, ports and
# temporary directories; the packages' services are stopped and disabled). Go modules come
# through `go` itself.
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
[ -e /usr/lib/gcc/x86_64-linux-gnu/*/32/crtbegin.o ] 2>/dev/null || dpkg -s gcc-multilib >/dev/null 2>&1 || need+=(gcc-multilib)
command -v unshare >/dev/null && command -v nsenter >/dev/null || need+=(util-linux)
command -v crit >/dev/null || need+=(criu)
[ -x /usr/bin/python3 ] || need+=(python3) # crit's, and TestPythonMultiprocessing's
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || need+=(python3-protobuf)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v busybox >/dev/null || need+=(busybox-static)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v tmux >/dev/null || need+=(tmux)
command -v vim >/dev/null || need+=(vim)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v nginx >/dev/null || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: need root to install: ${need[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	echo "setup: installing ${need[*]} with apt-get (needs the network; a few minutes on a fresh machine)"
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
	# The distribution's redis, nginx and postgresql services, if the
	# install started them, would hold ports and files the tests do not need.
	for svc in redis-server nginx postgresql; do
		if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
			systemctl disable --now "$svc" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$svc" ]; then
			"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		fi
	done
	echo "setup: installed"
fi
command -v go >/dev/null || { echo "setup: go is not installed (need Go 1.26)" >&2; exit 1; }
echo "setup: Go modules"
go mod download

# The test guest's kernel: Debian's cloud kernel (ia32 emulation on),
# unpacked from its package into /var/cache/ckpt-vm.
vmdir=/var/cache/ckpt-vm
if ! ls "$vmdir"/vmlinuz-* >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || { echo "setup: need root to fetch the test guest's kernel" >&2; exit 1; }
	guestkernel() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1; }
	pkg=$(guestkernel)
	[ -n "$pkg" ] || { apt-get update -qq && pkg=$(guestkernel); }
	[ -n "$pkg" ] || { echo "setup: no linux-image-cloud-amd64 package found (apt-get update?)" >&2; exit 1; }
	echo "setup: fetching the test guest's kernel ($pkg)"
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1 && dpkg-deb -x ./*.deb root)
	mkdir -p "$vmdir"
	cp "$tmp"/root/boot/vmlinuz-* "$vmdir"/
	rm -rf "$tmp"
fi
# Its sock_diag modules (UNIX_DIAG and the others are modules in Debian's
# kernel; the guest has no /lib/modules to load them on demand), and
# nf_tables with what it needs (the network lock of TCP connections),
# kept in modules-RELEASE next to it for the guest to load at boot.
for k in "$vmdir"/vmlinuz-*; do
	rel=${k##*/vmlinuz-}
	[ -e "$vmdir/modules-$rel/unix_diag.ko" ] && [ -e "$vmdir/modules-$rel/nf_tables.ko" ] && continue
	[ "$(id -u)" = 0 ] || { echo "setup: need root to fetch the test guest's kernel modules" >&2; exit 1; }
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -q "linux-image-$rel" >/dev/null 2>&1 && dpkg-deb -x ./*.deb root) ||
		{ echo "setup: cannot fetch linux-image-$rel for its sock_diag modules" >&2; rm -rf "$tmp"; exit 1; }
	mkdir -p "$vmdir/modules-$rel"
	find "$tmp/root/lib/modules" -name '*_diag.ko' \( -path '*/net/unix/*' -o -path '*/net/ipv4/*' -o -path '*/net/netlink/*' -o -path '*/net/packet/*' \) \
		-exec cp {} "$vmdir/modules-$rel/" \;
	find "$tmp/root/lib/modules" \( -name nfnetlink.ko -o -name nf_tables.ko -o -name libcrc32c.ko \) -exec cp {} "$vmdir/modules-$rel/" \;
	rm -rf "$tmp"
done
