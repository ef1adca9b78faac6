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
	echo "-- ckpt dump -t $pid -D $img"
	"$ckpt" dump -t "$pid" -D "$img"
	wait "$pid" 2>/dev/null || true
	echo "-- dumped (bash reports the original as Killed: the dump ends it); last line it printed:"
	local lines
	lines=$(wc -l <"$out")
	tail -n 1 "$out"
	"$ckpt" show "$img" >"$work/show$bits.txt"
	head -n 8 "$work/show$bits.txt"
	echo "-- ckpt restore -D $img; what the restored task printed next:"
	"$ckpt" restore -D "$img" &
	local restorer=$!
	sleep 1
	tail -n +"$((lines + 1))" "$out" | head -n 4
	echo "-- stopping the restored task $pid"
	kill -TERM "$pid"
	wait "$restorer" && echo "-- restored task exited with status 0"
}

echo "== ckpt check: what this kernel supports"
"$ckpt" check || true
run 64
run 32
