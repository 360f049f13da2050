"""The reads `proxycontroller url` makes (a Service, the Nodes), each failure one line naming the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import httpx2
from lightkube import ApiError, Client, ConfigError
from lightkube.resources.core_v1 import Node, Service

from proxycontroller.cli.errors import BadInput, Failed
from proxycontroller.manager.preflight import failure_reason, load_kube_config


class ClusterReader:
    """A client of the cluster the kubeconfig names (found as `run` finds it); use as a context manager."""

    def __init__(self, kubeconfig: Path | None, context: str | None, timeout: float) -> None:
        single, source = load_kube_config(kubeconfig, context)
        self.where = f"cluster {single.cluster.server} ({source}, context {single.context_name})"
        self.timeout = timeout
        try:
            self._client = Client(config=single, timeout=httpx2.Timeout(timeout))
        except (ConfigError, OSError) as exc:
            raise BadInput(f"{source}: context {single.context_name}: cannot be used: {exc}") from exc

    def __enter__(self) -> ClusterReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def service(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            found: Any = self._client.get(Service, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                raise Failed(
                    f"{self.where}: no Service {namespace}/{name} (the Envoy Service of Proxy {name} that"
                    " `proxycontroller manifests` renders; another namespace? -n)"
                ) from exc
            self._failed(exc, f"get Service {namespace}/{name}")
        except httpx2.HTTPError as exc:
            self._unreachable(exc)
        as_dict: dict[str, Any] = found.to_dict()
        return as_dict

    def nodes(self) -> list[dict[str, Any]]:
        try:
            return [node.to_dict() for node in self._client.list(Node)]
        except ApiError as exc:
            self._failed(exc, "list nodes (a node's address is the way to a node port)")
        except httpx2.HTTPError as exc:
            self._unreachable(exc)

    def _failed(self, exc: ApiError, what: str) -> NoReturn:
        code, message = exc.status.code, exc.status.message
        if code == 401:
            raise Failed(f"{self.where} refused the credentials: 401 {message}") from exc
        if code == 403:
            raise Failed(f"{self.where}: not allowed to {what}: {message}") from exc
        raise Failed(f"{self.where}: cannot {what}: {code} {message}") from exc

    def _unreachable(self, exc: httpx2.HTTPError) -> NoReturn:
        if isinstance(exc, httpx2.TimeoutException):
            raise Failed(f"{self.where}: no answer within {self.timeout:g}s") from exc
        raise Failed(f"{self.where} is unreachable: {failure_reason(exc)}") from exc
