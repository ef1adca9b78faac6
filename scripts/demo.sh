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
go build -o "$work/ckpt" ./cmd/ckpt
ckpt="$work/ckpt"

run() {
	local bits=$1 bin="$work/counter$1" out="$work/out$1.txt" img="$work/img$1"
	echo "== $bits-bit sample"
	gcc -m"$bits" -O2 -o "$bin" examples/counter.c
	"$bin" </dev/null >"$out" 2>&1 &
	local pid=$!
	sleep 1
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
		echo "the kernel cannot run $bits-bit programs here: $(head -c 200 "$out")"
		echo "(ckpt check says why)"
		return 0
	fi
	tail -n 2 "$out"
	echo "-- ckpt dump -t $pid -D $img"
	"$ckpt" dump -t "$pid" -D "$img"
	wait "$pid" 2>/dev/null || true
	echo "-- dumped; the original is gone: $(kill -0 "$pid" 2>/dev/null && echo still there || echo yes)"
	"$ckpt" show "$img" >"$work/show$bits.txt"
	head -n 8 "$work/show$bits.txt"
	echo "-- ckpt restore -D $img"
	"$ckpt" restore -D "$img" &
	local restorer=$!
	sleep 1
	tail -n 3 "$out"
	echo "-- stopping the restored task $pid"
	kill -TERM "$pid"
	wait "$restorer" && echo "-- restored task exited with status 0"
}

"$ckpt" check || true
run 64
run 32
