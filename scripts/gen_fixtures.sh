#!/usr/bin/env bash
# Regenerates the real Go profiles under tests/testdata and their text goldens, in one command.
#
# The workload program (tests/fixtures/gen) is built with -trimpath so source paths in the
# profiles read "runtime/proc.go" rather than this machine's GOROOT. Each CPU profile covers
# CPU_DURATION of the workload (3 s gives a real ~20 KB CPU profile).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
CPU_DURATION="${CPU_DURATION:-3s}"
OUT=tests/testdata

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd tests/fixtures/gen && go build -trimpath -o "$tmp/profile-workload" .)
mkdir -p "$OUT"
rm -f "$OUT"/*.pb.gz "$OUT"/*.pb.gz.txt
"$tmp/profile-workload" -out "$OUT" -cpu 10 -cpu-duration "$CPU_DURATION" \
    -heap 3 -goroutine 2 -block 2 -mutex 2 -threadcreate 1
"$PYTHON" -m tests.unit.pprof.goldens --update
du -ch "$OUT"/* | tail -1
