"""`proxycontroller run`: the controller until it is stopped; `status`: what the managed Proxies look like."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from proxycontroller.config import SERVICES, UPSTREAMS, ControllerConfig
from proxycontroller.manager.backends import BackendChoice, open_backend
from proxycontroller.manager.controller import build_engine, build_logic, route_namespaces
from proxycontroller.manager.leader import LeaderElectionSettings, LeaderElector
from proxycontroller.manager.preflight import StartupError, check_cluster, check_config_dir
from proxycontroller.manager.probes import ProbeServer
from proxycontroller.model.canonical import CanonicalError
from proxycontroller.model.encoding import COMPRESS_ANNOTATION
from proxycontroller.model.gateway import HTTPROUTE, REFERENCEGRANT, StoredHTTPRoute
from proxycontroller.model.resources import PROXY, SERVICE, UPSTREAM, Resource, ResourceKind, StoredProxy
from proxycontroller.reconcile.metrics import Metrics
from proxycontroller.reconcile.route_verdicts import parent_verdict, route_parents
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.events import EventRecorder
from proxycontroller.store.kube import make_async_client
from proxycontroller.store.kube_events import KubeEventSink
from proxycontroller.translate.translator import managed_labels
from proxycontroller.validate.desired import ProxyLogic
from proxycontroller.validate.gateway_desired import GatewayLogic

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)


# How long the checks before the start wait for the API server: a cluster that does not answer at start
# fails the command at once (as controller-runtime's manager does), so a wrong address is seen at once; once
# running, the watches ride out outages with backoff.
STARTUP_TIMEOUT_SECONDS = 10.0
# How long a stop (SIGTERM, SIGINT) may take: the write in flight, the Lease released, the connections closed.
# Kubernetes waits 30 s (terminationGracePeriodSeconds) before it kills a pod.
GRACE_PERIOD_SECONDS = 10.0


class GracePeriodExceeded(Exception):
    """Stopping took longer than the grace period; the process exits anyway (not 0: it did not stop cleanly)."""


async def check_backend(config: ControllerConfig, choice: BackendChoice, timeout: float, *, upstreams: bool) -> None:
    """Raises StartupError (one line) if the backend cannot be used: a directory that is not Gloo's config tree;
    no usable kubeconfig, or a cluster that does not answer, refuses the credentials, forbids reading the managed
    Proxies (and the Upstreams, if `upstreams`: `run` reads them) or does not know Gloo's kinds."""
    if choice.config_dir is not None:
        if upstreams:
            refuse_services_in_directory_mode(config, choice)
        if config.output == "gateway-api":
            raise StartupError(
                "output: gateway-api writes HTTPRoutes to a cluster; --config-dir is Gloo's directory mode"
            )
        check_config_dir(choice.config_dir)
        return
    reads: list[tuple[ResourceKind, tuple[str, ...] | None]] = [(PROXY, config.proxy_namespaces)]
    if config.output == "gateway-api":
        reads = [(HTTPROUTE, route_namespaces(config))]
        if upstreams:
            reads.append((REFERENCEGRANT, config.gateway_api.grant_namespaces))
    if upstreams:
        inputs = {UPSTREAMS: UPSTREAM, SERVICES: SERVICE}
        reads[:0] = [(inputs[source], config.watched_namespaces()) for source in config.sources]
    await check_cluster(choice, reads, timeout)


def refuse_services_in_directory_mode(config: ControllerConfig, choice: BackendChoice) -> None:
    """Gloo's directory mode has no Services, and its Gloo cannot resolve a `kube` destination: StartupError."""
    if choice.config_dir is not None and SERVICES in config.sources:
        raise StartupError(
            f"config sources: {SERVICES!r} needs a cluster (--kubeconfig): Gloo's directory mode (--config-dir"
            f" {choice.config_dir}) has no Services and cannot route to a Service; use sources: [{UPSTREAMS}]"
        )


