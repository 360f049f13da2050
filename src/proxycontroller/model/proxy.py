"""Gloo's `gloo.solo.io/v1` Proxy: listeners, virtual hosts, routes, matchers and actions.

Field names follow Gloo's API reference (proxy.proto, matchers.proto, route_options.proto, ssl.proto);
messages the controller never builds (tcp/hybrid/aggregate listeners, plugin options) are kept opaque.
"""

from __future__ import annotations

from typing import Any

from proxycontroller.model.base import GlooModel
from proxycontroller.model.meta import ResourceRef


class HeaderMatcher(GlooModel):
    name: str
    value: str | None = None
    regex: bool | None = None
    invert_match: bool | None = None


class QueryParameterMatcher(GlooModel):
    name: str
    value: str | None = None
    regex: bool | None = None


class Matcher(GlooModel):
    """`matchers.core.gloo.solo.io.Matcher`: exactly one of prefix, exact, regex (or connectMatcher)."""

    prefix: str | None = None
    exact: str | None = None
    regex: str | None = None
    connect_matcher: dict[str, Any] | None = None
    case_sensitive: bool | None = None
    headers: tuple[HeaderMatcher, ...] | None = None
    query_parameters: tuple[QueryParameterMatcher, ...] | None = None
    methods: tuple[str, ...] | None = None


class Destination(GlooModel):
    upstream: ResourceRef | None = None
    kube: dict[str, Any] | None = None
    consul: dict[str, Any] | None = None
    destination_spec: dict[str, Any] | None = None
    subset: dict[str, Any] | None = None


class WeightedDestination(GlooModel):
    destination: Destination
    weight: int | None = None
    options: dict[str, Any] | None = None


class MultiDestination(GlooModel):
    destinations: tuple[WeightedDestination, ...]


class RouteAction(GlooModel):
    single: Destination | None = None
    multi: MultiDestination | None = None
    upstream_group: ResourceRef | None = None
    cluster_header: str | None = None
    dynamic_forward_proxy: dict[str, Any] | None = None


class RedirectAction(GlooModel):
    host_redirect: str | None = None
    path_redirect: str | None = None
    prefix_rewrite: str | None = None
    regex_rewrite: dict[str, Any] | None = None
    # Gloo's RedirectResponseCode enum: a name ("PERMANENT_REDIRECT") or its number.
    response_code: str | int | None = None
    https_redirect: bool | None = None
    strip_query: bool | None = None
    port_redirect: int | None = None


class DirectResponseAction(GlooModel):
    status: int
    body: str | None = None


class RouteOptions(GlooModel):
    """`RouteOptions`: the options the built-in strategies set are named; all others pass through."""

    prefix_rewrite: str | None = None
    timeout: str | None = None
    retries: dict[str, Any] | None = None
    host_rewrite: str | None = None


class Route(GlooModel):
    name: str | None = None
    matchers: tuple[Matcher, ...] | None = None
    inheritable_matchers: bool | None = None
    route_action: RouteAction | None = None
    redirect_action: RedirectAction | None = None
    direct_response_action: DirectResponseAction | None = None
    options: RouteOptions | None = None
    metadata_static: dict[str, Any] | None = None


class VirtualHost(GlooModel):
    name: str
    domains: tuple[str, ...] | None = None
    routes: tuple[Route, ...] | None = None
    options: dict[str, Any] | None = None
    metadata_static: dict[str, Any] | None = None


class HttpListener(GlooModel):
    virtual_hosts: tuple[VirtualHost, ...] | None = None
    options: dict[str, Any] | None = None
    stat_prefix: str | None = None


class SslConfig(GlooModel):
    """`ssl.proto` SslConfig: where the certificate comes from and for which SNI domains."""

    secret_ref: ResourceRef | None = None
    ssl_files: dict[str, Any] | None = None
    sds: dict[str, Any] | None = None
    sni_domains: tuple[str, ...] | None = None
    verify_subject_alt_name: tuple[str, ...] | None = None
    alpn_protocols: tuple[str, ...] | None = None
    one_way_tls: bool | None = None


class Listener(GlooModel):
    name: str
    bind_address: str
    bind_port: int
    http_listener: HttpListener | None = None
    tcp_listener: dict[str, Any] | None = None
    hybrid_listener: dict[str, Any] | None = None
    aggregate_listener: dict[str, Any] | None = None
    ssl_configurations: tuple[SslConfig, ...] | None = None
    use_proxy_proto: bool | None = None
    options: dict[str, Any] | None = None
    metadata_static: dict[str, Any] | None = None
    route_options: dict[str, Any] | None = None


class ProxySpec(GlooModel):
    listeners: tuple[Listener, ...] | None = None

    def virtual_host_count(self) -> int:
        return sum(
            len(listener.http_listener.virtual_hosts or [])
            for listener in self.listeners or []
            if listener.http_listener is not None
        )
