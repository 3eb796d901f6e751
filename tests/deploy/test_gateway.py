"""The gateway's routing (deploy/k8s/gateway/gateway.conf, used by docker-compose and kustomize)
against the routes the two apps answer: every ingest route goes to ingest-api, every query route to
query-api. An ingest route added to the code fails here until the gateway sends it to ingest-api.

The table is read from the config and checked in Python; with nginx at hand (scripts/services.sh
unpacks Debian's, PROFEFE_TEST_NGINX) the same file also passes `nginx -t` and routes real requests
from a real nginx to two recording backends.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.deploy import facts
from tests.e2e.embedded import free_port
from tests.support import unavailable

CONF = facts.DEPLOY / "k8s" / "gateway" / "gateway.conf"
UPSTREAMS = {"ingest": "ingest-api", "query": "query-api"}
NGINX_VAR = "PROFEFE_TEST_NGINX"

_MAP = re.compile(r'map\s+"\$request_method \$uri"\s+\$profefe_api\s*\{(?P<body>[^}]*)\}')
_ENTRY = re.compile(r'^\s*(?P<key>"[^"]*"|\S+)\s+(?P<value>\S+);\s*$')


def routing_table(conf: str) -> tuple[str, dict[str, str], list[tuple[re.Pattern, str]]]:
    """The map that picks the upstream: its default, its exact keys and its regexes, in order."""
    m = _MAP.search(conf)
    assert m, f"{CONF.name} has no map of \"$request_method $uri\" to $profefe_api"
    default, exact, regexes = None, {}, []
    for line in m["body"].splitlines():
        line = line.split("#", 1)[0]
        if not line.strip():
            continue
        entry = _ENTRY.match(line)
        assert entry, f"cannot read map line {line!r}"
        key, value = entry["key"].strip('"'), entry["value"]
        if key == "default":
            default = value
        elif key.startswith("~*"):
            regexes.append((re.compile(key[2:], re.IGNORECASE), value))
        elif key.startswith("~"):
            regexes.append((re.compile(key[1:]), value))
        else:
            exact[key] = value
    assert default is not None, "the map has no default"
    return default, exact, regexes


def route(conf: str, method: str, path: str) -> str:
    """The upstream nginx picks: an exact key first, then the first regex that matches."""
    default, exact, regexes = routing_table(conf)
    key = f"{method} {path}"
    if key in exact:
        return exact[key]
    for pattern, value in regexes:
        if pattern.search(key):
            return value
    return default


def sample_path(rule: str) -> str:
    """A path the URL rule matches: each <converter:name> filled with a plain word."""
    return re.sub(r"<[^>]+>", "x0", rule)


def expected_routes() -> dict[tuple[str, str], str]:
    """(method, path) -> the upstream it must reach. A route both apps answer (version, probes,
    metrics, static files) may go to query-api, as the default does."""
    ingest, query = facts.api_routes("ingest-api"), facts.api_routes("query-api")
    out = {(m, sample_path(r)): "query" for m, r in query}
    out |= {(m, sample_path(r)): "ingest" for m, r in ingest - query}
    return out


@pytest.fixture(scope="module")
def conf() -> str:
    return CONF.read_text()


def test_every_ingest_route_reaches_ingest_api_and_every_query_route_query_api(conf):
    wrong = {f"{m} {p}": f"goes to {route(conf, m, p)}, want {want}"
             for (m, p), want in expected_routes().items() if route(conf, m, p) != want}
    assert not wrong, wrong


def test_the_table_names_only_routes_ingest_api_has(conf):
    """No stale entry: whatever the map sends to ingest-api is a route ingest-api answers."""
    _, exact, regexes = routing_table(conf)
    ingest = {f"{m} {sample_path(r)}" for m, r in facts.api_routes("ingest-api")}
    stale = [k for k, v in exact.items() if v == "ingest" and k not in ingest]
    stale += [p.pattern for p, v in regexes if v == "ingest" and not any(p.search(k) for k in ingest)]
    assert not stale, stale


def test_a_new_ingest_route_is_caught():
    """What the first test does when ingest-api gains a route the table does not list."""
    conf = CONF.read_text()
    assert route(conf, "POST", "/api/1/upload") == "query"
    added = conf.replace("default ", '"POST /api/1/upload" ingest;\n    default ', 1)
    assert added != conf
    assert route(added, "POST", "/api/1/upload") == "ingest"


def upstream_servers(conf: str) -> dict[str, tuple[str, int]]:
    found = dict(re.findall(r"upstream\s+(\w+)\s*\{\s*server\s+(\S+);\s*\}", conf))
    assert set(found) == set(UPSTREAMS), found
    return {name: (addr.rsplit(":", 1)[0], int(addr.rsplit(":", 1)[1])) for name, addr in found.items()}


def test_the_upstreams_are_the_apis_by_the_names_both_deployments_give_them(conf):
    compose = yaml.safe_load((facts.DEPLOY / "docker-compose.yml").read_text())["services"]
    k8s = [d for p in (facts.DEPLOY / "k8s").glob("*-api.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    services = {o["metadata"]["name"]: o for o in k8s if o["kind"] == "Service"}
    for upstream, (host, port) in upstream_servers(conf).items():
        role = UPSTREAMS[upstream]
        assert host == f"profefe-{role}", upstream
        assert host in compose[role]["networks"]["default"]["aliases"], role
        assert facts.address_port(compose[role]["environment"]["PROFEFE_ADDR"]) == port, role
        assert [p["port"] for p in services[host]["spec"]["ports"]] == [port], role
    assert re.search(r"^\s*listen 10100;", conf, re.M)


def test_compose_and_kubernetes_mount_this_file(conf):
    compose = yaml.safe_load((facts.DEPLOY / "docker-compose.yml").read_text())["services"]["gateway"]
    assert compose["volumes"] == ["./k8s/gateway/gateway.conf:/etc/nginx/conf.d/default.conf:ro"]
    assert (facts.DEPLOY / compose["volumes"][0].split(":")[0]).resolve() == CONF.resolve()
    kustomization = yaml.safe_load((CONF.parent / "kustomization.yaml").read_text())
    [generated] = kustomization["configMapGenerator"]
    assert generated["files"] == [CONF.name]
    [deployment, service] = yaml.safe_load_all((CONF.parent / "gateway.yaml").read_text())
    spec = deployment["spec"]["template"]["spec"]
    [c] = spec["containers"]
    assert c["image"] == compose["image"], "one nginx image for both deployments"
    [routing] = [v for v in spec["volumes"] if "configMap" in v]
    assert routing["configMap"]["name"] == generated["name"]
    assert routing["configMap"]["items"] == [{"key": CONF.name, "path": "default.conf"}]
    mount = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mount[routing["name"]] == "/etc/nginx/conf.d"
    for probe in ("readinessProbe", "livenessProbe"):
        path = c[probe]["httpGet"]["path"]
        assert re.search(rf"location = {re.escape(path)} \{{[^}}]*return 200", conf), probe
    assert [p["containerPort"] for p in c["ports"]] == [10100]
    assert service["spec"]["ports"][0]["port"] == 10100


# -- a real nginx ------------------------------------------------------------------------------

def nginx_bin() -> str:
    found = os.environ.get(NGINX_VAR) or shutil.which("nginx")
    if not found or not os.access(found, os.X_OK):
        unavailable(f"nginx (`scripts/services.sh install` unpacks Debian's and `env` sets {NGINX_VAR})")
    return found


class _Recorder(BaseHTTPRequestHandler):
    """Answers any method with its backend's name, and records what reached it."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append((self.command, self.path))
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args) -> None:
        pass


