"""Gloo's Upstreams and Proxies as the benchmarks write and check them: plain dicts and bytes, on purpose
independent of the controller's own model (which is what is being measured, and is being rewritten).

Gloo's compressed Proxy spec: annotation `gloo.solo.io/compress: "true"` and
`spec: {"compressedSpec": base64(zlib(spec JSON))}`.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterable
from typing import Any

NAMESPACE = "gloo-system"
PROXY_NAME = "my-cool-proxy"  # the seed's Proxy, and the controller's default
LISTENER = "my-amazing-listener"
COMPRESS_ANNOTATION = "gloo.solo.io/compress"


def upstream_spec() -> dict[str, Any]:
    return {"static": {"hosts": [{"addr": "127.0.0.1", "port": 8080}]}}


def upstream_cr(name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": name, "namespace": namespace},
        "spec": upstream_spec(),
    }


def upstream_flat(name: str, namespace: str = NAMESPACE) -> str:
    """An Upstream file in Gloo's directory (flat) form: metadata and spec fields at the top level."""
    return (
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nstatic:\n  hosts:\n  - addr: 127.0.0.1\n    port: 8080\n"
    )


def is_compressed(proxy: dict[str, Any]) -> bool:
    annotations = (proxy.get("metadata") or {}).get("annotations") or {}
    return annotations.get(COMPRESS_ANNOTATION) == "true" and "compressedSpec" in (proxy.get("spec") or {})


def spec_bytes(proxy: dict[str, Any]) -> bytes:
    """The spec's JSON: for a compressed Proxy exactly the bytes its writer compressed; else re-encoded."""
    if is_compressed(proxy):
        return zlib.decompress(base64.b64decode(proxy["spec"]["compressedSpec"]))
    return json.dumps(proxy.get("spec") or {}, separators=(",", ":")).encode()


def compress_spec(data: bytes) -> str:
    """Gloo's compressedSpec of spec JSON bytes: base64 of zlib at its default level (Go's and Python's: 6)."""
    return base64.b64encode(zlib.compress(data)).decode()


def mentions(spec: bytes, name: str) -> bool:
    """Cheap test whether a spec names `name` (as a virtual host, domain or upstream): a JSON string match."""
    return json.dumps(name).encode() in spec


def names_token(data: bytes, name: str) -> bool:
    """Whether a JSON or YAML document names `name` as a whole token (quoted or not), without parsing it."""
    return re.search(rb"(?<![\w.-])" + re.escape(name.encode()) + rb"(?![\w.-])", data) is not None


def virtual_hosts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    hosts: list[dict[str, Any]] = []
    for listener in spec.get("listeners") or []:
        hosts.extend((listener.get("httpListener") or {}).get("virtualHosts") or [])
    return hosts


def routed_upstreams(spec: dict[str, Any]) -> dict[str, str]:
    """Host header (each domain) -> the `namespace/name` of the upstream its catch-all route sends to."""
    routes: dict[str, str] = {}
    for host in virtual_hosts(spec):
        for route in host.get("routes") or []:
            prefixes = [m.get("prefix") for m in route.get("matchers") or []]
            upstream = ((route.get("routeAction") or {}).get("single") or {}).get("upstream")
            if "/" in prefixes and upstream:
                for domain in host.get("domains") or []:
                    routes[domain] = f"{upstream.get('namespace')}/{upstream['name']}"
    return routes


def check_routes_all(spec: dict[str, Any], names: Iterable[str], namespace: str = NAMESPACE) -> None:
    """Raises unless the spec routes, for every name, Host: <name> to exactly the upstream <namespace>/<name>
    (and nothing else), on the seed's listener `::`:8080."""
    expected = {name: f"{namespace}/{name}" for name in names}
    routes = routed_upstreams(spec)
    if routes != expected:
        missing = sorted(set(expected) - set(routes))[:5]
        extra = sorted(set(routes) - set(expected))[:5]
        wrong = sorted(n for n in set(routes) & set(expected) if routes[n] != expected[n])[:5]
        raise AssertionError(
            f"Proxy routes {len(routes)} hosts, expected {len(expected)}; missing {missing}, extra {extra}, "
            f"wrong target {wrong}"
        )
    listeners = spec.get("listeners") or []
    if [(x.get("name"), x.get("bindAddress"), x.get("bindPort")) for x in listeners] != [(LISTENER, "::", 8080)]:
        raise AssertionError(f"unexpected listeners: {[x.get('name') for x in listeners]}")
