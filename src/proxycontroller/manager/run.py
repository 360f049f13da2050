"""`proxycontroller run`: the controller until it is stopped; `status`: what the managed Proxies look like."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from dataclasses import dataclass

import msgspec

from proxycontroller.config import ControllerConfig
from proxycontroller.manager.backends import BackendChoice, open_backend
from proxycontroller.manager.controller import build_engine, build_logic
from proxycontroller.manager.leader import LeaderElectionSettings, LeaderElector
from proxycontroller.manager.preflight import check_cluster, check_config_dir
from proxycontroller.manager.probes import ProbeServer
from proxycontroller.model.resources import PROXY, UPSTREAM, ResourceKind, StoredProxy
from proxycontroller.reconcile.metrics import Metrics
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.kube import make_async_client
from proxycontroller.translate.translator import managed_labels
from proxycontroller.validate.desired import ProxyLogic

log = logging.getLogger(__name__)


# How long the checks before the start wait for the API server: a cluster that does not answer at start
# fails the command at once (as controller-runtime's manager does), so a wrong address is seen at once; once
# running, the watches ride out outages with backoff.
STARTUP_TIMEOUT_SECONDS = 10.0


async def check_backend(config: ControllerConfig, choice: BackendChoice, timeout: float, *, upstreams: bool) -> None:
    """Raises StartupError (one line) if the backend cannot be used: a directory that is not Gloo's config tree;
    no usable kubeconfig, or a cluster that does not answer, refuses the credentials, forbids reading the managed
    Proxies (and the Upstreams, if `upstreams`: `run` reads them) or does not know Gloo's kinds."""
    if choice.config_dir is not None:
        check_config_dir(choice.config_dir)
        return
    reads: list[tuple[ResourceKind, tuple[str, ...] | None]] = [(PROXY, config.proxy_namespaces)]
    if upstreams:
        reads.insert(0, (UPSTREAM, config.watched_namespaces()))
    await check_cluster(choice, reads, timeout)


async def run_controller(
    config: ControllerConfig,
    choice: BackendChoice,
    probes: ProbeServer | None,
    leader_election: bool = True,
    logic: ProxyLogic | None = None,
) -> None:
    """Runs until SIGINT or SIGTERM. On a cluster, with leader election, several replicas can run and only the
    holder of the Lease `<first proxy namespace>/proxycontroller-<instance>` reconciles; a leader that cannot
    renew raises LeadershipLost (the process should exit and restart with fresh caches, as controller-runtime's
    do). `logic`: already built from `config` (the CLI builds it first, so a bad strategy fails at start).
    `probes`: bound already (the CLI binds it first, so a taken port fails at start), started here; the caller
    closes it."""
    logic = logic or build_logic(config)
    backend = open_backend(choice, config.reconcile.field_manager)
    metrics = Metrics()
    engine = build_engine(config, logic, backend, metrics)
    elector: LeaderElector | None = None
    if leader_election and choice.config_dir is None:
        elector_client = make_async_client(
            choice.kubeconfig, choice.context, field_manager=config.reconcile.field_manager
        )
        backend.closers.append(elector_client.close)
        settings = LeaderElectionSettings(
            lease_name=f"proxycontroller-{config.instance}", namespace=config.proxy_namespaces[0]
        )
        elector = LeaderElector(elector_client, settings)
        log.info("leader election on %s as %s", settings.describe(), settings.identity)

    def ready() -> bool:
        # A standby replica is ready too: it is healthy and waiting for the Lease.
        return engine.ready or (elector is not None and not elector.is_leader)

    def detail() -> dict[str, object]:
        return {
            "leader": elector.is_leader if elector is not None else True,
            "synced": engine.ready,
            **dataclasses.asdict(engine.health),
        }

    if probes is not None:
        probes.start(metrics.registry, ready, detail)
        log.info("metrics and probes on %s (/metrics, /healthz, /readyz, /statusz)", probes.url)
    log.info(
        "routing upstreams of %s into %s, backend: %s",
        "all namespaces" if config.all_namespaces else ", ".join(config.watched_namespaces() or ()),
        ", ".join(f"Proxy {p.namespace}/{p.name}" for p in config.proxies),
        choice.describe(),
    )
    task = asyncio.create_task(elector.run(engine.run) if elector is not None else engine.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
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


def report(proxy: StoredProxy, config: ControllerConfig) -> ProxyReport:
    status = proxy.status_from(config.gloo_namespace)
    state = status.parsed_state if status else None
    return ProxyReport(
        namespace=proxy.metadata.namespace,
        name=proxy.metadata.name,
        virtual_hosts=count_virtual_hosts(proxy.spec.json),
        spec_bytes=len(proxy.spec.json),
        compressed=(proxy.metadata.annotations or {}).get("gloo.solo.io/compress") == "true",
        state=state.name.title() if state is not None else "(no verdict yet)",
        reason=(status.reason or "") if status else "",
    )


async def managed_proxies(config: ControllerConfig, choice: BackendChoice, timeout: float) -> list[ProxyReport]:
    """One list of this controller's Proxies, through the same watch the controller uses."""
    backend = open_backend(choice, config.reconcile.field_manager)
    cache = ResourceCache(StoredProxy)
    watch = backend.client(StoredProxy).watch(cache, config.proxy_namespaces, managed_labels(config.instance))
    task = asyncio.create_task(watch)
    try:
        await asyncio.wait_for(cache.synced.wait(), timeout)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await backend.close()
    return [report(proxy, config) for proxy in sorted(cache.items(), key=lambda p: p.key)]


class _Listeners(msgspec.Struct):
    httpListener: dict[str, list[msgspec.Raw]] | None = None


class _Spec(msgspec.Struct):
    listeners: list[_Listeners] = []


def count_virtual_hosts(spec_json: bytes) -> int:
    """Virtual hosts in a Proxy spec, without building them (msgspec.Raw skips their contents)."""
    spec = msgspec.json.decode(spec_json, type=_Spec)
    return sum(len((listener.httpListener or {}).get("virtualHosts", [])) for listener in spec.listeners)