async def run_controller(
    config: ControllerConfig,
    choice: BackendChoice,
    servers: ProbeServer | Sequence[ProbeServer] | None,
    leader_election: bool = True,
    logic: ProxyLogic | GatewayLogic | None = None,
    grace_period: float = GRACE_PERIOD_SECONDS,
) -> None:
    """Runs until SIGINT or SIGTERM, then stops within `grace_period` seconds: the write in flight finishes,
    the Lease is released (else GracePeriodExceeded). On a cluster, with leader election, several replicas can
    run and only the holder of the Lease `<first proxy namespace>/proxycontroller-<instance>` reconciles; a
    leader that cannot renew raises LeadershipLost (the process should exit and restart with fresh caches, as
    controller-runtime's do). On a cluster, notable outcomes are recorded as Events on the Proxy.
    `logic`: already built from `config` (the CLI builds it first, so a bad strategy fails at start).
    `servers`: for /metrics and the probes, bound already (the CLI binds them first, so a taken port fails at
    start), started here; the caller closes them."""
    refuse_services_in_directory_mode(config, choice)
    logic = logic or build_logic(config)
    backend = open_backend(choice, config.reconcile.field_manager)
    metrics = Metrics()
    recorder: EventRecorder | None = None
    if choice.config_dir is None:
        events_client = make_async_client(
            choice.kubeconfig, choice.context, field_manager=config.reconcile.field_manager
        )
        backend.closers.append(events_client.close)
        events = metrics.events_total
        recorder = EventRecorder(KubeEventSink(events_client), count=lambda outcome: events.labels(outcome).inc())
    engine = build_engine(config, logic, backend, metrics, recorder)
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
        metrics.leader.labels(settings.lease_name).set_function(lambda: elector is not None and elector.is_leader)
    else:
        metrics.leader.labels(f"proxycontroller-{config.instance}").set(1)

    def ready() -> bool:
        # A standby replica is ready too: it is healthy and waiting for the Lease.
        return engine.ready or (elector is not None and not elector.is_leader)

    def detail() -> dict[str, object]:
        return {
            "leader": elector.is_leader if elector is not None else True,
            "synced": engine.ready,
            **dataclasses.asdict(engine.health),
        }

    if isinstance(servers, ProbeServer):
        servers = [servers]
    for server in servers or ():
        server.start(metrics.registry, ready, detail)
        log.info("serving %s on %s", server.serves, server.url, extra={"url": server.url, "port": server.port})
    into = ", ".join(f"Proxy {p.namespace}/{name}" for p in config.proxies for name in p.shard_names)
    if config.output == "gateway-api":
        into = f"HTTPRoutes in {', '.join(route_namespaces(config))} (the virtual hosts of {into})"
    log.info(
        "routing %s of %s into %s, backend: %s",
        " and ".join(config.sources),
        "all namespaces" if config.all_namespaces else ", ".join(config.watched_namespaces() or ()),
        into,
        choice.describe(),
    )

    async def lead() -> None:
        writer = asyncio.create_task(recorder.run()) if recorder is not None else None
        try:
            await engine.run()
        finally:
            if writer is not None:
                writer.cancel()
                await asyncio.wait({writer})

    task = asyncio.create_task(elector.run(lead) if elector is not None else lead())
    try:
        await _until_stopped(task, grace_period, elector.abandon if elector is not None else None)
    finally:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_period):
                await backend.close()
        log.info("stopped")


