"""/metrics, and /healthz, /readyz and /statusz, on one HTTP port or two (controller-runtime's metrics and health
probe addresses), served by the standard library's WSGI server in a thread.

Prometheus' own WSGI app serves the metrics; the probes only read flags the reconciler keeps.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log."""


class _Server(WSGIServer):
    address_family = socket.AF_INET


class _Server6(WSGIServer):
    address_family = socket.AF_INET6


class ProbeServer:
    """Binds `host:port` when made (port 0: any free one), so that a taken or wrong address fails before the
    controller starts; serves once `start` gives it what to report: /metrics if `metrics`, the probes if
    `probes`, 404 for anything else. `host` is a name or an address, IPv6 without brackets; empty: every
    interface."""

    def __init__(self, host: str, port: int, *, metrics: bool = True, probes: bool = True) -> None:
        self.metrics = metrics
        self.probes = probes
        server_class = _Server6 if ":" in host else _Server
        self._server: WSGIServer = make_server(host, port, _not_started, server_class, _QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="probes", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def serves(self) -> str:
        paths = ["/metrics"] if self.metrics else []
        return ", ".join(paths + (["/healthz", "/readyz", "/statusz"] if self.probes else []))

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(
        self,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        detail: Callable[[], dict[str, object]] = dict,
    ) -> ProbeServer:
        self._server.set_app(_probes_app(registry if self.metrics else None, ready if self.probes else None, detail))
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _not_started(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


def _probes_app(
    registry: CollectorRegistry | None, ready: Callable[[], bool] | None, detail: Callable[[], dict[str, object]]
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry) if registry is not None else None

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if ready is None or path not in ("/healthz", "/statusz", "/readyz"):
            if metrics is not None:  # Prometheus' app answers on any path, /metrics by convention
                result: Iterable[bytes] = metrics(environ, start_response)
                return result
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/statusz":
            # The engine's state as JSON: passes, the last error and since when it fails (`status` shows it).
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(detail()).encode() + b"\n"]
        if ready():
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"caches not synced yet\n"]

    return app
