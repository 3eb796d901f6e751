#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The real services the test suite runs against, without Docker: Kafka (KRaft, jars from Maven
# Central), an S3 API (versitygw, built with the Go toolchain), PostgreSQL (Debian's package),
# and the TCP fault proxy the fault suite puts between its daemons and those three (Toxiproxy,
# built with the Go toolchain).
#
#   scripts/services.sh up       install what is missing, start what is down, wait until each answers
#   scripts/services.sh install  only download and build what is missing (to warm a cache)
#   scripts/services.sh reset    stop, then delete the services' data (topics, buckets, databases)
#   scripts/services.sh down     stop them all by PID and wait for them to exit
#   scripts/services.sh status   one line per service: up or down
#   scripts/services.sh env      the PROFEFE_TEST_* exports the tests read (eval "$(... env)")
#
# PROFEFE_SERVICES_PORT_OFFSET=N moves every port up by N: a second set beside the first, sharing
# its installs, with data, logs and PIDs of its own (make test runs the fault suite on one).
#
# `up` and `install` of all services also unpack the nginx tests/deploy runs (scripts/nginx).
#
# Each command takes optional service names (kafka, s3, postgres, toxiproxy) to act on only those.
#
# Downloads, binaries and service data live outside the checkout, in
# ${PROFEFE_SERVICES_HOME:-$HOME/.cache/profefe-py}, so a fresh clone elsewhere reuses them.
# Everything listens on 127.0.0.1 only. Tool output goes to log files under that folder; on
# failure the script prints one line saying what failed and where its log is.
set -euo pipefail

SERVICES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICES_HOME="${PROFEFE_SERVICES_HOME:-$HOME/.cache/profefe-py}"

# Added to every service's port, so a second set of services can run beside the first on one
# machine. The installs are shared; what a running set writes is suffixed with its offset.
PORT_OFFSET="${PROFEFE_SERVICES_PORT_OFFSET:-0}"
[[ $PORT_OFFSET =~ ^[0-9]+$ ]] || { printf 'services.sh: PROFEFE_SERVICES_PORT_OFFSET must be a number, not %s\n' "$PORT_OFFSET" >&2; exit 1; }
SET_SUFFIX=""
((PORT_OFFSET == 0)) || SET_SUFFIX="-$PORT_OFFSET"

# How long a service gets to answer after it was started, in seconds.
START_TIMEOUT="${PROFEFE_SERVICES_START_TIMEOUT:-120}"
# How long a stopping service gets before it is killed, in seconds.
STOP_TIMEOUT=30

say() { printf 'services.sh: %s\n' "$*"; }

fail() {
    printf 'services.sh: %s\n' "$*" >&2
    exit 1
}

need_tool() {
    command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed ($2)"
}

# The number a PID file holds; status 1 for a missing, empty or garbled file.
pid_in() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(head -n1 "$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$pid"
}

# The PID recorded in a PID file when that process is alive and is what we started (its command
# line contains `marker`); nothing, and status 1, for a missing or stale file.
live_pid() {
    local pid_file=$1 marker=$2 pid
    pid=$(pid_in "$pid_file") || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
    printf '%s\n' "$pid"
}

# Starts a command detached from this shell (its own session, no terminal, output to `log`) and
# records its PID: the wrapper writes its own PID and then becomes the service through exec.
start_detached() {
    local pid_file=$1 log=$2
    shift 2
    rm -f "$pid_file"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    # 9>&- : the service must not inherit the lock on fd 9, or the next services.sh waits forever.
    setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "$pid_file" "$@" \
        >>"$log" 2>&1 </dev/null 9>&- &
    local waited=0
    until [[ -s $pid_file ]]; do
        sleep 0.1
        waited=$((waited + 1))
        ((waited < 100)) || fail "could not start $1 (see $log)"
    done
}

# Whether a process exists and has not exited (a zombie has). Not live_pid's command-line check:
# while a process execs, /proc/PID/cmdline is briefly empty, and the wrapper of start_detached
# execs the service right when the first check runs.
process_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

