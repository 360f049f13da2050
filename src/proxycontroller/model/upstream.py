"""Gloo's `gloo.solo.io/v1` Upstream: the fields a proxy controller reads.

Only `kube` and `static` are modelled; every other upstream type (aws, consul, azure...) stays as opaque
data in the model's extra fields and is written back unchanged.
"""

from __future__ import annotations

from typing import Any

from proxycontroller.model.base import GlooModel


class KubeUpstreamSpec(GlooModel):
    service_name: str | None = None
    service_namespace: str | None = None
    service_port: int | None = None
    selector: dict[str, str] | None = None
    service_spec: dict[str, Any] | None = None
    subset_spec: dict[str, Any] | None = None


class StaticHost(GlooModel):
    addr: str
    port: int | None = None
    sni_addr: str | None = None


class StaticUpstreamSpec(GlooModel):
    hosts: tuple[StaticHost, ...] | None = None
    use_tls: bool | None = None
    service_spec: dict[str, Any] | None = None
    auto_sni_rewrite: bool | None = None


class UpstreamSpec(GlooModel):
    discovery_metadata: dict[str, Any] | None = None
    ssl_config: dict[str, Any] | None = None
    kube: KubeUpstreamSpec | None = None
    static: StaticUpstreamSpec | None = None
