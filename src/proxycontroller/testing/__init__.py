"""The test layer, imported by no product module.

`render` runs a configuration over a list of upstreams in one call, the way the controller would, and gives
back the Proxies as plain dicts plus the warnings: what a strategy's unit test wants. `servers` starts the real
etcd, kube-apiserver, Gloo, Envoy and petstore for the project's own tests, benchmarks and demo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from proxycontroller.config import ControllerConfig
from proxycontroller.model.desired import as_resource
from proxycontroller.model.encoding import to_cr
from proxycontroller.model.resources import Resource, Service, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.api import Strategy
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.validate.desired import ProxyLogic


@dataclass(frozen=True)
class Rendered:
    proxies: tuple[dict[str, Any], ...]  # Kubernetes CRs, as `proxycontroller render` prints them
    warnings: tuple[str, ...]

    def proxy(self, name: str | None = None) -> dict[str, Any]:
        """The one Proxy (or the one named `name`)."""
        found = [p for p in self.proxies if name is None or p["metadata"]["name"] == name]
        if len(found) != 1:
            raise LookupError(f"{len(found)} Proxies named {name!r} among {len(self.proxies)}")
        return found[0]

    def virtual_hosts(self, listener: int = 0, proxy: str | None = None) -> list[dict[str, Any]]:
        hosts: list[dict[str, Any]] = self.proxy(proxy)["spec"]["listeners"][listener]["httpListener"]["virtualHosts"]
        return hosts


def render(
    upstreams: Iterable[Upstream | Mapping[str, Any]],
    config: ControllerConfig | Mapping[str, Any] | None = None,
    strategies: Iterable[Strategy[Any]] = (),
    services: Iterable[Service | Mapping[str, Any]] = (),
) -> Rendered:
    """The Proxies for `upstreams` (models, or dicts in the CR's shape) under `config` (a model, or a dict as
    in the YAML file), with `strategies` known by name besides the built-in ones; `services` are routed when
    the configuration's `sources` lists them."""
    if config is None or not isinstance(config, ControllerConfig):
        config = ControllerConfig.model_validate(config or {})
    registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, *strategies)})
    models: list[Resource] = [u if isinstance(u, Upstream) else Upstream.model_validate(u) for u in upstreams]
    models += [s if isinstance(s, Service) else Service.model_validate(s) for s in services]
    desired = ProxyLogic(config, registry).desired(Snapshot.of(models))
    return Rendered(tuple(to_cr(as_resource(item)) for item in desired.objects), desired.warnings)
