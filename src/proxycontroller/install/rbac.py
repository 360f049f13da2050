"""The controller's ServiceAccount and least-privilege RBAC, derived from the configuration.

What the controller does, and nothing more (each verb found in the code that uses it):
- Upstreams: get, list, watch (store/kube.py: a list, then a watch; preflight lists one) in each routed
  namespace: a Role there, or a ClusterRole when every namespace is routed (`*`). Services the same way, when
  the configuration's `sources` lists them; Upstreams only when it lists those.
- Proxies: get, list, watch, create, update, delete (store/kube.py writes by create and replace, never patch)
  in each Proxy namespace only.
- Events: create, and patch (store/kube_events.py counts the repeats of one in its `series`), through either
  API group (core/v1 and events.k8s.io/v1 store the same objects), where the object they are about lives: the
  Proxy namespaces.
- Leases: get, create, update (manager/leader.py) in the Lease's namespace, the first Proxy namespace.

One Role per namespace holds every rule that namespace needs, so an auditor reads a namespace's grants in one
place.
"""

from __future__ import annotations

from typing import Any

from proxycontroller.config import SERVICES, UPSTREAMS, ControllerConfig
from proxycontroller.install.layout import Layout
from proxycontroller.manager.controller import route_namespaces

GLOO_GROUP = "gloo.solo.io"
RBAC_API = "rbac.authorization.k8s.io/v1"

UPSTREAM_RULE = {"apiGroups": [GLOO_GROUP], "resources": ["upstreams"], "verbs": ["get", "list", "watch"]}
SERVICE_RULE = {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}
PROXY_RULE = {
    "apiGroups": [GLOO_GROUP],
    "resources": ["proxies"],
    "verbs": ["get", "list", "watch", "create", "update", "delete"],
}
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_RULE = {
    "apiGroups": [GATEWAY_API_GROUP],
    "resources": ["httproutes"],
    "verbs": ["get", "list", "watch", "create", "update", "delete"],
}
REFERENCEGRANT_RULE = {**HTTPROUTE_RULE, "resources": ["referencegrants"]}
EVENT_RULE = {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}
LEASE_RULE = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}


def _meta(layout: Layout, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": layout.name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = layout.labels("rbac")
    return meta


def _binding(layout: Layout, kind: str, namespace: str | None) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_API,
        "kind": f"{kind}Binding",
        "metadata": _meta(layout, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": layout.name},
        "subjects": [{"kind": "ServiceAccount", "name": layout.name, "namespace": layout.namespace}],
    }


def input_rules(config: ControllerConfig) -> list[dict[str, Any]]:
    """What reading the configuration's sources needs, in the order `sources` lists them."""
    by_source = {UPSTREAMS: UPSTREAM_RULE, SERVICES: SERVICE_RULE}
    return [by_source[source] for source in config.sources]


def namespace_rules(layout: Layout) -> dict[str, list[dict[str, Any]]]:
    """The rules each namespace needs, namespaces sorted, rules in a fixed order."""
    config = layout.config
    rules: dict[str, list[dict[str, Any]]] = {}
    for namespace in config.watched_namespaces() or ():
        rules.setdefault(namespace, []).extend(input_rules(config))
    if config.output == "gateway-api":
        # HTTPRoutes (and the Events about them) where they are written; ReferenceGrants where Services are.
        for namespace in route_namespaces(config):
            rules.setdefault(namespace, []).extend([HTTPROUTE_RULE, EVENT_RULE])
        for namespace in config.gateway_api.grant_namespaces or ():
            rules.setdefault(namespace, []).append(REFERENCEGRANT_RULE)
    else:
        for namespace in config.proxy_namespaces:
            rules.setdefault(namespace, []).extend([PROXY_RULE, EVENT_RULE])
    rules.setdefault(layout.lease_namespace, []).append(LEASE_RULE)
    return {namespace: rules[namespace] for namespace in sorted(rules)}


def service_account(layout: Layout) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(layout, layout.namespace)}


def rbac_objects(layout: Layout) -> list[dict[str, Any]]:
    """ClusterRole and its binding (only when every namespace is routed), then a Role and a RoleBinding per
    namespace."""
    objects: list[dict[str, Any]] = []
    config = layout.config
    cluster_rules = input_rules(config) if config.watched_namespaces() is None else []
    if config.output == "gateway-api" and config.gateway_api.grant_namespaces is None:
        cluster_rules.append(REFERENCEGRANT_RULE)  # a grant goes where its Service is: any namespace
    if cluster_rules:
        objects.append(
            {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": _meta(layout), "rules": cluster_rules}
        )
        objects.append(_binding(layout, "ClusterRole", None))
    for namespace, rules in namespace_rules(layout).items():
        objects.append({"apiVersion": RBAC_API, "kind": "Role", "metadata": _meta(layout, namespace), "rules": rules})
        objects.append(_binding(layout, "Role", namespace))
    return objects
