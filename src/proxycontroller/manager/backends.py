"""Builds the store clients for the backend the command line chose: a cluster or Gloo's directory layout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from proxycontroller.model.limits import DEFAULT_LIMITS, InputLimits
from proxycontroller.model.resources import Resource
from proxycontroller.store.base import ResourceClient

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class BackendChoice:
    """Where resources live: Gloo's config directory if given, else the cluster of a kubeconfig."""

    config_dir: Path | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    limits: InputLimits = DEFAULT_LIMITS  # what the directory store reads at most

    def describe(self) -> str:
        if self.config_dir is not None:
            return f"directory {self.config_dir}"
        return f"cluster from {self.kubeconfig or 'the environment (in-cluster or $KUBECONFIG)'}"


@dataclass
class Backend:
    """Makes a client per resource kind, all over one connection; `compresses`: whether Gloo reads its
    compressed spec there (its file client does not)."""

    make: Callable[[type[Any]], ResourceClient[Any]]
    compresses: bool
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def client(self, kind: type[R]) -> ResourceClient[R]:
        made: ResourceClient[R] = self.make(kind)
        return made

    async def close(self) -> None:
        for close in self.closers:
            await close()


def open_backend(choice: BackendChoice, field_manager: str = "proxycontroller") -> Backend:
    # Imported here: each backend pulls in its own client library (watchfiles, lightkube).
    if choice.config_dir is not None:
        from proxycontroller.store.directory import DirectoryClient

        root, limits = choice.config_dir, choice.limits
        return Backend(lambda kind: DirectoryClient(kind, root, limits=limits), compresses=False)
    from proxycontroller.store.kube import KubeClient, make_async_client

    client = make_async_client(choice.kubeconfig, choice.context, field_manager=field_manager)
    return Backend(lambda kind: KubeClient(kind, client), compresses=True, closers=[client.close])
