"""Helpers for tests that run `proxycontroller run` as a process in Gloo's directory layout: files as another
writer puts them there, the probes, and waiting with a deadline."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "gloo-system"


def upstream_path(config_dir: Path, name: str) -> Path:
    return config_dir / "upstreams" / NAMESPACE / f"{name}.yaml"


def proxy_path(config_dir: Path, name: str = "my-cool-proxy") -> Path:
    return config_dir / "proxies" / NAMESPACE / f"{name}.yaml"


def write_upstream(config_dir: Path, name: str) -> None:
    path = upstream_path(config_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"metadata": {"name": name, "namespace": NAMESPACE}, "static": {"hosts": [{"addr": "127.0.0.1"}]}}
    path.write_text(yaml.safe_dump(document))


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


def wait_for(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)
