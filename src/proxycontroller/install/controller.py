"""The controller's own objects: the ConfigMap holding its configuration file, its Deployment and the
PodDisruptionBudget that keeps one replica through a node drain.

The ConfigMap holds the configuration file as the user wrote it (comments and all), so what runs in the cluster
is what is kept in version control; a hash of it on the pod template rolls the pods when it changes.
"""

from __future__ import annotations

from typing import Any

from proxycontroller.install.layout import CONFIG_HASH_ANNOTATION, Layout, digest
from proxycontroller.model.deployment import Resources

CONFIG_KEY = "config.yaml"
CONFIG_DIR = "/etc/proxycontroller"
PROBE_PORT_NAME = "probes"
# A user id no image ships as root's; the pod refuses to start as root in any case (runAsNonRoot).
RUN_AS_USER = 65532


def resources(settings: Resources) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if settings.requests:
        found["requests"] = dict(settings.requests)
    if settings.limits:
        found["limits"] = dict(settings.limits)
    return found


def restricted_security_context(run_as_user: int, add: tuple[str, ...] = ()) -> dict[str, Any]:
    """A container as the Pod Security Standard `restricted` wants it."""
    capabilities: dict[str, Any] = {"drop": ["ALL"]}
    if add:
        capabilities["add"] = list(add)
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def config_map(layout: Layout, config_text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": layout.name, "namespace": layout.namespace, "labels": layout.labels("controller")},
        "data": {CONFIG_KEY: config_text},
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PROBE_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def deployment(layout: Layout, config_text: str) -> dict[str, Any]:
    settings = layout.settings
    container = {
        "name": "controller",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["proxycontroller"],
        "args": [
            "run",
            f"--config={CONFIG_DIR}/{CONFIG_KEY}",
            "--leader-elect",
            # Every address of the pod (`:port`): the kubelet probes and Prometheus scrapes from outside it;
            # /metrics is served there too.
            f"--health-probe-bind-address=:{settings.probe_port}",
            # One object per line, for the cluster's log collector.
            "--log-format=json",
        ],
        "ports": [{"name": PROBE_PORT_NAME, "containerPort": settings.probe_port, "protocol": "TCP"}],
        # /healthz fails only when the process is wedged; a standby replica is ready too (it waits for the Lease).
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 3),
        "resources": resources(settings.resources),
        "securityContext": restricted_security_context(RUN_AS_USER),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": layout.name, "namespace": layout.namespace, "labels": layout.labels("controller")},
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": layout.selector},
            "template": {
                "metadata": {
                    "labels": layout.labels("controller"),
                    "annotations": {CONFIG_HASH_ANNOTATION: digest(config_text)},
                },
                "spec": {
                    "serviceAccountName": layout.name,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": layout.name}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def disruption_budget(layout: Layout) -> dict[str, Any]:
    """At most one replica away at a time in voluntary disruptions (a node drain): with two, a standby takes the
    Lease at once; with one, a drain is not blocked forever."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": layout.name, "namespace": layout.namespace, "labels": layout.labels("controller")},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": layout.selector}},
    }
