# shellcheck shell=bash
# An S3 API for the tests: SeaweedFS (Apache-2.0) in one process (master, volume server, filer
# and S3 gateway), built from source with the Go toolchain. Sourced by scripts/services.sh.

SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
# SeaweedFS tags are not semver, so the module proxy knows releases only by commit; this one
# reports itself as `weed version 4.53`.
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
S3_PORT=18333
S3_ACCESS_KEY=profefe-test
S3_SECRET_KEY=profefe-test-secret
S3_REGION=us-east-1
# The other parts listen on ports of their own; gRPC ports are the HTTP ones + 10000.
SEAWEEDFS_MASTER_PORT=19333
SEAWEEDFS_VOLUME_PORT=18080
SEAWEEDFS_FILER_PORT=18888

SEAWEEDFS_HOME="$SERVICES_HOME/seaweedfs"
SEAWEEDFS_BIN="$SEAWEEDFS_HOME/$SEAWEEDFS_VERSION/weed"
SEAWEEDFS_RUN="$SEAWEEDFS_HOME/run"
SEAWEEDFS_DATA="$SEAWEEDFS_HOME/data"
SEAWEEDFS_LOG="$SEAWEEDFS_RUN/server.log"
SEAWEEDFS_PID="$SEAWEEDFS_RUN/server.pid"
SEAWEEDFS_MARKER="weed server -ip=127.0.0.1"

seaweedfs_address() { printf '127.0.0.1:%s\n' "$S3_PORT"; }

seaweedfs_env() {
    printf 'export PROFEFE_TEST_S3_ENDPOINT=%s\n' "$(seaweedfs_address)"
    printf 'export PROFEFE_TEST_S3_ACCESS_KEY=%s\n' "$S3_ACCESS_KEY"
    printf 'export PROFEFE_TEST_S3_SECRET_KEY=%s\n' "$S3_SECRET_KEY"
    printf 'export PROFEFE_TEST_S3_SECURE=0\n'
    printf 'export PROFEFE_TEST_S3_REGION=%s\n' "$S3_REGION"
}

# `go install module/weed@version` refuses SeaweedFS because its go.mod has replace directives,
# so the module source is downloaded and built in place. Module and build caches are private to
# this folder and removed after a successful build: only the binary is worth keeping.
seaweedfs_install() {
    [[ -x $SEAWEEDFS_BIN ]] && return 0
    need_tool go "needed to build SeaweedFS"
    local home="$SEAWEEDFS_HOME/$SEAWEEDFS_VERSION" log="$SEAWEEDFS_HOME/$SEAWEEDFS_VERSION/install.log"
    local gocache="$SEAWEEDFS_HOME/go" src
    mkdir -p "$home"
    say "seaweedfs: building SeaweedFS $SEAWEEDFS_VERSION with go (first run only, several minutes; log: $log)"
    export GOMODCACHE="$gocache/mod" GOCACHE="$gocache/build"
    export GOFLAGS="${GOFLAGS:-} -modcacherw"
    src=$(go mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" 2>>"$log" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
    [[ -n $src && -d $src ]] ||
        fail "could not fetch SeaweedFS $SEAWEEDFS_VERSION from the Go module proxy (see $log)"
    if ! (cd "$src" && go build -trimpath -ldflags="-s -w" -o "$SEAWEEDFS_BIN.partial" ./weed) \
        >>"$log" 2>&1; then
        fail "could not build SeaweedFS $SEAWEEDFS_VERSION (module download or compile; see $log)"
    fi
    mv "$SEAWEEDFS_BIN.partial" "$SEAWEEDFS_BIN"
    rm -rf "$gocache"
    unset GOMODCACHE GOCACHE
}

seaweedfs_write_config() {
    cat >"$SEAWEEDFS_RUN/s3.json" <<EOF
{
  "identities": [
    {
      "name": "profefe-test",
      "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
    chmod 600 "$SEAWEEDFS_RUN/s3.json"
}

# Answers when a signed ListBuckets succeeds (gateway, filer and credentials all work) and the
# master knows a volume server (so the first upload has somewhere to go).
seaweedfs_answers() {
    curl -fsS --max-time 3 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "http://127.0.0.1:$S3_PORT/" |
        grep -q ListAllMyBucketsResult || return 1
    curl -fsS --max-time 3 "http://127.0.0.1:$SEAWEEDFS_MASTER_PORT/dir/status" |
        grep -qF "127.0.0.1:$SEAWEEDFS_VOLUME_PORT"
}

seaweedfs_start() {
    if live_pid "$SEAWEEDFS_PID" "$SEAWEEDFS_MARKER" >/dev/null; then
        wait_until_answers seaweedfs "$SEAWEEDFS_PID" "$SEAWEEDFS_MARKER" "$SEAWEEDFS_LOG" \
            seaweedfs_answers
        say "seaweedfs: already up on $(seaweedfs_address)"
        return 0
    fi
    if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$S3_PORT/"; then
        fail "seaweedfs: something else already answers on $(seaweedfs_address); stop it first"
    fi
    need_tool curl "needed to check that SeaweedFS answers"
    mkdir -p "$SEAWEEDFS_RUN" "$SEAWEEDFS_DATA"
    seaweedfs_write_config
    : >"$SEAWEEDFS_LOG"
    # Small volumes and an automatic volume count: every bucket is a collection with volumes of
    # its own, and the default 8 volumes of 30 GiB run out after a couple of test buckets.
    start_detached "$SEAWEEDFS_PID" "$SEAWEEDFS_LOG" \
        "$SEAWEEDFS_BIN" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$SEAWEEDFS_DATA" \
        -master.port="$SEAWEEDFS_MASTER_PORT" -master.port.grpc=$((SEAWEEDFS_MASTER_PORT + 10000)) \
        -master.telemetry=false -master.volumeSizeLimitMB=64 \
        -volume.port="$SEAWEEDFS_VOLUME_PORT" -volume.port.grpc=$((SEAWEEDFS_VOLUME_PORT + 10000)) \
        -volume.max=0 -volume.preStopSeconds=0 \
        -filer -filer.port="$SEAWEEDFS_FILER_PORT" -filer.port.grpc=$((SEAWEEDFS_FILER_PORT + 10000)) \
        -filer.localSocket="$SEAWEEDFS_RUN/filer.sock" \
        -s3 -s3.port="$S3_PORT" -s3.port.grpc=$((S3_PORT + 10000)) -s3.config="$SEAWEEDFS_RUN/s3.json" \
        -s3.port.iceberg=0 -s3.port.lance=0 -s3.localSocket="$SEAWEEDFS_RUN/s3.sock"
    wait_until_answers seaweedfs "$SEAWEEDFS_PID" "$SEAWEEDFS_MARKER" "$SEAWEEDFS_LOG" \
        seaweedfs_answers
    say "seaweedfs: S3 up on $(seaweedfs_address) (SeaweedFS $SEAWEEDFS_VERSION, log: $SEAWEEDFS_LOG)"
}

seaweedfs_wipe() {
    rm -rf "$SEAWEEDFS_DATA"
    say "seaweedfs: data deleted"
}

seaweedfs_stop() {
    stop_pid seaweedfs "$SEAWEEDFS_PID" "$SEAWEEDFS_MARKER"
}
