"""Assembles the controller: the logic from the configuration (Upstreams -> Proxies, or -> HTTPRoutes and
ReferenceGrants when `output: gateway-api`), the engine over the stores. One engine either way: only the logic,
the output kinds and whose verdict is read differ."""

from __future__ import annotations

from proxycontroller.config import ControllerConfig
from proxycontroller.manager.backends import Backend
from proxycontroller.model.gateway import StoredHTTPRoute, StoredReferenceGrant
from proxycontroller.model.resources import StoredProxy
from proxycontroller.reconcile.engine import Engine, Source, Target
from proxycontroller.reconcile.metrics import CONTROLLER, Metrics
from proxycontroller.reconcile.route_verdicts import RouteVerdictReporter
from proxycontroller.reconcile.verdicts import VerdictReporter, Verdicts
from proxycontroller.store.events import Recorder
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.translator import managed_labels
from proxycontroller.validate.desired import ProxyLogic
from proxycontroller.validate.gateway_desired import GatewayLogic


def build_logic(config: ControllerConfig, registry: StrategyRegistry | None = None) -> ProxyLogic | GatewayLogic:
    """Resolves every strategy and validates its options: raises StrategyError naming the key (ConfigError for
    an incomplete `gatewayApi` section)."""
    if config.output == "gateway-api":
        return GatewayLogic(config, registry)
    return ProxyLogic(config, registry)


def route_namespaces(config: ControllerConfig) -> tuple[str, ...]:
    """Where the HTTPRoutes of `output: gateway-api` are written."""
    if config.gateway_api.route_namespace is not None:
        return (config.gateway_api.route_namespace,)
    return config.proxy_namespaces


def build_engine(
    config: ControllerConfig,
    logic: ProxyLogic | GatewayLogic,
    backend: Backend,
    metrics: Metrics | None = None,
    recorder: Recorder | None = None,
) -> Engine:
    targets: list[Target]
    verdicts: Verdicts
    if config.output == "gateway-api":
        targets = [
            Target(StoredHTTPRoute, backend.client(StoredHTTPRoute), route_namespaces(config)),
            # A ReferenceGrant lives in its Service's namespace.
            Target(StoredReferenceGrant, backend.client(StoredReferenceGrant), config.gateway_api.grant_namespaces),
        ]
        verdicts = RouteVerdictReporter(recorder)
    else:
        targets = [
            Target(
                StoredProxy,
                backend.client(StoredProxy),
                config.proxy_namespaces,
                compress_above=config.reconcile.compress_threshold_bytes if backend.compresses else None,
            )
        ]
        verdicts = VerdictReporter(config.gloo_namespace, recorder)
    return Engine(
        CONTROLLER,
        logic,
        sources=[Source(kind, backend.client(kind), config.watched_namespaces()) for kind in logic.input_kinds],
        targets=targets,
        ownership=managed_labels(config.instance),
        settings=config.reconcile,
        metrics=metrics,
        verdicts=verdicts,
        recorder=recorder,
    )
