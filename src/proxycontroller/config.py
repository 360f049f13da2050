"""The controller's configuration: one typed object, loaded and validated here, passed down.

Defaults reproduce Gloo's custom Proxy controller walkthrough (the seed) exactly: one Proxy
`gloo-system/my-cool-proxy`, one listener `my-amazing-listener` on `:::8080`, the host-header strategy.
The short form of the first release (`proxy`, `listener`, `strategy` at the top level) still loads: it is
the one-Proxy, one-listener case of `proxies`, and its errors name the keys as written in it.

Everything is checked against what Kubernetes and Gloo accept before anything is written: a value they refuse
would otherwise be found only by a write that fails (retried forever), or worse, by one that succeeds and is
rejected or rewritten by Gloo later.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from proxycontroller.model.deployment import DeploymentSettings
from proxycontroller.model.documents import DocumentError, read_yaml_file
from proxycontroller.model.gateway_settings import GatewayApiSettings
from proxycontroller.model.limits import InputLimits
from proxycontroller.model.proxy import SslConfig

ALL_NAMESPACES = "*"
DEFAULT_PROXY_NAME = "my-cool-proxy"
DEFAULT_PROXY_NAMESPACE = "gloo-system"
DEFAULT_LISTENER_NAME = "my-amazing-listener"

# --- what Kubernetes and Gloo accept -----------------------------------------------------------------------------

# k8s.io/apimachinery/pkg/util/validation: namespaces are DNS-1123 labels, most object names (Proxies, Leases)
# DNS-1123 subdomains.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHOWN_CHARS = 60


def shown(value: str) -> str:
    """A value for a one-line message: quoted, escaped, and cut short (a hostile value may be megabytes)."""
    return repr(value) if len(value) <= _SHOWN_CHARS else repr(value[:_SHOWN_CHARS]) + "..."


def _namespace_name(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a Kubernetes namespace name (a DNS-1123 label: at most 63 lowercase letters,"
            " digits and '-', beginning and ending with a letter or digit)"
        )
    return value


def _namespace_selector(value: str) -> str:
    return value if value == ALL_NAMESPACES else _namespace_name(value)


def _object_name(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a Kubernetes object name (a DNS-1123 subdomain: at most 253 lowercase letters,"
            " digits, '-' and '.', beginning and ending with a letter or digit)"
        )
    return value


def _instance_name(value: str) -> str:
    # The value of the label app.kubernetes.io/instance (at most 63 characters) and the end of the Lease name
    # proxycontroller-<instance> (a DNS-1123 subdomain): what both accept.
    if len(value) > 63 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{shown(value)} cannot be used: it is a Kubernetes label value and part of the Lease name"
            " proxycontroller-<instance>; at most 63 lowercase letters, digits, '-' and '.', beginning and ending"
            " with a letter or digit"
        )
    return value


def _listener_name(value: str) -> str:
    # Gloo and Envoy set no syntax for a listener's name, but an empty one is dropped when Gloo rewrites the
    # Proxy (proto3 leaves out empty strings), and Envoy then names the listener anew on every update.
    if not value:
        raise ValueError("must not be empty (Gloo drops an empty listener name when it rewrites the Proxy)")
    if _CONTROL.search(value):
        raise ValueError(f"{shown(value)} holds a control character")
    return value


def _ip_address(value: str) -> str:
    # Gloo (translator.IsIpv4Address: Go's net.ParseIP) refuses the whole listener for anything but an IP
    # address; Go knows no IPv6 zone ("%eth0"), Python does.
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{shown(value)} is not an IP address (e.g. '::' or '0.0.0.0'; not a host name)") from None
    if "%" in value:
        raise ValueError(f"{shown(value)}: Gloo accepts no IPv6 zone ('%...')")
    return value


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{shown(value)} holds a control character")
    return value


def _at_least_one(what: str) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A check that a list is not empty (after its items are valid: min_length would repeat their errors)."""

    def check(value: tuple[Any, ...]) -> tuple[Any, ...]:
        if not value:
            raise ValueError(f"must list at least one {what}")
        return value

    return check


NamespaceName = Annotated[str, AfterValidator(_namespace_name)]
NamespaceSelector = Annotated[str, AfterValidator(_namespace_selector)]
ObjectName = Annotated[str, AfterValidator(_object_name)]
InstanceName = Annotated[str, AfterValidator(_instance_name)]
ListenerName = Annotated[str, AfterValidator(_listener_name)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]
Seconds = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Namespaces = Annotated[tuple[NamespaceSelector, ...], AfterValidator(_at_least_one("namespace"))]

