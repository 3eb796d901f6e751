# shellcheck shell=bash
# nginx for tests/deploy, which runs the gateway's routing (deploy/k8s/gateway/gateway.conf)
# through a real `nginx -t` and a real nginx. Not a service: nothing keeps running. Debian's
# package is unpacked into the cache rather than installed, so no nginx daemon is started on :80
# and no root is needed. A system nginx on the PATH is used as it is. Sourced by services.sh.

NGINX_HOME="$SERVICES_HOME/nginx"
NGINX_BIN="$NGINX_HOME/root/usr/sbin/nginx"

nginx_path() {
    if [[ -x $NGINX_BIN ]]; then
        printf '%s\n' "$NGINX_BIN"
    else
        command -v nginx
    fi
}

nginx_install() {
    nginx_path >/dev/null && return 0
    need_tool apt-get "needed to fetch Debian's nginx package"
    local log="$NGINX_HOME/install.log" deb
    mkdir -p "$NGINX_HOME/download"
    say "nginx: unpacking Debian's nginx package into the cache (log: $log)"
    # Package lists may be missing on a fresh machine; refreshing them needs root.
    if ! (cd "$NGINX_HOME/download" && apt-get download nginx) >>"$log" 2>&1; then
        { ((EUID == 0)) && apt-get update -qq && (cd "$NGINX_HOME/download" && apt-get download nginx); } \
            >>"$log" 2>&1 || fail "could not download Debian's nginx package (see $log)"
    fi
    deb=$(find "$NGINX_HOME/download" -name 'nginx_*.deb' | head -n1)
    dpkg-deb -x "$deb" "$NGINX_HOME/root" >>"$log" 2>&1 || fail "could not unpack $deb (see $log)"
    rm -rf "$NGINX_HOME/download"
    "$NGINX_BIN" -v >>"$log" 2>&1 || fail "the unpacked nginx does not run (missing libraries? see $log)"
}

nginx_env() {
    local bin
    bin=$(nginx_path) || return 0
    printf 'export PROFEFE_TEST_NGINX=%s\n' "$bin"
}