def runnable_conf(conf: str, tmp: Path, listen: int, backends: dict[str, int]) -> Path:
    """The gateway's config with its listen port and upstream addresses made local, inside the
    smallest main config nginx -p runs from a scratch folder."""
    for upstream, (host, port) in upstream_servers(conf).items():
        conf = conf.replace(f"server {host}:{port};", f"server 127.0.0.1:{backends[upstream]};")
    conf = conf.replace("listen 10100;", f"listen 127.0.0.1:{listen};")
    (tmp / "gateway.conf").write_text(conf)
    temp = " ".join(f"{d}_temp_path {tmp}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp / "nginx.conf"
    main.write_text(f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
                    f"http {{ access_log off; {temp} include {tmp}/gateway.conf; }}\n")
    return main


def test_nginx_accepts_the_config_and_routes_every_route_as_the_table_says(conf, tmp_path):
    nginx = nginx_bin()
    servers = {}
    for name in UPSTREAMS:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.name, server.seen = name, []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = server
    listen = free_port()
    main = runnable_conf(conf, tmp_path, listen, {n: s.server_address[1] for n, s in servers.items()})
    base = [nginx, "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([*base, "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
                time.sleep(0.05)
        wrong = {}
        for (method, path), want in expected_routes().items():
            req = urllib.request.Request(f"http://127.0.0.1:{listen}{path}", method=method,
                                         data=b"x" if method == "POST" else None)
            with urllib.request.urlopen(req, timeout=10) as reply:
                got = reply.read().decode()
            if got != want:
                wrong[f"{method} {path}"] = f"reached {got}, want {want}"
        assert not wrong, wrong
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/gateway/healthz", timeout=10) as reply:
            assert reply.read() == b"ok\n"
        assert all(s.seen for s in servers.values())
    finally:
        proc.terminate()
        proc.wait(30)
        for s in servers.values():
            s.shutdown()
            s.server_close()