# What the controller routes: Gloo Upstreams (the seed), Kubernetes Services (one route target per TCP port;
# Gloo's `kube` destination, no Upstream and no discovery needed), or both.
UPSTREAMS: Final = "upstreams"
SERVICES: Final = "services"
Source = Literal["upstreams", "services"]


def _distinct_sources(value: tuple[str, ...]) -> tuple[str, ...]:
    _at_least_one("source")(value)
    if len(set(value)) != len(value):
        raise ValueError("lists a source twice")
    return value


Sources = Annotated[tuple[Source, ...], AfterValidator(_distinct_sources)]


# --- selection: which upstreams a Proxy routes ------------------------------------------------------------------

# k8s.io/apimachinery/pkg/util/validation IsQualifiedName and IsValidLabelValue: a label key is an optional
# DNS-1123 subdomain prefix and '/', then a name of at most 63 characters; a value is at most 63 of the same.
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_NAME_RULE = (
    "alphanumeric characters, '-', '_' or '.', beginning and ending with an alphanumeric character (e.g. 'app',"
    " 'my.name', '123-abc')"
)
_EXCLUDE = re.compile(r"[A-Za-z0-9._*?-]+(/[A-Za-z0-9._*?-]+)?")
MAX_SHARDS = 256


def label_key_problem(key: str) -> str | None:
    """What Kubernetes says is wrong with a label (or annotation) key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return (
            f"label key {shown(key)}: its prefix (before '/') must be a DNS-1123 subdomain (at most 253 lowercase"
            " letters, digits, '-' and '.', beginning and ending with a letter or digit)"
        )
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return f"label key {shown(key)}: its name must be 1 to 63 {_LABEL_NAME_RULE}"
    return None


def label_value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        return f"label value {shown(value)}: must be empty or at most 63 {_LABEL_NAME_RULE}"
    return None


def _label_key(value: str) -> str:
    problem = label_key_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _label_value(value: str) -> str:
    problem = label_value_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _exclude_pattern(value: str) -> str:
    if not _EXCLUDE.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not 'name' or 'namespace/name' (letters, digits, '-', '_', '.', and the wildcards"
            " '*' and '?')"
        )
    return value


LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
ExcludePattern = Annotated[str, AfterValidator(_exclude_pattern)]


class LabelSelectorRequirement(BaseModel):
    """One of Kubernetes' LabelSelector `matchExpressions`: `key`, `operator`, `values`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[LabelValue, ...] = ()

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise _validation_error(
                "LabelSelectorRequirement",
                [(("values",), f"must list at least one value for operator {self.operator}")],
            )
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise _validation_error(
                "LabelSelectorRequirement", [(("values",), f"must be empty for operator {self.operator}")]
            )
        return self


