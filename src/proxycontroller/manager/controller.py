"""Assembles the Upstream -> Proxy controller: the logic from the configuration, the engine over the stores."""

from __future__ import annotations

from proxycontroller.config import ControllerConfig
from proxycontroller.manager.backends import Backend
from proxycontroller.model.resources import StoredProxy
from proxycontroller.reconcile.engine import Engine, Source, Target
from proxycontroller.reconcile.metrics import CONTROLLER, Metrics
from proxycontroller.reconcile.verdicts import VerdictReporter
from proxycontroller.store.events import Recorder
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.translator import managed_labels
from proxycontroller.validate.desired import ProxyLogic


def build_logic(config: ControllerConfig, registry: StrategyRegistry | None = None) -> ProxyLogic:
    """Resolves every strategy and validates its options: raises StrategyError naming the key."""
    return ProxyLogic(config, registry)


def build_engine(
    config: ControllerConfig,
    logic: ProxyLogic,
    backend: Backend,
    metrics: Metrics | None = None,
    recorder: Recorder | None = None,
) -> Engine:
    return Engine(
        CONTROLLER,
        logic,
        sources=[Source(kind, backend.client(kind), config.watched_namespaces()) for kind in logic.input_kinds],
        targets=[
            Target(
                StoredProxy,
                backend.client(StoredProxy),
                config.proxy_namespaces,
                compress_above=config.reconcile.compress_threshold_bytes if backend.compresses else None,
            )
        ],
        ownership=managed_labels(config.instance),
        settings=config.reconcile,
        metrics=metrics,
        verdicts=VerdictReporter(config.gloo_namespace, recorder),
        recorder=recorder,
    )
