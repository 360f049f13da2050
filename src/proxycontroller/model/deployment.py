"""The `deployment` section of the configuration: how `proxycontroller manifests` installs the controller and
each managed Proxy's Envoy on a cluster. The controller itself ignores it.

It lives beside the routing settings (one file says both what is routed and how it is deployed, and the
ConfigMap the controller reads is that same file) but in its own model: nothing here changes a Proxy.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt
from pydantic.alias_generators import to_camel

DEFAULT_GLOO_VERSION = "1.22.1"
GLOO_ENVOY_IMAGE = "quay.io/solo-io/gloo-envoy-wrapper"
GLOO_XDS_PORT = 9977

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HOST = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+")  # no [brackets]: Envoy takes a bare IPv6
# An image reference as the container runtime reads it: [registry[:port]/]path[:tag][@digest]; no whitespace.
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# apimachinery's resource.Quantity: a signed decimal and a binary, decimal or exponent suffix.
_QUANTITY = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?")


def _checked(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            shown = repr(value) if len(value) <= 60 else repr(value[:60]) + "..."
            raise ValueError(f"{shown} is not {what}")
        return value

    return AfterValidator(check)


NamespaceName = Annotated[
    str, Field(max_length=63), _checked(_DNS_LABEL, "a Kubernetes namespace name (a DNS-1123 label)")
]
Image = Annotated[
    str, Field(max_length=512), _checked(_IMAGE, "an image reference ([registry/]repository[:tag][@sha256:...])")
]
Quantity = Annotated[str, _checked(_QUANTITY, "a Kubernetes quantity (e.g. 100m, 128Mi, 1)")]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]


class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Resources(_Settings):
    """A container's resource requests and limits (`cpu`, `memory`, ...), as Kubernetes writes them."""

    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class EnvoySettings(_Settings):
    """The second Envoy of each managed Proxy: Gloo's Envoy image, bound to the Proxy by its node role."""

    # Gloo's Envoy build: a stock Envoy rejects the io.solo.transformation filter Gloo puts on HTTP listeners.
    image: Image = GLOO_ENVOY_IMAGE
    # The image tag: the Gloo release the Envoy pairs with.
    gloo_version: Annotated[str, _checked(_TAG, "an image tag (e.g. 1.22.1)")] = DEFAULT_GLOO_VERSION
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # Default: each Envoy beside its Proxy.
    namespace: NamespaceName | None = None
    replicas: StrictInt = Field(default=1, ge=0)
    service_type: Literal["LoadBalancer", "NodePort", "ClusterIP"] = "LoadBalancer"
    # Gloo's xDS Service; default: gloo.<glooNamespace>.svc.cluster.local.
    xds_address: Annotated[str, Field(max_length=253), _checked(_HOST, "a host name or IP address")] | None = None
    xds_port: Port = GLOO_XDS_PORT
    # Envoy's admin interface, on loopback inside the pod (the probes use it).
    admin_port: Port = 19000
    resources: Resources = Resources(requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "1Gi"})


class DeploymentSettings(_Settings):
    """The controller's own Deployment."""

    # Where the controller runs (its ServiceAccount, Deployment, ConfigMap); default: the namespace of its Lease
    # (the first Proxy namespace in sorted order), so everything it owns stays together.
    namespace: NamespaceName | None = None
    image: Image = "proxycontroller:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    replicas: StrictInt = Field(default=2, ge=1)
    # /metrics, /healthz and /readyz inside the pod.
    probe_port: Port = 9091
    resources: Resources = Resources(requests={"cpu": "100m", "memory": "128Mi"}, limits={"cpu": "1", "memory": "1Gi"})
    envoy: EnvoySettings = EnvoySettings()
