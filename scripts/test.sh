#!/usr/bin/env bash
# make test's suites, once the linters ran and the services are up: everything but the fault suite
# on TEST_JOBS pytest-xdist workers, and beside it the fault suite on a set of services of its own
# (every port moved up by FAULTS_PORT_OFFSET, installs shared; scripts/services.sh), since it stops
# and starts the services it runs against. Most of the fault suite's time is waiting for outages,
# restarts and recoveries, which leaves the cores to the other suites.
#
# The fault suite's output is kept in a file until the others are done, then followed live to its
# end, so the two never interleave. Exit status 1 if either failed; a Ctrl-C stops both, each
# through its own teardown.
set -uo pipefail
cd "$(dirname "$0")/.."

# The settings are the Makefile's (`make test` sets them).
PYTHON=${VENV_PYTHON:?run it through make test}
JOBS=${TEST_JOBS:?run it through make test}
FAULTS_OFFSET=${FAULTS_PORT_OFFSET:?run it through make test}
[[ $FAULTS_OFFSET =~ ^[1-9][0-9]*$ ]] || { echo "test.sh: FAULTS_PORT_OFFSET must be a positive number, not '$FAULTS_OFFSET'" >&2; exit 2; }
MAIN_OFFSET=${PROFEFE_SERVICES_PORT_OFFSET:-0}
((FAULTS_OFFSET != MAIN_OFFSET)) || { echo "test.sh: FAULTS_PORT_OFFSET must differ from PROFEFE_SERVICES_PORT_OFFSET ($MAIN_OFFSET)" >&2; exit 2; }

faults_log=$(mktemp -t profefe-faults.XXXXXX)
# A process group of its own (job control on for this one job): a background job of a script
# ignores SIGINT, and pytest then could not be interrupted into its teardown.
set -m
(
    export PROFEFE_SERVICES_PORT_OFFSET=$FAULTS_OFFSET
    scripts/services.sh up && eval "$(scripts/services.sh env)" && exec "$PYTHON" -m pytest tests/faults
) >"$faults_log" 2>&1 </dev/null &
faults=$!
set +m

stop_faults() {
    kill -INT -- "-$faults" 2>/dev/null && wait "$faults"
    rm -f "$faults_log"
}
trap 'stop_faults; exit 130' INT
trap 'stop_faults; exit 143' TERM
echo "test.sh: the fault suite runs beside the other suites, on services at ports +$FAULTS_OFFSET; its output follows theirs"

eval "$(scripts/services.sh env)"
# worksteal: xdist's default handed one worker most of the long end-to-end tests (218 s of tests
# against 105 s on the other, alone on the machine); a worker that runs out takes from the other.
"$PYTHON" -m pytest -n "$JOBS" --dist worksteal --durations=15 --ignore=tests/faults
rest=$?

echo
echo "=============================== the fault suite ================================"
# What it wrote so far, then the rest as it comes, until it exits.
tail -n +1 -f --pid="$faults" "$faults_log"
wait "$faults"
faulted=$?
trap - INT TERM
rm -f "$faults_log"
if ((rest != 0 || faulted != 0)); then
    failed=()
    ((rest == 0)) || failed+=("the suites (exit $rest)")
    ((faulted == 0)) || failed+=("the fault suite (exit $faulted)")
    echo "test.sh: failed: ${failed[*]}"
    exit 1
fi
