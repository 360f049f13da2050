"""Kubernetes' core/v1 Service: the fields a proxy controller reads to route a Service without an Upstream.

Every other field (clusterIP, sessionAffinity, ipFamilies...) stays in the model's extra fields; the
controller never writes a Service, so nothing here is ever sent back.
"""

from __future__ import annotations

from pydantic import Field

from proxycontroller.model.base import GlooModel


class ServicePort(GlooModel):
    name: str | None = None
    port: int
    # Kubernetes' default when unset; the API server always writes it.
    protocol: str = "TCP"
    target_port: int | str | None = None
    app_protocol: str | None = None


class ServiceSpec(GlooModel):
    type: str | None = None
    selector: dict[str, str] | None = None
    ports: tuple[ServicePort, ...] = Field(default=())


class ServicePortRef(GlooModel):
    """One port of one Service: what a route to it names. Gloo's `kube` destination takes the Service's
    namespace/name and `port` (the Service's port number); the Gateway API's backendRef the same."""

    name: str
    namespace: str
    port: int
    port_name: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name or self.port}"
