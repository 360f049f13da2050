"""The controller's metrics, named as controller-runtime names them so existing dashboards work."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

CONTROLLER = "proxy"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Reconciliations by result.",
            ["controller", "result"],
            registry=self.registry,
        )
        self.reconcile_errors_total = Counter(
            "controller_runtime_reconcile_errors_total",
            "Reconciliations that failed.",
            ["controller"],
            registry=self.registry,
        )
        self.reconcile_time_seconds = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Time per reconciliation.",
            ["controller"],
            registry=self.registry,
        )
        self.writes_total = Counter(
            "proxycontroller_writes_total", "Writes to the store by operation.", ["operation"], registry=self.registry
        )
        self.conflicts_total = Counter(
            "proxycontroller_write_conflicts_total",
            "Writes retried after a resourceVersion conflict.",
            registry=self.registry,
        )
        self.upstreams = Gauge(
            "proxycontroller_upstreams", "Upstreams in the watched namespaces.", registry=self.registry
        )
        self.virtual_hosts = Gauge(
            "proxycontroller_virtual_hosts", "Virtual hosts in the desired Proxies.", registry=self.registry
        )
        self.warnings = Gauge(
            "proxycontroller_translation_warnings", "Inputs left out of the last translation.", registry=self.registry
        )
