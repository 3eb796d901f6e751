"""A client of Toxiproxy's HTTP API (the real server that scripts/services.sh runs), for the fault
suite's network faults: proxies in front of the services, and toxics added to and removed from
them. Plain JSON over HTTP; the API is described in Toxiproxy's README."""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

TOXIPROXY_VAR = "PROFEFE_TEST_TOXIPROXY"


class ToxiproxyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Toxic:
    """One toxic of Toxiproxy's: `type` (latency, bandwidth, timeout, reset_peer, limit_data, ...)
    on one `stream` (upstream: client to server; downstream: server to client)."""

    name: str
    type: str
    stream: str
    attributes: dict[str, Any]
    toxicity: float = 1.0  # the share of connections it applies to

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": self.attributes}


class Toxiproxy:
    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.address = address
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection(self.address, timeout=self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read()
        except OSError as exc:
            raise ToxiproxyError(f"Toxiproxy at {self.address}: {method} {path}: {exc}") from exc
        finally:
            conn.close()
        if resp.status >= 300:
            raise ToxiproxyError(f"Toxiproxy at {self.address}: {method} {path}: HTTP {resp.status} {text[:300]!r}")
        return json.loads(text) if text.strip() else None

    def version(self) -> str:
        return str(self._call("GET", "/version"))

    def names(self) -> list[str]:
        return list(self._call("GET", "/proxies"))

    def proxy(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/proxies/{name}")

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> str:
        """A proxy to `upstream`, replacing one of that name; returns the address it listens on
        (port 0: one the system picks)."""
        try:
            self.delete(name)
        except ToxiproxyError:
            pass
        made = self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True})
        return made["listen"]

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def add(self, proxy: str, toxic: Toxic) -> None:
        self._call("POST", f"/proxies/{proxy}/toxics", toxic.body())

    def remove(self, proxy: str, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/proxies/{proxy}/toxics")
