"""The Kubernetes Gateway API kinds the controller writes when its output is `gateway-api`: HTTPRoute
(`gateway.networking.k8s.io/v1`) and ReferenceGrant (`v1beta1`: served by every Gateway API release since
v0.6, where `v1` only by the newest), and the verdict an implementation writes back into a route's
`status.parents[]`.

Specs are kept as canonical bytes, as the engine keeps a Proxy's: it only compares and writes them.
"""

from __future__ import annotations

from typing import ClassVar

from proxycontroller.model.base import GlooModel
from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.resources import Resource, ResourceKind
from proxycontroller.model.status import NamespacedStatuses

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
HTTPROUTE = ResourceKind(GATEWAY_API_GROUP, "v1", "HTTPRoute", "httproutes")
REFERENCEGRANT = ResourceKind(GATEWAY_API_GROUP, "v1beta1", "ReferenceGrant", "referencegrants")


class Condition(GlooModel):
    """A `metav1.Condition`: the fields a verdict is told by."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    observed_generation: int | None = None


class ParentReference(GlooModel):
    name: str
    namespace: str | None = None
    section_name: str | None = None
    group: str | None = None
    kind: str | None = None
    port: int | None = None

    def describe(self) -> str:
        section = f" section {self.section_name}" if self.section_name else ""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind or 'Gateway'} {where}{self.name}{section}"


class RouteParentStatus(GlooModel):
    parent_ref: ParentReference
    controller_name: str | None = None
    conditions: tuple[Condition, ...] | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions or () if c.type == type_), None)


class RouteStatus(NamespacedStatuses):
    """`status.parents[]`: one verdict per parent Gateway (and implementation). A NamespacedStatuses (which it
    never fills) so that it can stand where every resource's status stands."""

    parents: tuple[RouteParentStatus, ...] | None = None


class StoredHTTPRoute(Resource):
    KIND: ClassVar[ResourceKind] = HTTPROUTE
    STATUS_MODEL: ClassVar[type[NamespacedStatuses]] = RouteStatus
    spec: CanonicalSpec
    status: RouteStatus | None = None


class StoredReferenceGrant(Resource):
    KIND: ClassVar[ResourceKind] = REFERENCEGRANT
    spec: CanonicalSpec