# Waits until `check` succeeds; gives up when the process in `pid_file` (just started, or just
# found by live_pid) dies or after START_TIMEOUT seconds, printing the tail of the service's log.
wait_until_answers() {
    local name=$1 pid_file=$2 log=$3 check=$4 pid
    pid=$(pid_in "$pid_file") || fail "$name: no PID in $pid_file"
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$check" >/dev/null 2>&1; do
        if ! process_running "$pid"; then
            tail -n 30 "$log" >&2 || true
            fail "$name exited while starting (log: $log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$log" >&2 || true
            fail "$name did not answer within ${START_TIMEOUT}s (log: $log)"
        fi
        sleep 0.5
    done
}

# Stops the process in a PID file with `signal` (default TERM), then SIGKILL after STOP_TIMEOUT;
# waits for it to go.
stop_pid() {
    local name=$1 pid_file=$2 marker=$3 signal=${4:-TERM} pid
    if ! pid=$(live_pid "$pid_file" "$marker"); then
        rm -f "$pid_file"
        say "$name: already down"
        return 0
    fi
    kill "-$signal" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            say "$name: did not stop within ${STOP_TIMEOUT}s, killed"
        fi
        sleep 0.2
    done
    rm -f "$pid_file"
    say "$name: stopped"
}

# One `up` or `down` at a time: two test runs starting together must not both install or format.
take_lock() {
    mkdir -p "$SERVICES_HOME"
    exec 9>"$SERVICES_HOME/.lock"
    flock -w 1800 9 || fail "another services.sh is still running (lock: $SERVICES_HOME/.lock)"
}

# shellcheck source=kafka/service.sh
source "$SERVICES_DIR/kafka/service.sh"
# shellcheck source=versitygw/service.sh
source "$SERVICES_DIR/versitygw/service.sh"
# shellcheck source=postgres/service.sh
source "$SERVICES_DIR/postgres/service.sh"
# shellcheck source=toxiproxy/service.sh
source "$SERVICES_DIR/toxiproxy/service.sh"
# shellcheck source=nginx/tool.sh
source "$SERVICES_DIR/nginx/tool.sh"

ALL_SERVICES=(kafka s3 postgres toxiproxy)

# The services named on the command line (all of them when none is), checked against the list.
pick_services() {
    SERVICES=()
    ALL_PICKED=$((${#} == 0))
    local name known
    for name in "$@"; do
        for known in "${ALL_SERVICES[@]}"; do
            [[ $name == "$known" ]] && SERVICES+=("$name") && continue 2
        done
        fail "unknown service '$name' (known: ${ALL_SERVICES[*]})"
    done
    ((${#SERVICES[@]})) || SERVICES=("${ALL_SERVICES[@]}")
}

# The tools the suites use beside the services (nginx) come with a whole `up` or `install`.
install_tools() {
    ((ALL_PICKED)) || return 0
    nginx_install
}

cmd_up() {
    take_lock
    local svc
    for svc in "${SERVICES[@]}"; do
        "${svc}_install"
        "${svc}_start"
    done
    install_tools
}

cmd_install() {
    take_lock
    local svc
    for svc in "${SERVICES[@]}"; do
        "${svc}_install"
    done
    install_tools
    say "installed: ${SERVICES[*]} (cache: $SERVICES_HOME)"
}

cmd_down() {
    take_lock
    local svc
    for svc in "${SERVICES[@]}"; do
        "${svc}_stop"
    done
}

# Data piles up across runs (every test makes its own topics and buckets); installs are kept.
cmd_reset() {
    cmd_down
    local svc
    for svc in "${SERVICES[@]}"; do
        "${svc}_wipe"
    done
}

# Exits 1 when any service is down, so scripts can branch on it.
cmd_status() {
    local svc state all_up=0
    for svc in "${SERVICES[@]}"; do
        if "${svc}_answers" >/dev/null 2>&1; then
            state=up
        else
            state=down
            all_up=1
        fi
        printf '%-10s %-5s %s\n' "$svc" "$state" "$("${svc}_address")"
    done
    return "$all_up"
}

cmd_env() {
    local svc
    for svc in "${SERVICES[@]}"; do
        "${svc}_env"
    done
    ((ALL_PICKED)) && nginx_env
    return 0
}

main() {
    local command=${1:-}
    shift || true
    pick_services "$@"
    case "$command" in
        up) cmd_up ;;
        install) cmd_install ;;
        reset) cmd_reset ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *)
            local IFS='|'
            printf 'usage: %s up|down|status|env|install|reset [%s ...]\n' "$0" "${ALL_SERVICES[*]}" >&2
            exit 2
            ;;
    esac
}

main "$@"
