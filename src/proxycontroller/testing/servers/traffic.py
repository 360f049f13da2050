"""Requests through Envoy with the Host header that selects a virtual host, as the seed's curl does."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


def get(url: str, host: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """Status and body of a GET; status 0 when nothing answered (Envoy has not opened the listener yet)."""
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_for_status(url: str, host: str, status: int, timeout: float) -> bytes:
    """GET until it answers `status` (Envoy learns routes asynchronously over xDS); the body of that answer."""
    deadline = time.monotonic() + timeout
    last: tuple[int, bytes] = (0, b"")
    while time.monotonic() < deadline:
        last = get(url, host)
        if last[0] == status:
            return last[1]
        time.sleep(0.1)
    raise AssertionError(
        f"GET {url} (Host: {host}) never answered {status} within {timeout:.0f}s; last: {last[0]} {last[1][:200]!r}"
    )


@dataclass(frozen=True)
class Answer:
    """One answer through Envoy: status (0 when nothing answered), headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def answer(url: str, host: str | None = None, timeout: float = 2.0) -> Answer:
    """A GET with its headers (to tell which backend answered); Host from the URL unless `host` is given."""
    request = urllib.request.Request(url, headers={} if host is None else {"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(int(response.status), _lower(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, _lower(error.headers.items()), error.read())
    except (urllib.error.URLError, OSError):
        return Answer(0, {}, b"")


def wait_for_answer(
    url: str, host: str | None, status: int, timeout: float, alive: Callable[[], bool] | None = None
) -> Answer:
    """`answer` until it has `status` (Envoy learns routes asynchronously over xDS); that answer. `alive` (e.g.
    Gloo's `process.running`) makes the wait end at once with a RuntimeError when what feeds Envoy died."""
    deadline = time.monotonic() + timeout
    last = answer(url, host)
    while last.status != status and time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"GET {url} (Host: {host}): gave up waiting for {status}, the control plane exited")
        time.sleep(0.1)
        last = answer(url, host)
    if last.status != status:
        raise AssertionError(
            f"GET {url} (Host: {host}) never answered {status} within {timeout:.0f}s; "
            f"last: {last.status} {dict(last.headers)} {last.body[:200]!r}"
        )
    return last


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}