async def _until_stopped(
    task: asyncio.Task[None], grace_period: float, abandon: Callable[[], None] | None = None
) -> None:
    """Waits for `task`, which runs until a signal cancels it, then gives it `grace_period` seconds to finish
    (the write in flight, the Lease). Raises what it raised (LeadershipLost), or GracePeriodExceeded once the
    task, told to `abandon` what it still does (releasing the Lease) and cancelled again, has ended."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()

    def stop(signum: signal.Signals) -> None:
        if not signalled.is_set():
            log.info("%s: stopping (at most %gs)", signum.name, grace_period)
        signalled.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    waiter = asyncio.create_task(signalled.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=grace_period)
            if not done:
                if abandon is not None:
                    abandon()
                task.cancel()  # a second cancellation: the write in flight is waited for no longer
                await asyncio.wait({task}, timeout=1.0)
                raise GracePeriodExceeded(f"did not stop within the grace period of {grace_period:g}s")
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
    finally:
        waiter.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@dataclass(frozen=True)
class ProxyReport:
    namespace: str
    name: str
    virtual_hosts: int | None  # None: the spec cannot be read (then `reason` says why)
    spec_bytes: int | None  # of the spec's JSON, decompressed if it is stored compressed
    compressed: bool
    state: str
    reason: str
    stored_bytes: int = 0  # of what is stored: `compressedSpec`'s text when compressed, else the JSON

    @property
    def compression(self) -> str:
        return f"yes ({self.stored_bytes} bytes stored)" if self.compressed else "no"


def report(proxy: StoredProxy, config: ControllerConfig) -> ProxyReport:
    """What `status` says of a Proxy: a compressed one (Gloo's `gloo.solo.io/compress: "true"`, the spec in
    `compressedSpec`) is decompressed to count its virtual hosts, and said to be compressed."""
    status = proxy.status_from(config.gloo_namespace)
    state = status.parsed_state if status else None
    compressed = (proxy.metadata.annotations or {}).get(COMPRESS_ANNOTATION) == "true"
    reason = (status.reason or "") if status else ""
    try:
        spec: bytes | None = proxy.spec.json
        hosts: int | None = count_virtual_hosts(proxy.spec.json)
    except (CanonicalError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        spec, hosts = None, None  # a compressedSpec someone damaged: said, not a traceback
        reason = f"spec unreadable: {exc}" + (f"; {reason}" if reason else "")
    return ProxyReport(
        namespace=proxy.metadata.namespace,
        name=proxy.metadata.name,
        virtual_hosts=hosts,
        spec_bytes=None if spec is None else len(spec),
        compressed=compressed,
        state=state.name.title() if state is not None else "(no verdict yet)",
        reason=reason,
        stored_bytes=len(proxy.spec.compressed) if compressed or spec is None else len(spec),
    )


async def managed_proxies(config: ControllerConfig, choice: BackendChoice, timeout: float) -> list[ProxyReport]:
    """One list of this controller's Proxies, through the same watch the controller uses."""
    proxies = await _managed(StoredProxy, config.proxy_namespaces, config, choice, timeout)
    return [report(proxy, config) for proxy in proxies]


@dataclass(frozen=True)
class RouteReport:
    """What `status` says of an HTTPRoute: its size, and per parent Gateway the implementation's verdict."""

    namespace: str
    name: str
    hostnames: int
    rules: int
    parents: tuple[tuple[str, bool], ...]  # per parent: "Gateway ns/name section s: Accepted=True, ..." and all True

    @property
    def verdict(self) -> str:
        if not self.parents:
            return "(no verdict yet)"
        return "; ".join(text for text, _ in self.parents)


async def managed_routes(config: ControllerConfig, choice: BackendChoice, timeout: float) -> list[RouteReport]:
    """This controller's HTTPRoutes (output: gateway-api), with the verdict of the implementation on each."""
    routes = await _managed(StoredHTTPRoute, route_namespaces(config), config, choice, timeout)
    reports = []
    for route in routes:
        spec = route.spec.to_json_dict()
        reports.append(
            RouteReport(
                namespace=route.metadata.namespace,
                name=route.metadata.name,
                hostnames=len(spec.get("hostnames") or []),
                rules=len(spec.get("rules") or []),
                parents=tuple(parent_verdict(parent) for parent in route_parents(route)),
            )
        )
    return reports


async def _managed(
    kind: type[R], namespaces: tuple[str, ...], config: ControllerConfig, choice: BackendChoice, timeout: float
) -> list[R]:
    backend = open_backend(choice, config.reconcile.field_manager)
    cache = ResourceCache(kind)
    watch = backend.client(kind).watch(cache, namespaces, managed_labels(config.instance))
    task = asyncio.create_task(watch)
    try:
        await asyncio.wait_for(cache.synced.wait(), timeout)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await backend.close()
    return sorted(cache.items(), key=lambda item: item.key)


class _Listeners(msgspec.Struct):
    httpListener: dict[str, list[msgspec.Raw]] | None = None


class _Spec(msgspec.Struct):
    listeners: list[_Listeners] = []


def count_virtual_hosts(spec_json: bytes) -> int:
    """Virtual hosts in a Proxy spec, without building them (msgspec.Raw skips their contents)."""
    spec = msgspec.json.decode(spec_json, type=_Spec)
    return sum(len((listener.httpListener or {}).get("virtualHosts", [])) for listener in spec.listeners)
