"""A tiny petstore backend for end-to-end tests: `GET /api/pets` answers a fixed JSON list, anything else 404.

Run it with `python -m proxycontroller.testing.servers.petstore --host 127.0.0.1 --port N`, or start it as a
ManagedProcess with `start_petstore`/`petstore_process` (stdlib only, no framework).

Every answer says who gave it and to what, so a test can tell through Envoy which backend answered and which
path it received (after a prefix rewrite, say): the header `X-Petstore-Path` echoes the request's path as the
petstore saw it, and `X-Petstore-Name` carries the `--name` it was started with (when given). Envoy's own
answers (its 404 for an unknown host) carry neither.
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
NAME_HEADER = "X-Petstore-Name"
PATH_HEADER = "X-Petstore-Path"


class PetstoreHandler(BaseHTTPRequestHandler):
    server_version = "petstore/1"
    # HTTP/1.1 so Envoy can reuse upstream connections; every response carries Content-Length.
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle's algorithm on, the body waits for the ACK of the headers,
    # which Envoy delays (~40 ms) on a kept-alive connection. 2000 requests took 80 s instead of 3.
    disable_nagle_algorithm = True
    # Set per server by `serve` (a subclass per name): the value of NAME_HEADER, or None for no header.
    petstore_name: str | None = None

    def _send(self, status: int, body: bytes, content_type: str, *, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(PATH_HEADER, self.path.split("?", 1)[0])
        if self.petstore_name is not None:
            self.send_header(NAME_HEADER, self.petstore_name)
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


def serve(host: str, port: int, name: str | None = None) -> None:
    """Serve until interrupted (blocking); answers carry `X-Petstore-Name: <name>` when a name is given."""
    handler = type("NamedPetstoreHandler", (PetstoreHandler,), {"petstore_name": name})
    with ThreadingHTTPServer((host, port), handler) as server:
        server.daemon_threads = True
        sys.stderr.write(f"petstore: listening on http://{host}:{port}{PETS_PATH}\n")
        sys.stderr.flush()
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def petstore_process(log_path: Path, port: int, host: str = "127.0.0.1", name: str | None = None) -> ManagedProcess:
    """A not yet started ManagedProcess running this module with the current interpreter."""
    args = [sys.executable, "-m", "proxycontroller.testing.servers.petstore", "--host", host, "--port", str(port)]
    return ManagedProcess(
        name="petstore" if name is None else f"petstore-{name}",
        args=args if name is None else [*args, "--name", name],
        log_path=log_path,
        env={"PYTHONUNBUFFERED": "1"},
    )


@contextlib.contextmanager
def start_petstore(
    log_dir: Path, port: int | None = None, host: str = "127.0.0.1", timeout: float = 30.0, name: str | None = None
) -> Iterator[tuple[ManagedProcess, int]]:
    """Start the petstore on loopback, wait until `GET /api/pets` answers, yield (process, port), stop it.
    With a `name`, its answers say so (NAME_HEADER) and its log is `petstore-<name>.log`."""
    port = port or free_port(host)
    log_name = "petstore.log" if name is None else f"petstore-{name}.log"
    process = petstore_process(log_dir / log_name, port, host, name)
    with running(process, http_ready(f"http://{host}:{port}{PETS_PATH}"), timeout):
        yield process, port


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default=None, help=f"sent back in the {NAME_HEADER} header of every answer")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.name)


if __name__ == "__main__":
    main()
