"""The `gatewayApi` section of the configuration: where the HTTPRoutes go when `output: gateway-api`.

```yaml
output: gateway-api
gatewayApi:
  routeNamespace: apps              # default: each Proxy's namespace
  parentRefs:                       # the Gateway (and listener section) the routes attach to
    - {name: http, namespace: kgateway-system, sectionName: http}
    - {name: http, namespace: kgateway-system, sectionName: https, listener: my-https-listener}
```

A parent without `listener` takes the virtual hosts of every listener of every Proxy; with it, only those of
the Proxy listeners of that name (an HTTPS redirect listener goes to the Gateway's HTTP section, the routes
of the HTTPS listener to its HTTPS section). Values are checked as the Gateway API CRDs check them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt
from pydantic.alias_generators import to_camel

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KIND = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
_GROUP = re.compile(r"|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _matching(pattern: re.Pattern[str], what: str, max_length: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > max_length or not pattern.fullmatch(value):
            shown = repr(value) if len(value) <= 60 else repr(value[:60]) + "..."
            raise ValueError(f"{shown} is not {what} (at most {max_length} characters)")
        return value

    return AfterValidator(check)


class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ParentRefSettings(_Settings):
    """A Gateway API `ParentReference` (group and kind default to a Gateway), and the Proxy listener whose
    virtual hosts attach there (None: every listener)."""

    name: Annotated[str, Field(min_length=1), _matching(_DNS_SUBDOMAIN, "an object name", 253)]
    namespace: Annotated[str, _matching(_DNS_LABEL, "a namespace name", 63)] | None = None
    section_name: Annotated[str, _matching(_DNS_SUBDOMAIN, "a Gateway listener name", 253)] | None = None
    port: StrictInt | None = Field(default=None, ge=1, le=65535)
    group: Annotated[str, _matching(_GROUP, "an API group", 253)] = "gateway.networking.k8s.io"
    kind: Annotated[str, _matching(_KIND, "a kind", 63)] = "Gateway"
    listener: str | None = None

    def reference(self) -> dict[str, object]:
        """As written in an HTTPRoute, with the defaults the API server would fill in spelled out (so what is
        read back equals what was written)."""
        ref: dict[str, object] = {"group": self.group, "kind": self.kind, "name": self.name}
        for key, value in (("namespace", self.namespace), ("sectionName", self.section_name), ("port", self.port)):
            if value is not None:
                ref[key] = value
        return ref


NamespaceName = Annotated[str, _matching(_DNS_LABEL, "a namespace name", 63)]


class GatewayApiSettings(_Settings):
    # Where the HTTPRoutes are written; None: each Proxy's namespace.
    route_namespace: NamespaceName | None = None
    parent_refs: tuple[ParentRefSettings, ...] = Field(default=(), max_length=32)
    # Where the controller may keep ReferenceGrants (the namespaces of Services routed from another namespace);
    # None: any namespace (it then watches its own grants cluster-wide: a label-selected list and watch).
    grant_namespaces: tuple[NamespaceName, ...] | None = None
