"""Builds the store clients for the backend the command line chose: a cluster or Gloo's directory layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proxycontroller.model.resources import Proxy, Upstream
from proxycontroller.store.base import ResourceClient
from proxycontroller.store.directory import DirectoryClient
from proxycontroller.store.kube import KubeClient, make_async_client


@dataclass(frozen=True)
class BackendChoice:
    """Where resources live: Gloo's config directory if given, else the cluster of a kubeconfig."""

    config_dir: Path | None = None
    kubeconfig: Path | None = None
    context: str | None = None

    def describe(self) -> str:
        if self.config_dir is not None:
            return f"directory {self.config_dir}"
        return f"cluster from {self.kubeconfig or 'the environment (in-cluster or $KUBECONFIG)'}"


@dataclass
class Backend:
    upstreams: ResourceClient[Upstream]
    proxies: ResourceClient[Proxy]
    closers: list[object]

    async def close(self) -> None:
        for closer in self.closers:
            close = getattr(closer, "close", None)
            if close is not None:
                await close()


def open_backend(choice: BackendChoice) -> Backend:
    if choice.config_dir is not None:
        return Backend(DirectoryClient(Upstream, choice.config_dir), DirectoryClient(Proxy, choice.config_dir), [])
    client = make_async_client(choice.kubeconfig, choice.context)
    return Backend(KubeClient(Upstream, client), KubeClient(Proxy, client), [client])
