"""The controller's configuration: one typed object, loaded and validated here, passed down.

Defaults reproduce Gloo's custom Proxy controller walkthrough (the seed) exactly: one Proxy
`gloo-system/my-cool-proxy`, one listener `my-amazing-listener` on `:::8080`, the host-header strategy.
The short form of the first release (`proxy`, `listener`, `strategy` at the top level) still loads: it is
the one-Proxy, one-listener case of `proxies`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from proxycontroller.model.documents import load_yaml
from proxycontroller.model.limits import DEFAULT_LIMITS, InputLimits, InputTooLarge, read_bounded
from proxycontroller.model.proxy import SslConfig

ALL_NAMESPACES = "*"
DEFAULT_PROXY_NAME = "my-cool-proxy"
DEFAULT_PROXY_NAMESPACE = "gloo-system"
DEFAULT_LISTENER_NAME = "my-amazing-listener"


class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class StrategySettings(_Settings):
    """One strategy of a listener: a registered strategy by name (`host-header`, `path-prefix`, or one a
    package registers under the `proxycontroller.strategies` entry point group), or `kind: plugin` with
    `plugin: "module:function"`. `options` are the strategy's own, validated by the model it declares."""

    kind: str = "host-header"
    plugin: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ListenerSettings(_Settings):
    """A listener of a Proxy: the address and port its Envoy binds, TLS, and the strategies that fill it."""

    name: str = DEFAULT_LISTENER_NAME
    bind_address: str = "::"
    bind_port: StrictInt = Field(default=8080, ge=1, le=65535)
    # Gloo SslConfig messages as Gloo writes them (secretRef, sslFiles, sniDomains...): the listener serves TLS.
    ssl_configurations: tuple[SslConfig, ...] = ()
    strategies: tuple[StrategySettings, ...] = (StrategySettings(),)


class ProxySettings(_Settings):
    """A Proxy the controller owns. Gloo only reads Proxies from its write namespace."""

    name: str = DEFAULT_PROXY_NAME
    namespace: str = DEFAULT_PROXY_NAMESPACE
    # Namespaces whose upstreams this Proxy routes; None: the controller's `namespaces`.
    namespaces: tuple[str, ...] | None = None
    listeners: tuple[ListenerSettings, ...] = (ListenerSettings(),)


class ReconcileSettings(_Settings):
    """How the loop turns a burst of changes into few writes, and how long the logic may take."""

    coalesce_window_seconds: float = Field(default=0.1, ge=0)
    max_delay_seconds: float = Field(default=1.0, gt=0)
    # Reconcile the first change after a quiet window at once instead of waiting the window out: a single
    # change is served sooner, a burst costs one pass more.
    leading_edge: bool = True
    resync_period_seconds: float = Field(default=300.0, gt=0)
    # etcd refuses objects over ~1.5 MB; above this many bytes of spec JSON, Gloo's compressed spec is written.
    compress_threshold_bytes: int = Field(default=512 * 1024, ge=0)
    # A pass whose strategies run longer than this fails (the last good objects stay) and is retried.
    pass_timeout_seconds: float = Field(default=60.0, gt=0)
    # Backoff between failed passes: doubling from the first delay, capped.
    error_backoff_seconds: float = Field(default=0.2, gt=0)
    error_backoff_cap_seconds: float = Field(default=30.0, gt=0)
    field_manager: str = Field(default="proxycontroller", min_length=1)


