#!/usr/bin/env bash
# make test's suites once the linters ran and the services are up: everything but the fault suite
# on TEST_JOBS pytest-xdist workers, and beside it the fault suite, which stops and starts the
# services it runs against, on a set of its own (every port moved up by FAULTS_PORT_OFFSET,
# installs shared; scripts/services.sh). Most of the fault suite's time is waiting for outages,
# restarts and recoveries, so the two together take little longer than the fault suite alone.
# Its output is kept in a file and printed after the rest; the exit status is 1 if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=.venv/bin/python
JOBS=${TEST_JOBS:-2}
FAULTS_OFFSET=${FAULTS_PORT_OFFSET:-1000}
[[ $FAULTS_OFFSET =~ ^[1-9][0-9]*$ ]] || { echo "test.sh: FAULTS_PORT_OFFSET must be a positive number" >&2; exit 2; }

faults_log=$(mktemp -t profefe-faults.XXXXXX)
(
    export PROFEFE_SERVICES_PORT_OFFSET=$FAULTS_OFFSET
    scripts/services.sh up && eval "$(scripts/services.sh env)" && exec "$PYTHON" -m pytest tests/faults
) >"$faults_log" 2>&1 </dev/null &
faults=$!
# A Ctrl-C or a kill of make stops the fault suite too, not only the rest.
trap 'kill "$faults" 2>/dev/null' EXIT
echo "test.sh: the fault suite runs beside the rest on services at ports +$FAULTS_OFFSET; its output follows theirs (log: $faults_log)"

eval "$(scripts/services.sh env)"
"$PYTHON" -m pytest -n "$JOBS" --durations=15 --ignore=tests/faults
rest=$?

wait "$faults"
faulted=$?
trap - EXIT
echo
echo "=============================== the fault suite ================================"
cat "$faults_log"
rm -f "$faults_log"
if ((rest != 0 || faulted != 0)); then
    echo "test.sh: failed: $( ((rest)) && echo "the suites (exit $rest)")$( ((rest && faulted)) && echo ", ")$( ((faulted)) && echo "the fault suite (exit $faulted)")"
    exit 1
fi
