"""Snapshot in, proxy plans out: the pure heart of the controller."""

from __future__ import annotations

from proxycontroller.config import ControllerConfig
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.proxy import Listener
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan
from proxycontroller.translate.strategies import Strategy

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "proxycontroller"
INSTANCE_LABEL = "app.kubernetes.io/instance"


def managed_labels(config: ControllerConfig) -> dict[str, str]:
    """The labels that mark a Proxy as this controller's. Never `created_by: gloo-gateway`: Gloo deletes those."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, INSTANCE_LABEL: config.instance}


def translate(snapshot: Snapshot, config: ControllerConfig, strategy: Strategy) -> list[ProxyPlan]:
    upstreams = snapshot.sorted_upstreams()
    if not config.all_namespaces:
        selected = set(config.namespaces)
        upstreams = [u for u in upstreams if u.key.namespace in selected]
    virtual_hosts = tuple(strategy(upstreams, config.strategy))
    listener = Listener(
        name=config.listener.name,
        bind_address=config.listener.bind_address,
        bind_port=config.listener.bind_port,
    )
    metadata = ObjectMeta(name=config.proxy.name, namespace=config.proxy.namespace, labels=managed_labels(config))
    return [ProxyPlan(metadata=metadata, listeners=(ListenerPlan(listener, virtual_hosts),))]