class ControllerConfig(_Settings):
    """Everything the controller needs to know, in one place."""

    proxies: tuple[ProxySettings, ...] = (ProxySettings(),)
    # Namespaces whose upstreams are routed; ["*"] routes every namespace. The seed routes gloo-system only.
    namespaces: tuple[str, ...] = ("gloo-system",)
    reconcile: ReconcileSettings = ReconcileSettings()
    # The namespace of the Gloo whose verdict (status.statuses.<ns>) the controller reports.
    gloo_namespace: str = "gloo-system"
    # Told apart by the label app.kubernetes.io/instance, several controllers (say, one per team) can share
    # a namespace without garbage-collecting each other's Proxies.
    instance: str = "proxycontroller"
    # How much the controller reads: bytes per file and per render input, YAML alias expansion.
    limits: InputLimits = InputLimits()

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        """`proxy`, `listener` and `strategy` (the first release's keys) describe a single Proxy."""
        if not isinstance(data, dict) or not {"proxy", "listener", "strategy"} & data.keys():
            return data
        data = dict(data)
        if "proxies" in data:
            raise ValueError("use either `proxies` or the short form (`proxy`, `listener`, `strategy`), not both")
        proxy = _mapping(data.pop("proxy", None), "proxy")
        listener = _mapping(data.pop("listener", None), "listener")
        strategy = _mapping(data.pop("strategy", None), "strategy")
        templates_key = next((k for k in ("domainTemplates", "domain_templates") if k in strategy), None)
        if templates_key is not None and strategy.get("kind") == "path-prefix":
            strategy.pop(templates_key)  # the first release ignored them for path-prefix, and still does
            templates_key = None
        if templates_key is not None:
            strategy["options"] = {
                **_mapping(strategy.get("options"), "strategy.options"),
                "domainTemplates": strategy.pop(templates_key),
            }
        data["proxies"] = [{**proxy, "listeners": [{**listener, "strategies": [strategy]}]}]
        return data

    @field_validator("namespaces")
    @classmethod
    def _namespaces_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not namespace for namespace in value):
            raise ValueError("must list at least one namespace, and no empty name")
        return value

    @field_validator("proxies")
    @classmethod
    def _proxies_distinct(cls, value: tuple[ProxySettings, ...]) -> tuple[ProxySettings, ...]:
        keys = [(proxy.namespace, proxy.name) for proxy in value]
        if not keys:
            raise ValueError("must list at least one Proxy")
        if len(set(keys)) != len(keys):
            raise ValueError("lists the same Proxy twice")
        return value

    @property
    def all_namespaces(self) -> bool:
        return ALL_NAMESPACES in self.namespaces or any(
            ALL_NAMESPACES in self.namespaces_of(proxy) for proxy in self.proxies
        )

    def namespaces_of(self, proxy: ProxySettings) -> tuple[str, ...]:
        return proxy.namespaces if proxy.namespaces is not None else self.namespaces

    def watched_namespaces(self) -> tuple[str, ...] | None:
        """The namespaces whose upstreams some Proxy routes; None: all of them."""
        if self.all_namespaces:
            return None
        return tuple(sorted({ns for proxy in self.proxies for ns in self.namespaces_of(proxy)}))

    @property
    def proxy_namespaces(self) -> tuple[str, ...]:
        return tuple(sorted({proxy.namespace for proxy in self.proxies}))

    def with_proxy_namespace(self, namespace: str) -> ControllerConfig:
        """Every Proxy moved to `namespace` (the command line's --proxy-namespace)."""
        moved = tuple(proxy.model_copy(update={"namespace": namespace}) for proxy in self.proxies)
        return self.model_copy(update={"proxies": moved})


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a mapping, got {type(value).__name__}")
    return dict(value)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


def describe_validation_error(exc: ValidationError) -> str:
    """`key.path: problem` for each problem, list positions as `[i]`."""
    problems = []
    for error in exc.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        problems.append(f"{path}: {error['msg']}" if path else str(error["msg"]))
    return "; ".join(problems)


def load_config(path: Path | None) -> ControllerConfig:
    if path is None:
        return ControllerConfig()
    try:
        # The limits are inside the file itself: it is read within the default ones.
        with open(path, "rb") as file:
            raw = load_yaml(read_bounded(file, DEFAULT_LIMITS.max_file_bytes, "limits.maxFileBytes").decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except InputTooLarge as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if raw is None:
        return ControllerConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return ControllerConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc
