"""Services as route targets: each TCP port of a Service becomes a `ServiceTarget`, which strategies see as
they see an Upstream, and the routes made from it go to Gloo's `kube` destination (the Service and its port)
instead of an Upstream, so Gloo routes it with no Upstream and no discovery.

- A target is named as Gloo's discovery names the Upstream of that port (`<namespace>-<service>-<port>`,
  shortened past 63 characters as Gloo does), in the Service's namespace, with the Service's labels and
  annotations: the seed's `default-petstore-8080` domain, and the `proxycontroller.io/*` annotations and
  the label selectors work on Services as on Upstreams.
- Only TCP ports are routed (Envoy's HTTP routes need TCP): a UDP or SCTP port is left out with a warning, and
  so is an ExternalName Service (it has no endpoints for Gloo to send requests to).
- An Upstream and a Service port of the same service never both get a route: the Upstream wins (it may carry
  Gloo options a Service cannot: TLS, health checks, subsets). It is the same service when the Upstream's
  `kube` spec names that Service and port, or when the Upstream has the target's namespace and name. The
  Service port left out is said in a warning naming the Upstream. The rule is global (an Upstream the
  controller reads wins even where a Proxy's selection leaves it out), so whether a Service port is routed
  does not depend on which Proxy asks.

Pure functions; `translate.route_targets` merges the targets with the Upstreams from pass to pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from proxycontroller.model.desired import Note
from proxycontroller.model.proxy import Destination, Route
from proxycontroller.model.resources import ObjectKey, Service, ServiceTarget, Upstream
from proxycontroller.model.service import ServicePort, ServicePortRef
from proxycontroller.translate.plan import SourcedVirtualHost

ROUTED_PROTOCOL = "TCP"
_NAME_LIMIT = 63  # Kubernetes' and Gloo's longest name; Gloo shortens a longer one with a hash
_SHORT = 31


def discovery_name(namespace: str, service: str, port: int) -> str:
    """The name Gloo's discovery gives the Upstream of a Service port (kubernetes.UpstreamName, solo-io
    k8s-utils SanitizeNameV2): `<namespace>-<service>-<port>`; longer than 63 characters, its first 31, a dash
    and the first 31 hex digits of its MD5."""
    name = f"{namespace}-{service}-{port}"
    name = name.translate(_SANITIZED)
    if len(name) > _NAME_LIMIT:
        name = f"{name[:_SHORT]}-{hashlib.md5(name.encode(errors='surrogatepass')).hexdigest()[:_SHORT]}"
    return name.lower()


_SANITIZED = str.maketrans({**dict.fromkeys("*/.:_ ", "-"), **dict.fromkeys("[]\n\"'", None)})


def targets_of(service: Service) -> tuple[tuple[ServiceTarget, ...], tuple[Note, ...]]:
    """The route targets of a Service (one per TCP port, in the Service's order), and a warning for each port
    (or the whole Service) left out."""
    subject = {"service": str(service.key)}
    if service.spec.type == "ExternalName":
        why = f"Service {service.key} not routed: type ExternalName has no endpoints to route to"
        return (), (Note(why, "ServiceSkipped", None, subject),)
    targets: list[ServiceTarget] = []
    skipped: list[Note] = []
    for port in service.spec.ports:
        if port.protocol.upper() != ROUTED_PROTOCOL:
            why = f"Service port {_ref(service, port)} not routed: protocol {port.protocol}; only TCP is routed"
            skipped.append(Note(why, "ServicePortSkipped", None, subject))
            continue
        targets.append(_target(service, port))
    return tuple(targets), tuple(skipped)


def _ref(service: Service, port: ServicePort) -> ServicePortRef:
    return ServicePortRef(
        name=service.metadata.name, namespace=service.metadata.namespace, port=port.port, port_name=port.name or None
    )


def _target(service: Service, port: ServicePort) -> ServiceTarget:
    # One document validated in one call into pydantic-core, not five nested constructors: a cold pass makes
    # one target per Service port (half of its time at 10k Services, made the nested way).
    metadata = service.metadata
    meta: dict[str, Any] = {
        "name": discovery_name(metadata.namespace, metadata.name, port.port),
        "namespace": metadata.namespace,
    }
    for field, value in (
        ("labels", metadata.labels),
        ("annotations", metadata.annotations),
        ("resourceVersion", metadata.resource_version),
        ("uid", metadata.uid),
    ):
        if value is not None:
            meta[field] = value
    kube: dict[str, Any] = {
        "serviceName": metadata.name,
        "serviceNamespace": metadata.namespace,
        "servicePort": port.port,
    }
    if service.spec.selector is not None:
        kube["selector"] = service.spec.selector
    ref: dict[str, Any] = {"name": metadata.name, "namespace": metadata.namespace, "port": port.port}
    if port.name:
        ref["portName"] = port.name
    return ServiceTarget.model_validate({"metadata": meta, "spec": {"kube": kube}, "service": ref})


def kube_destinations(host: SourcedVirtualHost, targets: Mapping[ObjectKey, Upstream]) -> SourcedVirtualHost:
    """The virtual host with each destination that names a Service target as an Upstream sent to Gloo's `kube`
    destination instead (the Service and port); the very same object if it routes to no Service target."""
    # type() is: isinstance on a pydantic model goes through ABCMeta, a cost per virtual host of every pass.
    if not any(type(targets.get(key)) is ServiceTarget for key in host.sources):
        return host
    routes = tuple(_route(route, targets) for route in host.virtual_host.routes or ())
    return SourcedVirtualHost(host.virtual_host.model_copy(update={"routes": routes}), host.sources)


def _route(route: Route, targets: Mapping[ObjectKey, Upstream]) -> Route:
    action = route.route_action
    if action is None:
        return route
    update: dict[str, Any] = {}
    if action.single is not None:
        single = _destination(action.single, targets)
        if single is not action.single:
            update["single"] = single
    if action.multi is not None:
        weighted = []
        for item in action.multi.destinations:
            moved = _destination(item.destination, targets)
            weighted.append(item if moved is item.destination else item.model_copy(update={"destination": moved}))
        if any(new is not old for new, old in zip(weighted, action.multi.destinations, strict=True)):
            update["multi"] = action.multi.model_copy(update={"destinations": tuple(weighted)})
    if not update:
        return route
    return route.model_copy(update={"route_action": action.model_copy(update=update)})


def _destination(destination: Destination, targets: Mapping[ObjectKey, Upstream]) -> Destination:
    ref = destination.upstream
    if ref is None:
        return destination
    target = targets.get(ObjectKey(ref.namespace, ref.name))
    if type(target) is not ServiceTarget:
        return destination
    assert isinstance(target, ServiceTarget)  # for mypy; reached only for Service targets
    kube = {"ref": {"name": target.service.name, "namespace": target.service.namespace}, "port": target.service.port}
    return destination.model_copy(update={"upstream": None, "kube": kube})
