"""A tiny petstore backend for end-to-end tests: `GET /api/pets` answers a fixed JSON list, anything else 404.

Run it with `python -m proxycontroller.testing.servers.petstore --host 127.0.0.1 --port N`, or start it as a
ManagedProcess with `start_petstore`/`petstore_process` (stdlib only, no framework).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from proxycontroller.testing.servers.processes import ManagedProcess, free_port, http_ready, running

PETS_PATH = "/api/pets"
# Exactly the body tests compare against (compact JSON, no trailing newline).
PETS_BODY = b'[{"id":1,"name":"Dog","status":"available"},{"id":2,"name":"Cat","status":"pending"}]'


class PetstoreHandler(BaseHTTPRequestHandler):
    server_version = "petstore/1"
    # HTTP/1.1 so Envoy can reuse upstream connections; every response carries Content-Length.
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, content_type: str, *, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == PETS_PATH:
            self._send(200, PETS_BODY, "application/json", head=head)
        else:
            self._send(404, b'{"error":"not found"}', "application/json", head=head)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"petstore: {self.address_string()} {format % args}\n")


def serve(host: str, port: int) -> None:
    """Serve until interrupted (blocking)."""
    with ThreadingHTTPServer((host, port), PetstoreHandler) as server:
        server.daemon_threads = True
        sys.stderr.write(f"petstore: listening on http://{host}:{port}{PETS_PATH}\n")
        sys.stderr.flush()
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def petstore_process(log_path: Path, port: int, host: str = "127.0.0.1") -> ManagedProcess:
    """A not yet started ManagedProcess running this module with the current interpreter."""
    return ManagedProcess(
        name="petstore",
        args=[sys.executable, "-m", "proxycontroller.testing.servers.petstore", "--host", host, "--port", str(port)],
        log_path=log_path,
        env={"PYTHONUNBUFFERED": "1"},
    )


@contextlib.contextmanager
def start_petstore(
    log_dir: Path, port: int | None = None, host: str = "127.0.0.1", timeout: float = 30.0
) -> Iterator[tuple[ManagedProcess, int]]:
    """Start the petstore on loopback, wait until `GET /api/pets` answers, yield (process, port), stop it."""
    port = port or free_port(host)
    process = petstore_process(log_dir / "petstore.log", port, host)
    with running(process, http_ready(f"http://{host}:{port}{PETS_PATH}"), timeout):
        yield process, port


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
