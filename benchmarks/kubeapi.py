"""A small raw client of the Kubernetes API for the benchmarks: plain JSON over HTTP, nothing in between.

The benchmarks measure writes against a floor, so they need to see exactly what goes over the wire: no model
objects (lightkube rebuilds `.metadata` from its dict on each access, so an edit of `obj.metadata` is silently
lost: that is how an earlier "raw PUT" baseline came to PUT an unchanged object), no client-side caching. Every
call returns the decoded JSON the API server answered; a watch yields each event with the moment its line
arrived, before anything decodes it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import yaml

GLOO_API = "/apis/gloo.solo.io/v1"
MERGE_PATCH = "application/merge-patch+json"


class ApiStatusError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: {status} {body[:500]}")
        self.status = status


def namespaced(plural: str, namespace: str, name: str | None = None) -> str:
    path = f"{GLOO_API}/namespaces/{namespace}/{plural}"
    return path if name is None else f"{path}/{name}"


@dataclass(frozen=True)
class WatchEvent:
    arrived: float  # time.monotonic() when the event's line was read, before it was decoded
    type: str
    object: dict[str, Any]


class KubeApi:
    """Bearer-token access to one API server, from a kubeconfig as `KubeTestCluster` writes them."""

    def __init__(self, kubeconfig: Path, connections: int = 32) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.server: str = cluster["server"]
        tls = ssl.create_default_context()
        with tempfile.NamedTemporaryFile("wb", suffix=".crt") as ca:
            ca.write(base64.b64decode(cluster["certificate-authority-data"]))
            ca.flush()
            tls.load_verify_locations(ca.name)
        # The self-signed serving certificate names the host the API server generated it for, not 127.0.0.1.
        tls.check_hostname = False
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(
            base_url=self.server,
            headers={"Authorization": f"Bearer {user['token']}", "Accept": "application/json"},
            verify=tls,
            limits=limits,
            timeout=httpx.Timeout(120.0),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        headers = {"Content-Type": content_type} if body is not None else {}
        response = await self._client.request(method, path, content=body, headers=headers)
        if response.status_code >= 300:
            raise ApiStatusError(method, path, response.status_code, response.text)
        return cast(dict[str, Any], response.json())

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.get(path)
        except ApiStatusError as error:
            if error.status == 404:
                return None
            raise

    async def create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, json.dumps(obj).encode())

    async def put(self, path: str, body: bytes) -> dict[str, Any]:
        return await self.request("PUT", path, body)

    async def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, json.dumps(patch).encode(), MERGE_PATCH)

    async def delete(self, path: str) -> None:
        try:
            await self.request("DELETE", path)
        except ApiStatusError as error:
            if error.status != 404:
                raise

    async def delete_collection(self, path: str) -> None:
        await self.request("DELETE", path)

    async def count(self, path: str) -> int:
        listing = await self.get(f"{path}?limit=1")
        remaining = int(listing["metadata"].get("remainingItemCount") or 0)
        return len(listing["items"]) + remaining

    async def watch(
        self, path: str, resource_version: str, field_selector: str | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Every event after `resource_version`, each with its arrival time; ends when the server closes."""
        params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": "3600"}
        if field_selector:
            params["fieldSelector"] = field_selector
        async with self._client.stream("GET", path, params=params, timeout=httpx.Timeout(None)) as response:
            if response.status_code >= 300:
                raise ApiStatusError("WATCH", path, response.status_code, (await response.aread()).decode())
            async for line in response.aiter_lines():
                arrived = time.monotonic()
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    raise ApiStatusError("WATCH", path, int(event["object"].get("code") or 0), line)
                yield WatchEvent(arrived, event["type"], event["object"])

    async def create_many(self, path: str, objects: Iterable[dict[str, Any]], concurrency: int = 32) -> None:
        """POST every object, `concurrency` at a time (the same creators for every contestant)."""
        gate = asyncio.Semaphore(concurrency)

        async def one(obj: dict[str, Any]) -> None:
            async with gate:
                await self.create(path, obj)

        await asyncio.gather(*(one(obj) for obj in objects))


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout:.0f}s")
        await asyncio.sleep(interval)
