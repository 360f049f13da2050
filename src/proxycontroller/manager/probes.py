"""/metrics, /healthz, /readyz and /statusz on one HTTP port, served by the standard library's WSGI server in a thread.

Prometheus' own WSGI app serves the metrics; the probes only read flags the reconciler keeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log."""


class ProbeServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        detail: Callable[[], dict[str, object]] = dict,
    ) -> None:
        metrics = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok\n"]
            if path == "/statusz":
                # The engine's state as JSON: passes, the last error and since when it fails (`status` shows it).
                start_response("200 OK", [("Content-Type", "application/json")])
                return [json.dumps(detail()).encode() + b"\n"]
            if path == "/readyz":
                if ready():
                    start_response("200 OK", [("Content-Type", "text/plain")])
                    return [b"ok\n"]
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"caches not synced yet\n"]
            result: Iterable[bytes] = metrics(environ, start_response)
            return result

        self._server: WSGIServer = make_server(host, port, app, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="probes", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
