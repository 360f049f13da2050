"""Object metadata and references, shared by every resource kind."""

from __future__ import annotations

from pydantic import Field

from proxycontroller.model.base import GlooModel


class ObjectMeta(GlooModel):
    """Kubernetes ObjectMeta / solo-kit Metadata: the fields a controller reads or writes."""

    name: str = ""
    namespace: str = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    resource_version: str | None = None
    generation: int | None = None
    uid: str | None = None


class ResourceRef(GlooModel):
    """solo-kit's `core.solo.io.ResourceRef`: a namespace/name pair."""

    name: str
    namespace: str = Field(default="")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
