#!/bin/bash
# Run every built test program standalone (no checkpoint) following the
# harness protocol and print one result line per binary.
#
#   usage: run-standalone.sh [-v] [BINARY-OR-NAME-FILTER...]
#
# For each binary: fresh temporary test dir (cwd and $CKPT_TEST_DIR), stdin
# /dev/null (or a pipe for stdin=pipe programs), stdout+stderr appended to a
# log file; wait for READY, for stdin=pipe write "ckpt-input\n", send SIGTERM,
# then require exit status 0 and a final PASS line.
# daemon=yes programs: the started process must exit 0 after the daemon's
# "READY <pid>"; SIGTERM goes to the daemon, whose PASS line counts (the
# script runs as a child subreaper, through perl, so that the daemon comes
# back to it and is reaped instead of staying a zombie under PID 1).
# Exit status: 0 if everything passed, 1 otherwise.

set -u

if [ -z "${CKPT_STANDALONE_SUBREAPER:-}" ] && command -v perl >/dev/null; then
	# prctl(PR_SET_CHILD_SUBREAPER = 36, 1): syscall 157 on x86_64.
	CKPT_STANDALONE_SUBREAPER=1 exec perl -e 'syscall(157, 36, 1, 0, 0, 0) == 0 or die "prctl: $!\n"; exec @ARGV or die "exec: $!\n"' bash "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
verbose=0
if [ "${1:-}" = "-v" ]; then verbose=1; shift; fi

READY_TIMEOUT=${READY_TIMEOUT:-20}   # seconds until READY
EXIT_TIMEOUT=${EXIT_TIMEOUT:-30}     # seconds from SIGTERM until exit

cur_pid=""
cur_tmp=""
cleanup() {
	if [ -n "$cur_pid" ]; then
		kill -KILL "$cur_pid" 2>/dev/null
		wait "$cur_pid" 2>/dev/null
	fi
	exec 3>&- 2>/dev/null
	[ -n "$cur_tmp" ] && rm -rf "$cur_tmp"
	cur_pid=""
	cur_tmp=""
}
trap 'cleanup; exit 130' INT TERM
trap 'cleanup' EXIT

# first line of NAME.c (the manifest)
manifest_line() {
	head -n 1 "$here/$1.c" 2>/dev/null
}
manifest_has() { # name key[=value]
	manifest_line "$1" | tr ' ' '\n' | grep -qx -- "$2"
}

bins=()
for b in "$build"/*; do
	[ -x "$b" ] || continue
	if [ $# -gt 0 ]; then
		m=0
		for f in "$@"; do
			case "$(basename "$b")" in *"$f"*) m=1 ;; esac
		done
		[ $m = 1 ] || continue
	fi
	bins+=("$b")
done
if [ ${#bins[@]} -eq 0 ]; then
	echo "no binaries in $build (run make first)" >&2
	exit 1
fi

npass=0
nfail=0
nskip=0
for bin in "${bins[@]}"; do
	base=$(basename "$bin")
	name=${base%.*}
	cur_tmp=$(mktemp -d /tmp/ckpt-standalone.XXXXXX)
	tdir="$cur_tmp/dir"
	log="$cur_tmp/log"
	mkdir "$tdir"
	: >"$log"
	stdin_pipe=0
	manifest_has "$name" "stdin=pipe" && stdin_pipe=1
	daemon=0
	manifest_has "$name" "daemon=yes" && daemon=1

	if [ $stdin_pipe = 1 ]; then
		mkfifo "$cur_tmp/fifo"
		exec 3<>"$cur_tmp/fifo"     # keeps the FIFO open for writing
		(cd "$tdir" && CKPT_TEST_DIR="$tdir" exec "$bin" <"$cur_tmp/fifo" >>"$log" 2>&1) &
	else
		(cd "$tdir" && CKPT_TEST_DIR="$tdir" exec "$bin" </dev/null >>"$log" 2>&1) &
	fi
	cur_pid=$!

	reason=""
	start=$SECONDS
	while ! grep -qE '^READY( [0-9]+)?$' "$log"; do
		if ! kill -0 "$cur_pid" 2>/dev/null; then
			reason="exited before READY"
			break
		fi
		if [ $((SECONDS - start)) -ge "$READY_TIMEOUT" ]; then
			reason="no READY after ${READY_TIMEOUT}s"
			break
		fi
		sleep 0.05
	done

	if [ -z "$reason" ] && [ $daemon = 1 ]; then
		# The started process exits; the daemon gets SIGTERM.
		wait "$cur_pid"
		rc=$?
		[ $rc = 0 ] || reason="the started process exited $rc"
		cur_pid=$(sed -n 's/^READY \([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
		[ -n "$cur_pid" ] || reason="no READY <pid> line"
	fi
	if [ -z "$reason" ]; then
		if [ $stdin_pipe = 1 ]; then
			printf 'ckpt-input\n' >&3
		fi
		kill -TERM "$cur_pid" 2>/dev/null
		start=$SECONDS
		while kill -0 "$cur_pid" 2>/dev/null; do
			# a zombie still answers kill -0; check /proc state
			st=$(awk '{print $3}' "/proc/$cur_pid/stat" 2>/dev/null)
			[ "$st" = "Z" ] && break
			if [ $((SECONDS - start)) -ge "$EXIT_TIMEOUT" ]; then
				reason="no exit ${EXIT_TIMEOUT}s after SIGTERM"
				kill -KILL "$cur_pid" 2>/dev/null
				break
			fi
			sleep 0.05
		done
	fi
	wait "$cur_pid" 2>/dev/null
	rc=$?
	if [ $daemon = 1 ]; then
		rc=0 # not this shell's child: its PASS line tells
	fi
	cur_pid=""
	[ $stdin_pipe = 1 ] && exec 3>&-

	if [ -z "$reason" ]; then
		nready=$(grep -cE '^READY( [0-9]+)?$' "$log")
		last=$(grep -v '^# ' "$log" | tail -n 1)
		if [ "$nready" != 1 ]; then
			reason="READY printed $nready times"
		elif [ "$last" != "PASS" ]; then
			reason="last line: ${last:-<none>} (exit $rc)"
		elif [ $rc != 0 ]; then
			reason="PASS but exit status $rc"
		elif [ "$(grep -v '^# ' "$log" | grep -cvE -e '^READY( [0-9]+)?$' -e '^PASS$')" != 0 ]; then
			reason="unexpected output lines"
		fi
	fi

	if [ "$reason" = "exited before READY" ] && grep -q 'Exec format error' "$log"; then
		printf 'SKIP %s: the kernel cannot execute this binary (no ia32 emulation?)\n' "$base"
		nskip=$((nskip + 1))
	elif [ -z "$reason" ]; then
		printf 'PASS %s\n' "$base"
		npass=$((npass + 1))
		[ $verbose = 1 ] && sed 's/^/    | /' "$log"
	else
		printf 'FAIL %s: %s\n' "$base" "$reason"
		sed 's/^/    | /' "$log" | tail -n 20
		nfail=$((nfail + 1))
	fi
	rm -rf "$cur_tmp"
	cur_tmp=""
done

echo "standalone: $npass passed, $nfail failed, $nskip skipped"
[ $nfail = 0 ]
