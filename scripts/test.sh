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
go test -count=1 -timeout 40m ./... || status=$?
# Said in words other than "N passed, N failed", which CI would read as
# the test run's own count.
grep -E '^[0-9]+ passed, [0-9]+ failed' docs/RESULTS.md |
	sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/results matrix: \1 cells pass; \2 are listed as failing in docs\/RESULTS.md, each with its reason/' || true
if [ "$status" -ne 0 ]; then
	echo "test.sh: the suite FAILED (go test exit status $status); see the FAIL lines above" >&2
fi
exit "$status"
