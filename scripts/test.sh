#!/usr/bin/env bash
# Runs every test of ckpt (as root): unit tests, fuzz corpora, and the
# end-to-end suite that dumps and restores each test program -m64 and
# -m32 and checks the results against docs/RESULTS.md. The results
# matrix's count is printed at the end whether the suite passed or not;
# the exit status is the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go vet ./...
status=0
# Every package but the end-to-end suite, then the suite with -v so that
# its progress shows as it runs (a line when each test starts, and every
# 20 cells); its whole output is printed only if it fails.
go test -count=1 -timeout 20m $(go list ./... | grep -v '/test/e2e$') || status=$?
log=$(mktemp)
set +e
go test -count=1 -timeout 40m -v ./test/e2e 2>&1 | tee "$log" | awk '
	/^=== RUN   [A-Za-z0-9_]+$/ { print "e2e: " $3; fflush(); next }
	/^=== RUN   / && split($3, a, "/") == 3 { n++; if (n % 20 == 0) { printf "e2e: %d cells started (%s)\n", n, $3; fflush() } }'
e2e=${PIPESTATUS[0]}
set -e
if [ "$e2e" -ne 0 ]; then
	grep -vE '^ *(=== (RUN|PAUSE|CONT|NAME)|--- (PASS|SKIP))' "$log" || true
	status=$e2e
else
	tail -n 1 "$log"
fi
rm -f "$log"
# Said in words other than "N passed, N failed", which CI would read as
# the test run's own count.
grep -E '^[0-9]+ passed, [0-9]+ failed' docs/RESULTS.md |
	sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/results matrix: \1 cells pass; \2 are listed as failing in docs\/RESULTS.md, each with its reason/' || true
if [ "$status" -ne 0 ]; then
	echo "test.sh: the suite FAILED (go test exit status $status); see the FAIL lines above" >&2
fi
exit "$status"
