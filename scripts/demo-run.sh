#!/bin/sh
# One round of the demo (POSIX sh, so that it also runs in the test guest,
# which has dash and busybox): start the counter, dump it (the original is
# killed), restore it with the same PID and show it counting on.
#
#   demo-run.sh CKPT COUNTER WORKDIR
#
# Exits 3 without doing anything when this kernel cannot run COUNTER.
set -eu
ckpt=$1 bin=$2 work=$3
out=$work/out.txt img=$work/img
"$bin" </dev/null >"$out" 2>&1 &
pid=$!
sleep 1
if ! kill -0 "$pid" 2>/dev/null; then
	wait "$pid" 2>/dev/null || true
	echo "this kernel cannot run it: $(head -c 200 "$out")"
	exit 3
fi
echo "-- ckpt dump -t $pid -D $img"
"$ckpt" dump -t "$pid" -D "$img"
wait "$pid" 2>/dev/null || true
echo "-- dumped (the dump ends the original); last line it printed:"
lines=$(wc -l <"$out")
tail -n 1 "$out"
"$ckpt" show "$img" >"$work/show.txt"
head -n 8 "$work/show.txt"
echo "-- ckpt restore -D $img; what the restored task printed next:"
"$ckpt" restore -D "$img" &
restorer=$!
sleep 1
tail -n +"$((lines + 1))" "$out" | head -n 4
echo "-- stopping the restored task $pid"
kill -TERM "$pid"
wait "$restorer" && echo "-- restored task exited with status 0"
