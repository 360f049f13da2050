"""Requests through Envoy with the Host header that selects a virtual host, as the seed's curl does."""

from __future__ import annotations

import time
import urllib.error
import urllib.request


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
