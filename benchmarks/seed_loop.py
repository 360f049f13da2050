"""A faithful port of the seed's controller loop, the baseline the controller is measured against.

On every watch event it sleeps one second (the seed waits for Gloo to re-validate), re-reads the Proxy, and
overwrites it with one built from every upstream it knows, whether or not anything changed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.generic_resource import create_namespaced_resource

UpstreamCR = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")
ProxyCR = create_namespaced_resource("gloo.solo.io", "v1", "Proxy", "proxies")


def make_desired_proxy(upstreams: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """makeDesiredProxy: one virtual host per upstream, in the order the watch delivered them."""
    virtual_hosts = [
        {
            "name": upstream_name,
            "domains": [upstream_name],
            "routes": [
                {
                    "matchers": [{"prefix": "/"}],
                    "routeAction": {"single": {"upstream": {"name": upstream_name, "namespace": "gloo-system"}}},
                }
            ],
        }
        for upstream_name in upstreams
    ]
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Proxy",
        "metadata": {"name": name, "namespace": "gloo-system"},
        "spec": {
            "listeners": [
                {
                    "name": "my-amazing-listener",
                    "bindAddress": "::",
                    "bindPort": 8080,
                    "httpListener": {"virtualHosts": virtual_hosts},
                }
            ]
        },
    }


class SeedLoop:
    def __init__(self, client: AsyncClient, proxy_name: str) -> None:
        self.client = client
        self.proxy_name = proxy_name
        self.writes = 0
        self.upstreams: dict[str, dict[str, Any]] = {}

    async def run(self) -> None:
        listing = self.client.list(UpstreamCR, namespace="gloo-system")
        item: Any
        async for item in listing:
            self.upstreams[item.metadata.name] = item.to_dict()
        async for event, item in self.client.watch(
            UpstreamCR, namespace="gloo-system", resource_version=listing.resourceVersion
        ):
            if event == "DELETED":
                self.upstreams.pop(item.metadata.name, None)
            else:
                self.upstreams[item.metadata.name] = item.to_dict()
            await self.resync()

    async def resync(self) -> None:
        desired = make_desired_proxy(self.upstreams, self.proxy_name)
        try:
            await self.client.get(ProxyCR, self.proxy_name, namespace="gloo-system")
        except ApiError as error:
            if error.status.code != 404:
                raise
            await self.client.create(ProxyCR.from_dict(desired))
            self.writes += 1
            return
        await asyncio.sleep(1.0)  # "Gloo may be re-validating our proxy"
        existing: Any = await self.client.get(ProxyCR, self.proxy_name, namespace="gloo-system")
        desired["metadata"]["resourceVersion"] = existing.metadata.resourceVersion
        await self.client.replace(ProxyCR.from_dict(desired))
        self.writes += 1
