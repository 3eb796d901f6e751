# shellcheck shell=bash
# Kafka for the tests: one KRaft node that is both broker and controller, run from the broker jars
# on Maven Central (no distribution tarball: only Maven Central is reachable). Sourced by
# scripts/services.sh, which provides say/fail/live_pid/start_detached/wait_until_answers/stop_pid.

KAFKA_VERSION=4.1.1
KAFKA_PORT=$((19092 + PORT_OFFSET))
KAFKA_CONTROLLER_PORT=$((19093 + PORT_OFFSET))
# A second listener for the fault suite, which reaches the broker only through Toxiproxy: it
# advertises the proxy's address (KAFKA_PROXY_PORT, see toxiproxy/service.sh), so a client that
# bootstraps there makes every later connection through the proxy too. The first listener, and
# everything else, stays direct.
KAFKA_PROXY_PORT=$((19094 + PORT_OFFSET))
KAFKA_BEHIND_PROXY_PORT=$((19095 + PORT_OFFSET))
# Tests send profiles of several MiB; the broker accepts record batches up to this size.
KAFKA_MAX_MESSAGE_BYTES=$((32 * 1024 * 1024))
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

KAFKA_HOME="$SERVICES_HOME/kafka/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data$SET_SUFFIX"
KAFKA_CONFIG="$KAFKA_HOME/server$SET_SUFFIX.properties"
KAFKA_LOG="$KAFKA_HOME/broker$SET_SUFFIX.log"
KAFKA_PID="$KAFKA_HOME/broker$SET_SUFFIX.pid"
KAFKA_MARKER="kafka.Kafka $KAFKA_CONFIG"

kafka_address() { printf '127.0.0.1:%s\n' "$KAFKA_PORT"; }

kafka_env() {
    printf 'export PROFEFE_TEST_KAFKA_BOOTSTRAP=%s\n' "$(kafka_address)"
}

kafka_install() {
    if [[ -f $KAFKA_LIBS/.complete ]]; then
        return 0
    fi
    need_tool mvn "needed to fetch the Kafka broker jars"
    need_tool java "needed to run the Kafka broker"
    local log="$KAFKA_HOME/install.log" staging="$KAFKA_HOME/libs.partial"
    mkdir -p "$KAFKA_HOME"
    rm -rf "$staging"
    say "kafka: fetching Kafka $KAFKA_VERSION jars from Maven Central (log: $log)"
    if ! mvn -B -q -f "$SERVICES_DIR/kafka/pom.xml" \
        -Dmaven.repo.local="$SERVICES_HOME/m2" \
        -Dkafka.version="$KAFKA_VERSION" \
        "$DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$staging" >"$log" 2>&1; then
        fail "could not fetch Kafka $KAFKA_VERSION jars from Maven Central (see $log)"
    fi
    touch "$staging/.complete"
    rm -rf "$KAFKA_LIBS"
    mv "$staging" "$KAFKA_LIBS"
}

kafka_write_config() {
    cat >"$KAFKA_CONFIG" <<EOF
# Written by scripts/services.sh on every start; edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,PROXIED://127.0.0.1:$KAFKA_BEHIND_PROXY_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,PROXIED://127.0.0.1:$KAFKA_PROXY_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=1
auto.create.topics.enable=true
message.max.bytes=$KAFKA_MAX_MESSAGE_BYTES
replica.fetch.max.bytes=$KAFKA_MAX_MESSAGE_BYTES
# A single node: every internal topic has one replica, and one in-sync replica is enough.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
# Keeps a long-lived test broker from filling the disk with old test topics.
log.retention.hours=24
log.segment.bytes=$((64 * 1024 * 1024))
# Tests join consumer groups often; the default 3 s wait before the first rebalance is pure delay.
group.initial.rebalance.delay.ms=0
EOF
}

# The client-grade JIT (C1 only) and the serial collector: a test broker lives minutes, and on two
# cores the server compiler's and G1's threads cost more than they win back. Measured on 6,000
# 20 KB records: 2.3-3.3 core-s of broker CPU against 5.0-7.6, and 3.1 core-s to start against 5.1.
KAFKA_JAVA=(java -Xmx512m -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$SERVICES_DIR/kafka/log4j2.properties" -cp "$KAFKA_LIBS/*")

kafka_java() { "${KAFKA_JAVA[@]}" "$@"; }

# Formats the log directory once, with a cluster id kept beside it.
kafka_format() {
    [[ -f $KAFKA_DATA/meta.properties ]] && return 0
    local id_file="$KAFKA_HOME/cluster-id$SET_SUFFIX" log="$KAFKA_HOME/format$SET_SUFFIX.log"
    if [[ ! -s $id_file ]]; then
        kafka_java kafka.tools.StorageTool random-uuid >"$id_file.tmp" 2>"$log" ||
            fail "could not make a Kafka cluster id (see $log)"
        tail -n1 "$id_file.tmp" >"$id_file"
        rm -f "$id_file.tmp"
    fi
    kafka_java kafka.tools.StorageTool format --ignore-formatted \
        --cluster-id "$(<"$id_file")" --config "$KAFKA_CONFIG" >>"$log" 2>&1 ||
        fail "could not format Kafka storage in $KAFKA_DATA (see $log)"
}

# An ApiVersions v0 request over a raw socket: the broker answers only once it serves clients.
# The reply must carry our correlation id (7) and error code 0.
kafka_answers() {
    local reply
    # shellcheck disable=SC2016 # $0 is the port, expanded by the inner shell
    reply=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "\x00\x00\x00\x0d\x00\x12\x00\x00\x00\x00\x00\x07\x00\x03svc" >&3
        head -c 10 <&3 | od -An -tx1' "$KAFKA_PORT" 2>/dev/null) || return 1
    [[ $(tr -d ' \n' <<<"$reply") =~ ^[0-9a-f]{8}000000070000$ ]]
}

kafka_start() {
    if live_pid "$KAFKA_PID" "$KAFKA_MARKER" >/dev/null; then
        wait_until_answers kafka "$KAFKA_PID" "$KAFKA_LOG" kafka_answers
        say "kafka: already up on $(kafka_address)"
        return 0
    fi
    if kafka_answers; then
        fail "kafka: something else already answers on $(kafka_address); stop it first"
    fi
    mkdir -p "$KAFKA_DATA"
    kafka_write_config
    kafka_format
    : >"$KAFKA_LOG"
    start_detached "$KAFKA_PID" "$KAFKA_LOG" "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_CONFIG"
    wait_until_answers kafka "$KAFKA_PID" "$KAFKA_LOG" kafka_answers
    say "kafka: up on $(kafka_address) (Kafka $KAFKA_VERSION, log: $KAFKA_LOG)"
}

kafka_wipe() {
    rm -rf "$KAFKA_DATA" "$KAFKA_HOME/cluster-id$SET_SUFFIX"
    say "kafka: data deleted"
}

kafka_stop() {
    stop_pid kafka "$KAFKA_PID" "$KAFKA_MARKER"
}
