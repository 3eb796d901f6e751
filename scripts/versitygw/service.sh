# shellcheck shell=bash
# An S3 API for the tests: Versity's S3 gateway (versitygw, Apache-2.0) on its POSIX backend,
# where a bucket is a folder and an object a file, built with the Go toolchain. One process, no
# volume servers: buckets cost nothing but their files. Sourced by scripts/services.sh.

VERSITYGW_PACKAGE=github.com/versity/versitygw/cmd/versitygw
VERSITYGW_VERSION=v1.8.0
S3_PORT=$((18333 + PORT_OFFSET))
S3_ACCESS_KEY=profefe-test
S3_SECRET_KEY=profefe-test-secret
S3_REGION=us-east-1

VERSITYGW_HOME="$SERVICES_HOME/versitygw"
VERSITYGW_BIN="$VERSITYGW_HOME/$VERSITYGW_VERSION/versitygw"
VERSITYGW_RUN="$VERSITYGW_HOME/run$SET_SUFFIX"
VERSITYGW_DATA="$VERSITYGW_HOME/data$SET_SUFFIX"
VERSITYGW_LOG="$VERSITYGW_RUN/server.log"
VERSITYGW_PID="$VERSITYGW_RUN/server.pid"
VERSITYGW_MARKER="versitygw --port 127.0.0.1:$S3_PORT"

s3_address() { printf '127.0.0.1:%s\n' "$S3_PORT"; }

s3_env() {
    printf 'export PROFEFE_TEST_S3_ENDPOINT=%s\n' "$(s3_address)"
    printf 'export PROFEFE_TEST_S3_ACCESS_KEY=%s\n' "$S3_ACCESS_KEY"
    printf 'export PROFEFE_TEST_S3_SECRET_KEY=%s\n' "$S3_SECRET_KEY"
    printf 'export PROFEFE_TEST_S3_SECURE=0\n'
    printf 'export PROFEFE_TEST_S3_REGION=%s\n' "$S3_REGION"
}

# `go install` of the pinned release into the cache, through the caller's Go module and build
# caches (a second checkout, or a machine that built it once, links in seconds).
s3_install() {
    [[ -x $VERSITYGW_BIN ]] && return 0
    need_tool go "needed to build versitygw"
    local dir="$VERSITYGW_HOME/$VERSITYGW_VERSION" log="$VERSITYGW_HOME/$VERSITYGW_VERSION/install.log"
    mkdir -p "$dir"
    say "s3: building versitygw $VERSITYGW_VERSION with go (first run only, a few minutes; log: $log)"
    if ! GOBIN="$dir/.partial" go install "$VERSITYGW_PACKAGE@$VERSITYGW_VERSION" >>"$log" 2>&1; then
        fail "could not build versitygw $VERSITYGW_VERSION (module download or compile; see $log)"
    fi
    mv "$dir/.partial/versitygw" "$VERSITYGW_BIN"
    rmdir "$dir/.partial"
}

# Answers when a signed ListBuckets succeeds: the gateway, its backend folder and the
# credentials all work. versitygw wants the payload hash header that curl does not send itself.
s3_answers() {
    curl -fsS --max-time 3 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "http://127.0.0.1:$S3_PORT/" | grep -q ListAllMyBucketsResult
}

s3_start() {
    if live_pid "$VERSITYGW_PID" "$VERSITYGW_MARKER" >/dev/null; then
        wait_until_answers s3 "$VERSITYGW_PID" "$VERSITYGW_LOG" s3_answers
        say "s3: already up on $(s3_address)"
        return 0
    fi
    need_tool curl "needed to check that versitygw answers"
    if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$S3_PORT/"; then
        fail "s3: something else already answers on $(s3_address); stop it first"
    fi
    mkdir -p "$VERSITYGW_RUN" "$VERSITYGW_DATA"
    : >"$VERSITYGW_LOG"
    # The root account's keys through its environment rather than its command line; --quiet:
    # no line per request in the log; --keep-alive: connections kept between requests, as MinIO
    # and AWS keep them (without it every request, through Toxiproxy too, opened one). The POSIX
    # backend keeps object metadata in extended attributes, which the cache's filesystem must
    # support (ext4, xfs, btrfs, overlayfs do).
    start_detached "$VERSITYGW_PID" "$VERSITYGW_LOG" \
        env ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
        "$VERSITYGW_BIN" --port "127.0.0.1:$S3_PORT" --region "$S3_REGION" --quiet --keep-alive \
        posix "$VERSITYGW_DATA"
    wait_until_answers s3 "$VERSITYGW_PID" "$VERSITYGW_LOG" s3_answers
    say "s3: up on $(s3_address) (versitygw $VERSITYGW_VERSION, log: $VERSITYGW_LOG)"
}

s3_wipe() {
    rm -rf "$VERSITYGW_DATA"
    say "s3: data deleted"
}

s3_stop() {
    stop_pid s3 "$VERSITYGW_PID" "$VERSITYGW_MARKER"
}
