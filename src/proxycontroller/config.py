"""The controller's configuration: one typed object, loaded and validated here, passed down.

Defaults reproduce Gloo's custom Proxy controller walkthrough (the seed) exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

ALL_NAMESPACES = "*"


class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ProxySettings(_Settings):
    """Which Proxy the controller owns. Gloo only reads Proxies from its write namespace."""

    name: str = "my-cool-proxy"
    namespace: str = "gloo-system"


class ListenerSettings(_Settings):
    """The one listener of the managed Proxy: the address and port the second Envoy binds."""

    name: str = "my-amazing-listener"
    bind_address: str = "::"
    bind_port: int = Field(default=8080, ge=1, le=65535)


class StrategySettings(_Settings):
    """How upstreams become virtual hosts.

    `host-header`: one virtual host per upstream, matched by the Host header equal to the upstream's name
    (the seed). `path-prefix`: one virtual host for every domain, a route `/<upstream name>/` per upstream with
    the prefix rewritten to `/`. `plugin`: `plugin` names a Python callable `module:function` that takes the
    routed upstreams and the settings and returns virtual hosts.
    """

    kind: Literal["host-header", "path-prefix", "plugin"] = "host-header"
    plugin: str | None = None
    # Extra domains per virtual host, formatted with the upstream's name and namespace,
    # e.g. "{name}.example.com". The seed uses the bare name only.
    domain_templates: tuple[str, ...] = ("{name}",)


class ReconcileSettings(_Settings):
    """How the loop turns a burst of changes into few writes."""

    coalesce_window_seconds: float = Field(default=0.1, ge=0)
    max_delay_seconds: float = Field(default=1.0, gt=0)
    # Reconcile the first change after a quiet window at once instead of waiting the window out: a single
    # change is served sooner, a burst costs one pass more.
    leading_edge: bool = True
    resync_period_seconds: float = Field(default=300.0, gt=0)
    # etcd refuses objects over ~1.5 MB; above this many bytes of spec JSON, Gloo's compressed spec is written.
    compress_threshold_bytes: int = Field(default=512 * 1024, ge=0)
    field_manager: str = "proxycontroller"


class ControllerConfig(_Settings):
    """Everything the controller needs to know, in one place."""

    proxy: ProxySettings = ProxySettings()
    listener: ListenerSettings = ListenerSettings()
    # Namespaces whose upstreams are routed; ["*"] routes every namespace. The seed routes gloo-system only.
    namespaces: tuple[str, ...] = ("gloo-system",)
    strategy: StrategySettings = StrategySettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    # The namespace of the Gloo whose verdict (status.statuses.<ns>) the controller reports.
    gloo_namespace: str = "gloo-system"
    # Told apart by the label app.kubernetes.io/instance, several controllers (say, one per team) can share
    # a namespace without garbage-collecting each other's Proxies.
    instance: str = "proxycontroller"

    @field_validator("namespaces")
    @classmethod
    def _namespaces_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not namespace for namespace in value):
            raise ValueError("must list at least one namespace, and no empty name")
        return value

    @property
    def all_namespaces(self) -> bool:
        return ALL_NAMESPACES in self.namespaces

    def routes_namespace(self, namespace: str) -> bool:
        return self.all_namespaces or namespace in self.namespaces


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


def load_config(path: Path | None) -> ControllerConfig:
    if path is None:
        return ControllerConfig()
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return ControllerConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return ControllerConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