class LabelSelector(BaseModel):
    """Kubernetes' LabelSelector: every `matchLabels` pair and every `matchExpressions` requirement must hold."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    @field_validator("match_labels")
    @classmethod
    def _labels_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            problem = label_key_problem(key)
            if problem is None and (problem := label_value_problem(label)) is not None:
                problem = f"{problem} (of key {shown(key)})"
            if problem is not None:
                raise ValueError(problem)
        return value


# --- the short form -------------------------------------------------------------------------------------------

SHORT_FORM_KEYS = ("proxy", "listener", "strategy")
SHORT_FORM_STRATEGY: tuple[str | int, ...] = ("proxies", 0, "listeners", 0, "strategies", 0)
_SHORT_FORM_PREFIXES: tuple[tuple[tuple[str | int, ...], str], ...] = (
    (SHORT_FORM_STRATEGY, "strategy"),
    (SHORT_FORM_STRATEGY[:4], "listener"),
    (SHORT_FORM_STRATEGY[:2], "proxy"),
)
_TEMPLATE_KEYS = ("domainTemplates", "domain_templates")


@dataclass(frozen=True)
class ShortForm:
    """The first release's keys (`proxy`, `listener`, `strategy`), read as the long form's first Proxy,
    listener and strategy; and back, to name a key as the user wrote it."""

    # The key of the strategy's domain templates when written beside its kind (they move into its options).
    templates_key: str | None

    @classmethod
    def of(cls, data: Any) -> ShortForm | None:
        if not isinstance(data, dict) or not set(SHORT_FORM_KEYS) & data.keys():
            return None
        strategy = data.get("strategy")
        if not isinstance(strategy, dict) or strategy.get("kind") == "path-prefix":
            return cls(None)
        return cls(next((key for key in _TEMPLATE_KEYS if key in strategy), None))

    def expand(self, data: dict[str, Any]) -> dict[str, Any]:
        """The same configuration in the long form."""
        data = dict(data)
        if "proxies" in data:
            raise ValueError("use either `proxies` or the short form (`proxy`, `listener`, `strategy`), not both")
        proxy = _mapping(data.pop("proxy", None), "proxy")
        listener = _mapping(data.pop("listener", None), "listener")
        strategy = _mapping(data.pop("strategy", None), "strategy")
        if strategy.get("kind") == "path-prefix":
            for key in _TEMPLATE_KEYS:  # the first release ignored them for path-prefix, and still does
                strategy.pop(key, None)
        if self.templates_key is not None:
            strategy["options"] = {
                **_mapping(strategy.get("options"), "strategy.options"),
                "domainTemplates": strategy.pop(self.templates_key),
            }
        data["proxies"] = [{**proxy, "listeners": [{**listener, "strategies": [strategy]}]}]
        return data

    def written(self, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
        """`proxies[0].listeners[0].bindPort` -> `listener.bindPort`: a long-form key as written in the short form."""
        templates = (*SHORT_FORM_STRATEGY, "options", "domainTemplates")
        if self.templates_key is not None and loc[: len(templates)] == templates:
            return ("strategy", self.templates_key, *loc[len(templates) :])
        for prefix, key in _SHORT_FORM_PREFIXES:
            if loc[: len(prefix)] == prefix:
                return (key, *loc[len(prefix) :])
        return loc


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a mapping, got {type(value).__name__}")
    return dict(value)


# --- the settings ---------------------------------------------------------------------------------------------


class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class StrategySettings(_Settings):
    """One strategy of a listener: a registered strategy by name (`host-header`, `path-prefix`, or one a
    package registers under the `proxycontroller.strategies` entry point group), or `kind: plugin` with
    `plugin: "module:function"`. `options` are the strategy's own, validated by the model it declares."""

    kind: Annotated[str, AfterValidator(_printable)] = Field(default="host-header", min_length=1)
    plugin: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # Set when the strategy was written in the short form, whose keys are not the long form's: its options are
    # validated later (by the strategy registry), and their errors must name the keys as written too.
    _short_form: ShortForm | None = PrivateAttr(default=None)

    def key(self, where: str, *loc: str | int) -> str:
        """The key, as the user wrote it, of `loc` inside this strategy found at `where` in the long form."""
        if self._short_form is not None:
            return format_key(self._short_form.written((*SHORT_FORM_STRATEGY, *loc)))
        return where + format_key(loc, nested=True)


class ListenerSettings(_Settings):
    """A listener of a Proxy: the address and port its Envoy binds, TLS, and the strategies that fill it."""

    name: ListenerName = DEFAULT_LISTENER_NAME
    bind_address: IpAddress = "::"
    bind_port: StrictInt = Field(default=8080, ge=1, le=65535)
    # Gloo SslConfig messages as Gloo writes them (secretRef, sslFiles, sniDomains...): the listener serves TLS.
    ssl_configurations: tuple[SslConfig, ...] = ()
    strategies: Annotated[tuple[StrategySettings, ...], AfterValidator(_at_least_one("strategy"))] = (
        StrategySettings(),
    )


