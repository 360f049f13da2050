"""Support for the end-to-end tests where several Proxies are each served by their own Envoy: which backend
answered a Host (or a path) at which Envoy, and a wait that a route stays absent."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from proxycontroller.testing.servers.envoy import Envoy
from proxycontroller.testing.servers.petstore import NAME_HEADER, PETS_BODY, PETS_PATH
from proxycontroller.testing.servers.traffic import Answer, answer, wait_for_answer

LOOPBACK = "127.0.0.1"


def named_static_upstream(name: str, namespace: str, port: int, **metadata: Any) -> dict[str, Any]:
    """A flat-form Upstream (Gloo's directory mode) with one static host on loopback; `metadata` adds e.g.
    labels or annotations."""
    return {
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "static": {"hosts": [{"addr": LOOPBACK, "port": port}]},
    }


@dataclass(frozen=True)
class Served:
    """An Envoy serving one Proxy's listener on `port`."""

    proxy: str
    envoy: Envoy
    port: int

    def url(self, path: str = PETS_PATH) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def get(self, host: str, path: str = PETS_PATH) -> Answer:
        return answer(self.url(path), host)

    def wait_until_served_by(self, host: str, backend: str, timeout: float = 60) -> None:
        """Until the pets for `host` come from the petstore named `backend` through this Envoy."""
        got = wait_for_answer(self.url(), host, 200, timeout)
        assert (got.body, got.header(NAME_HEADER)) == (PETS_BODY, backend), (self.proxy, host, got)

    def assert_not_routed(self, host: str, path: str = PETS_PATH) -> None:
        """Envoy itself answers 404 (no virtual host or route): no backend answered."""
        got = self.get(host, path)
        assert (got.status, got.header(NAME_HEADER)) == (404, None), (self.proxy, host, path, got)

    def assert_stays_unrouted(self, host: str, seconds: float = 2.0, path: str = PETS_PATH) -> None:
        """404 from Envoy for `seconds`: a route that appeared here later than at another Envoy would be seen."""
        deadline = time.monotonic() + seconds
        while True:
            self.assert_not_routed(host, path)
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)

    def logs(self) -> str:
        return f"\n--- envoy {self.proxy}:\n{self.envoy.process.log_tail()}"
