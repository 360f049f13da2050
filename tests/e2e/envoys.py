"""Support for the end-to-end tests where several Proxies are each served by their own Envoy: which backend
answered a Host (or a path) at which Envoy, and a wait that a route stays absent."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxycontroller.testing.servers.envoy import Envoy, start_envoy
from proxycontroller.testing.servers.gloo import GLOO_SYSTEM, Gloo
from proxycontroller.testing.servers.petstore import NAME_HEADER, PETS_BODY, PETS_PATH
from proxycontroller.testing.servers.traffic import Answer, answer, wait_for_answer

LOOPBACK = "127.0.0.1"


def accepted_by_gloo(namespace: str = GLOO_SYSTEM) -> dict[str, Any]:
    """The status Gloo (running as `namespace`) writes into a valid Upstream's file, in flat form.

    Written with the Upstream so that Gloo, finding it already there, writes nothing. Gloo 1.22.1 rewrites a
    file in place to record a status, and its file client panics when it lists the directory at that moment
    (an empty file makes a resource without metadata, which its sort dereferences): with a status write per
    upstream and per change, the scenarios here crashed Gloo on about every other attempt."""
    return {"statuses": {namespace: {"reportedBy": "gloo", "state": "Accepted"}}}


def named_static_upstream(name: str, namespace: str, port: int, **metadata: Any) -> dict[str, Any]:
    """A flat-form Upstream (Gloo's directory mode) with one static host on loopback and Gloo's verdict
    (`accepted_by_gloo`); `metadata` adds e.g. labels or annotations."""
    return {
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "namespacedStatuses": accepted_by_gloo(),
        "static": {"hosts": [{"addr": LOOPBACK, "port": port}]},
    }


@dataclass(frozen=True)
class Served:
    """An Envoy serving one Proxy's listener on `port`; its waits end at once when `alive` (Gloo) says no."""

    proxy: str
    envoy: Envoy
    port: int
    alive: Callable[[], bool]

    def url(self, path: str = PETS_PATH) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def get(self, host: str, path: str = PETS_PATH) -> Answer:
        return answer(self.url(path), host)

    def wait_until_served_by(self, host: str, backend: str, timeout: float = 60) -> None:
        """Until the pets for `host` come from the petstore named `backend` through this Envoy."""
        got = wait_for_answer(self.url(), host, 200, timeout, self.alive)
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


def serve(stack: contextlib.ExitStack, gloo: Gloo, work_dir: Path, proxy: str, port: int) -> Served:
    """An Envoy bound to `gloo-system~<proxy>` for the lifetime of `stack`, serving that Proxy's listener on `port`."""
    envoy = stack.enter_context(start_envoy(work_dir / proxy, xds_port=gloo.xds_port, proxy_name=proxy))
    return Served(proxy, envoy, port, gloo.process.running)


def wait_for_any(envoys: list[Served], host: str, timeout: float = 60) -> None:
    """Until one of the Envoys answers 200 for `host`."""
    deadline = time.monotonic() + timeout
    while not any(served.get(host).status == 200 for served in envoys):
        assert time.monotonic() < deadline, f"no Envoy answered for {host} within {timeout:.0f}s"
        if not all(served.alive() for served in envoys):
            raise RuntimeError(f"gave up waiting for an Envoy to answer for {host}: the control plane exited")
        time.sleep(0.1)
