#!/usr/bin/env bash
# Runs every test of ckpt (as root): unit tests, fuzz corpora, and the
# end-to-end suite that dumps and restores each test program -m64 and
# -m32 and checks the results against docs/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go vet ./...
go test -count=1 -timeout 40m ./...
echo "results matrix (docs/RESULTS.md): $(grep -E '^[0-9]+ passed, [0-9]+ failed' docs/RESULTS.md) cells; the failing ones are listed there with their reasons"
