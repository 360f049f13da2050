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
        # The engine's queue holds one key, "the state is dirty": depth is 1 from a change until a pass takes
        # it up; adds counts the changes signalled (a burst of them is one pass).
        self.workqueue_depth = Gauge(
            "workqueue_depth", "Current depth of the work queue.", ["name"], registry=self.registry
        )
        self.workqueue_adds_total = Counter(
            "workqueue_adds_total", "Changes signalled to the work queue.", ["name"], registry=self.registry
        )
        self.workqueue_retries_total = Counter(
            "workqueue_retries_total", "Passes retried after a failure.", ["name"], registry=self.registry
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Reconciliations running now.",
            ["controller"],
            registry=self.registry,
        )
        self.max_concurrent_reconciles = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Reconciliations that may run at once.",
            ["controller"],
            registry=self.registry,
        )
        self.max_concurrent_reconciles.labels(CONTROLLER).set(1)
        self.leader = Gauge(
            "leader_election_master_status",
            "1 while this replica holds the Lease (always 1 without leader election).",
            ["name"],
            registry=self.registry,
        )
        self.events_total = Counter(
            "proxycontroller_events_total",
            "Kubernetes Events by outcome: created, updated (a series), dropped (rate limit), failed.",
            ["outcome"],
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
