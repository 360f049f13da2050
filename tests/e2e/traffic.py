"""Requests through Envoy, with the Host header that selects a virtual host."""

from __future__ import annotations

import time
import urllib.error
import urllib.request


def get(url: str, host: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_status(url: str, host: str, status: int, timeout: float) -> bytes:
    """GET until it answers `status` (Envoy learns routes asynchronously over xDS); the body of that answer."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            code, body = get(url, host)
            last = (code, body[:200])
            if code == status:
                return body
        except (urllib.error.URLError, OSError) as error:
            last = error
        time.sleep(0.1)
    raise AssertionError(f"GET {url} (Host: {host}) never answered {status} within {timeout:.0f}s; last: {last!r}")