class ProxySettings(_Settings):
    """A Proxy the controller owns. Gloo only reads Proxies from its write namespace."""

    name: ObjectName = DEFAULT_PROXY_NAME
    namespace: NamespaceName = DEFAULT_PROXY_NAMESPACE
    # Namespaces whose upstreams this Proxy routes; None: the controller's `namespaces`.
    namespaces: Namespaces | None = None
    # Of those, the upstreams whose labels this selects (Kubernetes' LabelSelector); None: all of them.
    selector: LabelSelector | None = None
    # Upstreams never routed by this Proxy: 'name' (any namespace) or 'namespace/name', '*' and '?' as wildcards.
    exclude: tuple[ExcludePattern, ...] = ()
    # opt-out: routed unless annotated proxycontroller.io/expose: "false"; opt-in: only if annotated "true".
    exposure: Literal["opt-out", "opt-in"] = "opt-out"
    # More than 1: this Proxy becomes `shards` Proxies <name>-0 .. <name>-<shards-1>, each upstream in one of them.
    shards: StrictInt = Field(default=1, ge=1, le=MAX_SHARDS)
    # Shard i's listeners bind bindPort + i * shardPortStep: several shards' Envoys on one host (0: all the same).
    shard_port_step: StrictInt = Field(default=0, ge=0, le=65535)
    listeners: Annotated[tuple[ListenerSettings, ...], AfterValidator(_at_least_one("listener"))] = (
        ListenerSettings(),
    )

    @property
    def shard_names(self) -> tuple[str, ...]:
        """The names of the Proxies this one makes: itself, or <name>-<i> for each of its shards."""
        if self.shards == 1:
            return (self.name,)
        return tuple(f"{self.name}-{index}" for index in range(self.shards))

    def shard_port(self, listener: ListenerSettings, shard: int) -> int:
        return listener.bind_port + shard * self.shard_port_step

    @model_validator(mode="after")
    def _shards_valid(self) -> ProxySettings:
        if self.shards > 1:
            try:
                _object_name(self.shard_names[-1])
            except ValueError as exc:
                raise _validation_error("ProxySettings", [(("shards",), f"the shard's name {exc}")]) from None
            for index, listener in enumerate(self.listeners):
                last = self.shard_port(listener, self.shards - 1)
                if last > 65535:
                    problem = f"shard {self.shards - 1} would bind port {last} (bindPort {listener.bind_port} + "
                    problem += f"{self.shards - 1} x shardPortStep {self.shard_port_step}), more than 65535"
                    raise _validation_error("ProxySettings", [(("listeners", index, "bindPort"), problem)])
        return self

    @model_validator(mode="after")
    def _listeners_distinct(self) -> ProxySettings:
        """Gloo rejects the whole Proxy when two of its listeners share a name or a bind port."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first: dict[tuple[str, object], int] = {}
        for index, listener in enumerate(self.listeners):
            for key, what, value in (("name", "name", listener.name), ("bindPort", "bind port", listener.bind_port)):
                earlier = first.setdefault((key, value), index)
                if earlier != index:
                    shown_value = shown(value) if isinstance(value, str) else value
                    problems.append(
                        (("listeners", index, key), f"{shown_value} is also the {what} of listeners[{earlier}]")
                    )
        if problems:
            raise _validation_error("ProxySettings", problems)
        return self


class ReconcileSettings(_Settings):
    """How the loop turns a burst of changes into few writes, and how long the logic may take."""

    coalesce_window_seconds: Seconds = Field(default=0.1, ge=0)
    max_delay_seconds: Seconds = Field(default=1.0, gt=0)
    # Reconcile the first change after a quiet window at once instead of waiting the window out: a single
    # change is served sooner, a burst costs one pass more.
    leading_edge: StrictBool = True
    resync_period_seconds: Seconds = Field(default=300.0, gt=0)
    # etcd refuses objects over ~1.5 MB; above this many bytes of spec JSON, Gloo's compressed spec is written.
    compress_threshold_bytes: StrictInt = Field(default=512 * 1024, ge=0)
    # A pass whose strategies run longer than this fails (the last good objects stay) and is retried.
    pass_timeout_seconds: Seconds = Field(default=60.0, gt=0)
    # Backoff between failed passes: doubling from the first delay, capped.
    error_backoff_seconds: Seconds = Field(default=0.2, gt=0)
    error_backoff_cap_seconds: Seconds = Field(default=30.0, gt=0)
    # Kubernetes' managedFields manager: at most 128 printable characters.
    field_manager: Annotated[str, AfterValidator(_printable)] = Field(
        default="proxycontroller", min_length=1, max_length=128
    )


# --- the whole configuration ----------------------------------------------------------------------------------


class ControllerConfig(_Settings):
    """Everything the controller needs to know, in one place."""

    proxies: Annotated[tuple[ProxySettings, ...], AfterValidator(_at_least_one("Proxy"))] = (ProxySettings(),)
    # Namespaces whose upstreams are routed; ["*"] routes every namespace. The seed routes gloo-system only.
    namespaces: Namespaces = ("gloo-system",)
    # What is routed: `upstreams`, `services` (Kubernetes only), or both; an Upstream wins over the Service
    # port it points at (translate/targets.py).
    sources: Sources = (UPSTREAMS,)
    reconcile: ReconcileSettings = ReconcileSettings()
    # The namespace of the Gloo whose verdict (status.statuses.<ns>) the controller reports: Gloo's write
    # namespace (Settings spec.discoveryNamespace), the only one it reads Proxies from.
    gloo_namespace: NamespaceName = "gloo-system"
    # Told apart by the label app.kubernetes.io/instance, several controllers (say, one per team) can share
    # a namespace without garbage-collecting each other's Proxies.
    instance: InstanceName = "proxycontroller"
    # How much the controller reads: bytes per file and per render input, YAML alias expansion.
    limits: InputLimits = InputLimits()
    # How `proxycontroller manifests` installs the controller and the Envoys (model/deployment.py); `run` ignores it.
    deployment: DeploymentSettings = DeploymentSettings()
    # What the controller writes: Gloo Proxies, or Gateway API HTTPRoutes (and ReferenceGrants) made from the
    # same strategies' virtual hosts, attached to `gatewayApi.parentRefs` (model/gateway_settings.py).
    output: Literal["gloo", "gateway-api"] = "gloo"
    gateway_api: GatewayApiSettings = GatewayApiSettings()

    @model_validator(mode="after")
    def _gateway_api_complete(self) -> ControllerConfig:
        if self.output != "gateway-api":
            return self
        problem = self.gateway_api_problem()
        if problem is not None:
            raise _validation_error("ControllerConfig", [problem])
        return self

    def gateway_api_problem(self) -> tuple[tuple[str | int, ...], str] | None:
        """What keeps this configuration from making HTTPRoutes (the key and why), or None."""
        if not self.gateway_api.parent_refs:
            return ("gatewayApi", "parentRefs"), "must list at least one Gateway for the HTTPRoutes to attach to"
        listeners = {listener.name for proxy in self.proxies for listener in proxy.listeners}
        for index, parent in enumerate(self.gateway_api.parent_refs):
            if parent.listener is not None and parent.listener not in listeners:
                known = ", ".join(sorted(map(shown, listeners)))
                return (
                    ("gatewayApi", "parentRefs", index, "listener"),
                    f"{shown(parent.listener)} names no listener of a Proxy (they are {known})",
                )
        return None

    @model_validator(mode="wrap")
    @classmethod
    def _short_form(cls, data: Any, handler: Callable[[Any], ControllerConfig]) -> ControllerConfig:
        """`proxy`, `listener` and `strategy` (the first release's keys) describe a single Proxy; its errors
        name those keys."""
        short = ShortForm.of(data)
        if short is None:
            return handler(data)
        try:
            config = handler(short.expand(data))
        except ValidationError as exc:
            renamed = [_error_details(error, short.written(tuple(error["loc"]))) for error in exc.errors()]
            raise ValidationError.from_exception_data(exc.title, renamed) from None
        config.proxies[0].listeners[0].strategies[0]._short_form = short
        return config

    @field_validator("proxies")
    @classmethod
    def _proxies_distinct(cls, value: tuple[ProxySettings, ...]) -> tuple[ProxySettings, ...]:
        clash = _proxy_clash(value)
        if clash is not None:
            raise _validation_error("ControllerConfig", [((clash[0], "name"), clash[1])])
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
        """Every Proxy moved to `namespace` (the command line's --proxy-namespace); ConfigError if it is no
        namespace name, or if two Proxies would become one."""
        try:
            _namespace_name(namespace)
        except ValueError as exc:
            raise ConfigError(f"--proxy-namespace: {exc}") from None
        moved = tuple(proxy.model_copy(update={"namespace": namespace}) for proxy in self.proxies)
        clash = _proxy_clash(moved)
        if clash is not None:
            raise ConfigError(f"--proxy-namespace: proxies[{clash[0]}]: {clash[1]}")
        return self.model_copy(update={"proxies": moved})

    def with_namespaces(self, namespaces: Iterable[str]) -> ControllerConfig:
        """The top-level `namespaces` replaced (the command line's --namespace); ConfigError if one is no
        namespace name (nor `*`)."""
        selected = tuple(namespaces)
        try:
            for namespace in selected:
                _namespace_selector(namespace)
            _at_least_one("namespace")(selected)
        except ValueError as exc:
            raise ConfigError(f"--namespace: {exc}") from None
        return self.model_copy(update={"namespaces": selected})

    def advisories(self) -> tuple[str, ...]:
        """What is accepted but probably not meant: warnings to print when the controller starts."""
        found = []
        for proxy in self.proxies:
            if proxy.namespace != self.gloo_namespace:
                found.append(
                    f"Proxy {proxy.namespace}/{proxy.name} is in namespace {proxy.namespace}, but Gloo (glooNamespace"
                    f" {self.gloo_namespace}) reads Proxies only from its write namespace"
                )
            for listener in proxy.listeners:
                if listener.bind_port < 1024:
                    found.append(
                        f"Proxy {proxy.namespace}/{proxy.name} listener {shown(listener.name)} binds port"
                        f" {listener.bind_port}: an Envoy not run as root (Gloo's gateway-proxy) cannot open a port"
                        " under 1024 without CAP_NET_BIND_SERVICE"
                    )
        selections = [("namespaces", self.namespaces)]
        selections += [(f"proxies[{i}].namespaces", p.namespaces) for i, p in enumerate(self.proxies) if p.namespaces]
        for key, selected in selections:
            if ALL_NAMESPACES in selected and len(selected) > 1:
                found.append(f"{key}: '*' routes every namespace; the other names listed add nothing")
        return tuple(found)


def _proxy_clash(proxies: tuple[ProxySettings, ...]) -> tuple[int, str] | None:
    """The first Proxy that repeats an earlier one (same namespace and name, a shard's name included), and what
    to say about it."""
    seen: dict[tuple[str, str], int] = {}
    for index, proxy in enumerate(proxies):
        for name in proxy.shard_names:
            earlier = seen.setdefault((proxy.namespace, name), index)
            if earlier != index:
                return index, f"Proxy {proxy.namespace}/{name} is also proxies[{earlier}]"
    return None


# --- errors ---------------------------------------------------------------------------------------------------


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


def _validation_error(title: str, problems: list[tuple[tuple[str | int, ...], str]]) -> ValidationError:
    """Problems found across fields, each at its own key (a validator's own errors sit at its model)."""
    details = [
        InitErrorDetails(type=PydanticCustomError("conflict", message), loc=loc, input=None)
        for loc, message in problems
    ]
    return ValidationError.from_exception_data(title, details)


def _error_details(error: Any, loc: tuple[str | int, ...]) -> InitErrorDetails:
    """An error moved to another location, its type and message kept."""
    return InitErrorDetails(type=PydanticCustomError(error["type"], error["msg"]), loc=loc, input=error["input"])


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,60}")
_PROBLEMS_SHOWN = 3


def format_key(loc: Iterable[str | int], *, nested: bool = False) -> str:
    """`proxies[0].listeners[1].bindPort` from a location; `nested`: a continuation (`.bindPort`). A key that
    is not a plain word (a user's unknown key may hold anything, newlines too) is quoted: `proxy['a\\nb']`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            path += f"[{shown(part)}]"
        else:
            path += f".{part}" if path or nested else part
    return path


_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def describe_validation_error(exc: ValidationError, key: Callable[[tuple[str | int, ...]], str] = format_key) -> str:
    """`key.path: problem` for the first few problems, list positions as `[i]`; `key` names a location."""
    problems = []
    errors = exc.errors()
    for error in errors[:_PROBLEMS_SHOWN]:
        message = str(error["msg"])
        for prefix in _VALUE_ERROR_PREFIXES:
            message = message.removeprefix(prefix)
        path = key(tuple(error["loc"]))
        problems.append(f"{path}: {message}" if path else message)
    if len(errors) > _PROBLEMS_SHOWN:
        problems.append(f"and {len(errors) - _PROBLEMS_SHOWN} more")
    return "; ".join(problems)


def load_config(path: Path | None) -> ControllerConfig:
    if path is None:
        return ControllerConfig()
    try:
        raw = read_yaml_file(path)  # within the default limits: the file's own `limits` are inside it
    except DocumentError as exc:
        raise ConfigError(str(exc)) from exc
    if raw is None:
        return ControllerConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return ControllerConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc
