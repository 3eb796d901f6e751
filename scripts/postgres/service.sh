# shellcheck shell=bash
# PostgreSQL for the tests: a private cluster of Debian's server package, run as the `postgres`
# OS user with trust auth on 127.0.0.1. Sourced by scripts/services.sh.

POSTGRES_PORT=$((15432 + PORT_OFFSET))
POSTGRES_DATABASE=profefe_test
POSTGRES_USER=postgres

postgres_address() { printf '127.0.0.1:%s\n' "$POSTGRES_PORT"; }

postgres_env() {
    printf 'export PROFEFE_TEST_DATABASE_URL=postgresql+psycopg://%s@%s/%s\n' \
        "$POSTGRES_USER" "$(postgres_address)" "$POSTGRES_DATABASE"
}

# The newest installed server's bin directory, e.g. /usr/lib/postgresql/15/bin.
postgres_bin() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null |
        sort -t/ -k4,4n | tail -n1)
    [[ -n $dir && -x $dir/pg_ctl ]] || return 1
    printf '%s\n' "$dir"
}

# The server refuses to run as root: as root it runs as the `postgres` OS user, otherwise as the
# caller. The cluster lives under the cache when that user can reach it; a cache under a private
# home (/root is 0700) cannot be, and then the cluster goes to /var/tmp, named after the cache.
postgres_home() {
    local home="$SERVICES_HOME/postgres$SET_SUFFIX"
    mkdir -p "$home"
    if ((EUID != 0)) || runuser -u postgres -- test -x "$home" 2>/dev/null; then
        printf '%s\n' "$home"
    else
        printf '/var/tmp/profefe-py-postgres-%s\n' \
            "$(printf '%s' "$SERVICES_HOME$SET_SUFFIX" | md5sum | cut -c1-8)"
    fi
}

# From / : the caller's working directory may be one the postgres user cannot enter. Without fd
# 9: the server pg_ctl starts must not hold services.sh's lock.
as_postgres() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@" 9>&-)
    else
        (cd / && "$@" 9>&-)
    fi
}

# A folder or file owned by the user the server runs as.
owned_by_server() {
    local mode=$1 path=$2
    if ((EUID == 0)); then
        install -o postgres -g postgres -m "$mode" "${@:3}" "$path"
    else
        install -m "$mode" "${@:3}" "$path"
    fi
}

postgres_install() {
    postgres_bin >/dev/null && return 0
    ((EUID == 0)) || fail "no PostgreSQL server under /usr/lib/postgresql; install Debian's postgresql package"
    local log="$SERVICES_HOME/postgres/install.log"
    mkdir -p "$SERVICES_HOME/postgres"
    say "postgres: installing Debian's postgresql package (log: $log)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } \
        >"$log" 2>&1; then
        fail "could not install PostgreSQL from Debian's packages (see $log)"
    fi
    postgres_bin >/dev/null || fail "postgresql installed but no /usr/lib/postgresql/*/bin/pg_ctl"
}

postgres_answers() {
    local bin
    bin=$(postgres_bin) || return 1
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -t 2
}

# A postmaster.pid left by a killed server whose PID now belongs to another process would make
# the next start refuse; a file whose PID is not a live postgres is removed.
postgres_clear_stale_pid() {
    local data=$1
    [[ -f $data/postmaster.pid ]] || return 0
    live_pid "$data/postmaster.pid" "postgres -D $data" >/dev/null && return 0
    rm -f "$data/postmaster.pid"
}

postgres_init() {
    local bin=$1 home=$2 data=$2/data log=$2/initdb.log
    [[ -f $data/PG_VERSION ]] && return 0
    owned_by_server 0700 "$home" -d
    if ! as_postgres "$bin/initdb" -D "$data" -U "$POSTGRES_USER" --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$log" 2>&1; then
        fail "initdb failed for $data (see $log)"
    fi
    cat >>"$data/postgresql.conf" <<EOF

# Set by scripts/services.sh: loopback only, a private port, the socket beside the data.
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = '$data'
# A throwaway test cluster: durability is not worth the fsyncs.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

postgres_create_database() {
    local bin=$1 log=$2 exists
    exists=$(as_postgres "$bin/psql" -X -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d postgres \
        -Atc "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DATABASE'" 2>>"$log") ||
        fail "postgres: could not query the server (see $log)"
    [[ $exists == 1 ]] && return 0
    as_postgres "$bin/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" \
        "$POSTGRES_DATABASE" >>"$log" 2>&1 ||
        fail "postgres: could not create database $POSTGRES_DATABASE (see $log)"
}

postgres_start() {
    local bin home data log
    bin=$(postgres_bin) || fail "no PostgreSQL server under /usr/lib/postgresql"
    home=$(postgres_home)
    data="$home/data"
    log="$home/server.log"
    if live_pid "$data/postmaster.pid" "postgres -D $data" >/dev/null && postgres_answers; then
        postgres_create_database "$bin" "$log"
        say "postgres: already up on $(postgres_address)"
        return 0
    fi
    if postgres_answers; then
        fail "postgres: something else already answers on $(postgres_address); stop it first"
    fi
    postgres_init "$bin" "$home"
    postgres_clear_stale_pid "$data"
    rm -f "$log"
    owned_by_server 0600 "$log" /dev/null
    if ! as_postgres "$bin/pg_ctl" start -D "$data" -l "$log" -w -t "$START_TIMEOUT" \
        >"$home/pg_ctl.log" 2>&1; then
        tail -n 30 "$log" >&2 || true
        fail "postgres did not start (log: $log)"
    fi
    postgres_answers || fail "postgres started but does not answer on $(postgres_address) (log: $log)"
    postgres_create_database "$bin" "$log"
    say "postgres: up on $(postgres_address) (PostgreSQL $(basename "$(dirname "$bin")"), data: $data)"
}

postgres_wipe() {
    rm -rf "$(postgres_home)/data"
    say "postgres: data deleted"
}

postgres_stop() {
    local home data
    home=$(postgres_home)
    data="$home/data"
    # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
    stop_pid postgres "$data/postmaster.pid" "postgres -D $data" INT
}
