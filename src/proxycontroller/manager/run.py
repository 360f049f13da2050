"""`proxycontroller run`: the controller until it is stopped; `status`: what the managed Proxies look like."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from proxycontroller.config import ControllerConfig
from proxycontroller.manager.backends import BackendChoice, open_backend
from proxycontroller.manager.leader import LeaderElectionSettings, LeaderElector
from proxycontroller.manager.probes import ProbeServer
from proxycontroller.model.resources import Proxy
from proxycontroller.reconcile.loop import Reconciler
from proxycontroller.reconcile.metrics import Metrics
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.kube import make_async_client
from proxycontroller.translate.strategies import resolve_strategy
from proxycontroller.translate.translator import managed_labels

log = logging.getLogger(__name__)


async def run_controller(
    config: ControllerConfig,
    choice: BackendChoice,
    probe_host: str | None,
    probe_port: int,
    leader_election: bool = True,
) -> None:
    """Runs until SIGINT or SIGTERM. On a cluster, with leader election, several replicas can run and only the
    holder of the Lease `<proxy namespace>/proxycontroller-<instance>` reconciles; a leader that cannot renew
    raises LeadershipLost (the process should exit and restart with fresh caches, as controller-runtime's do)."""
    backend = open_backend(choice)
    metrics = Metrics()
    reconciler = Reconciler(config, resolve_strategy(config.strategy), backend.upstreams, backend.proxies, metrics)
    elector: LeaderElector | None = None
    if leader_election and choice.config_dir is None:
        elector_client = make_async_client(choice.kubeconfig, choice.context)
        backend.closers.append(elector_client)
        settings = LeaderElectionSettings(
            lease_name=f"proxycontroller-{config.instance}", namespace=config.proxy.namespace
        )
        elector = LeaderElector(elector_client, settings)
        log.info("leader election on %s as %s", settings.describe(), settings.identity)

    def ready() -> bool:
        # A standby replica is ready too: it is healthy and waiting for the Lease.
        return reconciler.ready or (elector is not None and not elector.is_leader)

    probes = ProbeServer(probe_host, probe_port, metrics.registry, ready).start() if probe_host else None
    if probes is not None:
        log.info("metrics and probes on http://%s:%d (/metrics, /healthz, /readyz)", probe_host, probes.port)
    log.info(
        "routing upstreams of %s into Proxy %s/%s, backend: %s",
        "all namespaces" if config.all_namespaces else ", ".join(config.namespaces),
        config.proxy.namespace,
        config.proxy.name,
        choice.describe(),
    )
    task = asyncio.create_task(elector.run(reconciler.run) if elector is not None else reconciler.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        if probes is not None:
            probes.stop()
        await backend.close()
        log.info("stopped")


@dataclass(frozen=True)
class ProxyReport:
    namespace: str
    name: str
    virtual_hosts: int
    spec_bytes: int
    compressed: bool
    state: str
    reason: str


def report(proxy: Proxy, config: ControllerConfig) -> ProxyReport:
    status = proxy.status_from(config.gloo_namespace)
    state = status.parsed_state if status else None
    return ProxyReport(
        namespace=proxy.metadata.namespace,
        name=proxy.metadata.name,
        virtual_hosts=proxy.spec.virtual_host_count(),
        spec_bytes=len(proxy.spec.to_json_bytes()),
        compressed=(proxy.metadata.annotations or {}).get("gloo.solo.io/compress") == "true",
        state=state.name.title() if state is not None else "(no verdict yet)",
        reason=(status.reason or "") if status else "",
    )


async def managed_proxies(config: ControllerConfig, choice: BackendChoice, timeout: float) -> list[ProxyReport]:
    """One list of this controller's Proxies, through the same watch the controller uses."""
    backend = open_backend(choice)
    cache = ResourceCache(Proxy)
    task = asyncio.create_task(backend.proxies.watch(cache, [config.proxy.namespace], managed_labels(config)))
    try:
        await asyncio.wait_for(cache.synced.wait(), timeout)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await backend.close()
    return [report(proxy, config) for proxy in sorted(cache.items(), key=lambda p: p.key)]
