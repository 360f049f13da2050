"""The resource kinds the controller reads and writes, each with its API group, plural and spec model.

Store, snapshot and reconcile are generic over `Resource`; a new kind (say, Gateway API's HTTPRoute) is a new
`ResourceKind` and a new subclass here, not a new controller.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Self

from proxycontroller.model.base import GlooModel
from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.meta import ObjectMeta, ResourceRef
from proxycontroller.model.proxy import ProxySpec
from proxycontroller.model.service import ServicePortRef, ServiceSpec
from proxycontroller.model.status import NamespacedStatuses, ResourceStatus, State
from proxycontroller.model.upstream import UpstreamSpec


@dataclass(frozen=True)
class ResourceKind:
    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        # The core group ("") is spelled by its version alone: a Service is `v1`, served under /api/v1.
        return f"{self.group}/{self.version}" if self.group else self.version


class ObjectKey(NamedTuple):
    """Identity of a resource within its kind; sorts by namespace, then name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class Resource(GlooModel):
    """A namespaced resource: metadata, a spec, and the statuses Gloo reported for it."""

    KIND: ClassVar[ResourceKind]

    KEEPS_COMPRESSED: ClassVar[bool] = False  # True: a compressed spec is kept as read, not decompressed
    STATUS_MODEL: ClassVar[type[NamespacedStatuses]] = NamespacedStatuses  # what its `status` is read as

    metadata: ObjectMeta
    spec: GlooModel | CanonicalSpec
    status: NamespacedStatuses | None = None

    @functools.cached_property
    def key(self) -> ObjectKey:
        # Cached: translation asks for it several times per upstream per pass. Resources are not mutated in
        # place, and model_copy (below) drops the cached value, since an update may rename the copy.
        return ObjectKey(self.metadata.namespace, self.metadata.name)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("key", None)
        return copied

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(name=self.metadata.name, namespace=self.metadata.namespace)

    def status_from(self, reporter_namespace: str) -> ResourceStatus | None:
        """The status the Gloo running in `reporter_namespace` wrote, if any."""
        statuses = self.status.statuses if self.status else None
        return statuses.get(reporter_namespace) if statuses else None

    def state_from(self, reporter_namespace: str) -> State | None:
        status = self.status_from(reporter_namespace)
        return status.parsed_state if status else None

    def describe(self) -> str:
        return f"{self.KIND.kind} {self.key}"


UPSTREAM = ResourceKind("gloo.solo.io", "v1", "Upstream", "upstreams")
PROXY = ResourceKind("gloo.solo.io", "v1", "Proxy", "proxies")
SERVICE = ResourceKind("", "v1", "Service", "services")


class Upstream(Resource):
    KIND: ClassVar[ResourceKind] = UPSTREAM
    spec: UpstreamSpec


class Service(Resource):
    """A Kubernetes Service. Its `status` (load balancer ingress) is read as extra fields and never used."""

    KIND: ClassVar[ResourceKind] = SERVICE
    spec: ServiceSpec


class ServiceTarget(Upstream):
    """One TCP port of a Service, as strategies see it: an Upstream named as Gloo's discovery would name the
    Upstream of that port (`<namespace>-<service>-<port>`), with the Service's labels and annotations and a
    `kube` spec naming the Service and port. It is never written: the routes made from it go to Gloo's `kube`
    destination (`translate.targets`), so Gloo needs no Upstream and no discovery for it."""

    service: ServicePortRef

    def describe(self) -> str:
        return f"Service port {self.service} ({self.metadata.name})"  # the name `exclude` and templates see


class Proxy(Resource):
    KIND: ClassVar[ResourceKind] = PROXY
    spec: ProxySpec


class StoredProxy(Resource):
    """A Proxy as the engine keeps it: metadata and status as models, the spec as canonical bytes.

    The engine only compares and writes the spec of what it owns; decoding a large one into models on every
    watch event (Gloo writes a status after each of our writes) was what made a foreign write cost ~450 ms at
    10k virtual hosts. `Proxy` is the same resource with its spec as models, for whoever needs to read it.
    """

    KIND: ClassVar[ResourceKind] = PROXY
    KEEPS_COMPRESSED: ClassVar[bool] = True
    spec: CanonicalSpec

    def decoded(self) -> Proxy:
        return Proxy.model_validate(
            {"metadata": self.metadata, "spec": self.spec.to_json_dict(), "status": self.status}
        )
