#!/usr/bin/env bash
# Installs what ckpt's sample and tests need on a fresh Debian machine (as
# root): gcc -m32 (gcc-multilib), make, and Debian's crit (criu and
# python3-protobuf) to prove that crit can read ckpt's images. Go modules
# come through `go` itself.
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
[ -e /usr/lib/gcc/x86_64-linux-gnu/*/32/crtbegin.o ] 2>/dev/null || dpkg -s gcc-multilib >/dev/null 2>&1 || need+=(gcc-multilib)
command -v crit >/dev/null || need+=(criu)
python3 -c 'import google.protobuf' 2>/dev/null || need+=(python3-protobuf)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: need root to install: ${need[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: go is not installed (need Go 1.26)" >&2; exit 1; }
go mod download
