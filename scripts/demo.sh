#!/usr/bin/env bash
# The main job on a built-in sample (as root): start a counting program,
# dump it (the original is killed), restore it with the same PID and show
# it counting on from where it was. Once as a 64-bit and once as a 32-bit
# program.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/ckpt" ./cmd/ckpt
ckpt="$work/ckpt"

run() {
	local bits=$1 dir="$work/$1"
	mkdir -p "$dir"
	echo "== $bits-bit sample"
	gcc -m"$bits" -O2 -o "$dir/counter" examples/counter.c
	local rc=0
	sh scripts/demo-run.sh "$ckpt" "$dir/counter" "$dir" || rc=$?
	[ "$rc" = 3 ] || return "$rc"
	# This kernel refuses ia32 programs (ckpt check says why): run the
	# same round in the test guest, whose Debian kernel runs them.
	echo "-- so this round runs in a qemu guest with Debian's kernel (test/vm), with the same ckpt binary:"
	go run ./test/vm/vmrun -timeout 5m -f /bin/ckpt="$ckpt" -f /demo/counter="$dir/counter" \
		-f /demo/demo-run.sh=scripts/demo-run.sh -- sh /demo/demo-run.sh /bin/ckpt /demo/counter /tmp |
		grep -v -e '^\[ *[0-9.]*\] ' -e '^ckpt-vm: exit code'
}

echo "== ckpt check: what this kernel supports"
"$ckpt" check || true
run 64
run 32
