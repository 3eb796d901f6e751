# shellcheck shell=bash
# A TCP fault proxy for the fault suite: Shopify's Toxiproxy (MIT), its server built with the Go
# toolchain. Proxies and their faults ("toxics": latency, bandwidth, resets, a blackhole) are made
# through its HTTP API. The proxy in front of Kafka's second listener is made here, at start,
# because the broker advertises its address (see kafka/service.sh); the suite makes the others.
# Sourced by scripts/services.sh.

TOXIPROXY_PACKAGE=github.com/Shopify/toxiproxy/v2/cmd/server
TOXIPROXY_VERSION=v2.12.0
TOXIPROXY_PORT=$((18474 + PORT_OFFSET))

TOXIPROXY_HOME="$SERVICES_HOME/toxiproxy"
TOXIPROXY_BIN="$TOXIPROXY_HOME/$TOXIPROXY_VERSION/toxiproxy-server"
TOXIPROXY_RUN="$TOXIPROXY_HOME/run$SET_SUFFIX"
TOXIPROXY_CONFIG="$TOXIPROXY_RUN/proxies.json"
TOXIPROXY_LOG="$TOXIPROXY_RUN/server.log"
TOXIPROXY_PID="$TOXIPROXY_RUN/server.pid"
TOXIPROXY_MARKER="toxiproxy-server -host 127.0.0.1 -port $TOXIPROXY_PORT"

toxiproxy_address() { printf '127.0.0.1:%s\n' "$TOXIPROXY_PORT"; }

toxiproxy_env() {
    printf 'export PROFEFE_TEST_TOXIPROXY=%s\n' "$(toxiproxy_address)"
}

# `go install` of the pinned release, like versitygw; its binary is called `server`, renamed here.
toxiproxy_install() {
    [[ -x $TOXIPROXY_BIN ]] && return 0
    need_tool go "needed to build Toxiproxy"
    local dir="$TOXIPROXY_HOME/$TOXIPROXY_VERSION" log="$TOXIPROXY_HOME/$TOXIPROXY_VERSION/install.log"
    mkdir -p "$dir"
    say "toxiproxy: building Toxiproxy $TOXIPROXY_VERSION with go (first run only; log: $log)"
    if ! GOBIN="$dir/.partial" go install -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
        "$TOXIPROXY_PACKAGE@$TOXIPROXY_VERSION" >>"$log" 2>&1; then
        fail "could not build Toxiproxy $TOXIPROXY_VERSION (module download or compile; see $log)"
    fi
    mv "$dir/.partial/server" "$TOXIPROXY_BIN"
    rmdir "$dir/.partial"
}

# Answers when the API lists the proxies and the Kafka one is among them.
toxiproxy_answers() {
    curl -fsS --max-time 3 "http://127.0.0.1:$TOXIPROXY_PORT/proxies" | grep -q '"kafka"'
}

toxiproxy_start() {
    if live_pid "$TOXIPROXY_PID" "$TOXIPROXY_MARKER" >/dev/null; then
        wait_until_answers toxiproxy "$TOXIPROXY_PID" "$TOXIPROXY_LOG" toxiproxy_answers
        say "toxiproxy: already up on $(toxiproxy_address)"
        return 0
    fi
    need_tool curl "needed to check that Toxiproxy answers"
    if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$TOXIPROXY_PORT/"; then
        fail "toxiproxy: something else already answers on $(toxiproxy_address); stop it first"
    fi
    mkdir -p "$TOXIPROXY_RUN"
    cat >"$TOXIPROXY_CONFIG" <<EOF
[{"name": "kafka", "listen": "127.0.0.1:$KAFKA_PROXY_PORT", "upstream": "127.0.0.1:$KAFKA_BEHIND_PROXY_PORT", "enabled": true}]
EOF
    : >"$TOXIPROXY_LOG"
    # LOG_LEVEL=error: no line per connection, per API call or per connection closed (a warning,
    # 17 MB of them per fault suite run), only what went wrong.
    start_detached "$TOXIPROXY_PID" "$TOXIPROXY_LOG" env LOG_LEVEL=error \
        "$TOXIPROXY_BIN" -host 127.0.0.1 -port "$TOXIPROXY_PORT" -config "$TOXIPROXY_CONFIG"
    wait_until_answers toxiproxy "$TOXIPROXY_PID" "$TOXIPROXY_LOG" toxiproxy_answers
    say "toxiproxy: up on $(toxiproxy_address), kafka proxy on 127.0.0.1:$KAFKA_PROXY_PORT (Toxiproxy $TOXIPROXY_VERSION, log: $TOXIPROXY_LOG)"
}

# Proxies live in memory only: a restart starts from the config file.
toxiproxy_wipe() {
    say "toxiproxy: no data to delete"
}

toxiproxy_stop() {
    stop_pid toxiproxy "$TOXIPROXY_PID" "$TOXIPROXY_MARKER"
}
