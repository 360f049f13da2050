"""The built-in strategies: the seed's host-header routing, path-prefix routing, and HTTP to HTTPS redirects."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StrictInt

from proxycontroller.config import shown
from proxycontroller.model.proxy import VirtualHost
from proxycontroller.model.resources import Upstream
from proxycontroller.translate.api import Skip, StrategyOptions, route_to, strategy, virtual_host
from proxycontroller.translate.redirect import OptOutError, ResponseCode, https_redirect_route, opted_out
from proxycontroller.translate.templates import DOMAIN_REFUSED, Template, TemplateError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _parses(template: str) -> str:
    try:
        Template.parse(template)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    return template


def _not_empty(templates: tuple[str, ...]) -> tuple[str, ...]:
    if not templates:
        raise ValueError("must list at least one template")
    return templates


# Checked one by one, so that an error names the template's position: `domainTemplates[1]`.
DomainTemplates = Annotated[tuple[Annotated[str, AfterValidator(_parses)], ...], AfterValidator(_not_empty)]


class HostHeaderOptions(StrategyOptions):
    # Domains per virtual host, from the upstream's name and namespace. The seed uses the bare name only.
    domain_templates: DomainTemplates = ("{name}",)

    @functools.cached_property
    def templates(self) -> tuple[Template, ...]:
        return tuple(Template.parse(template) for template in self.domain_templates)


@strategy("host-header", options=HostHeaderOptions)
def host_header(upstream: Upstream, options: HostHeaderOptions) -> VirtualHost:
    """The seed's strategy: one virtual host per upstream, named after it, matched by Host header."""
    name, namespace = upstream.metadata.name, upstream.metadata.namespace
    values = {"name": name, "namespace": namespace}
    # What virtual_host(name, domains, [route_to(upstream)]) builds, validated from one document: one call into
    # pydantic-core instead of six nested constructors (the first pass builds one per upstream).
    return VirtualHost.model_validate(
        {
            "name": name,
            "domains": [template.render(values) for template in options.templates],
            "routes": [
                {
                    "matchers": [{"prefix": "/"}],
                    "routeAction": {"single": {"upstream": {"name": name, "namespace": namespace}}},
                }
            ],
        }
    )


def _domain(domain: str) -> str:
    if not domain or DOMAIN_REFUSED.search(domain):
        raise ValueError(f"{shown(domain)} is not a domain: empty, or holding whitespace or a control character")
    return domain


def _distinct_domains(domains: tuple[str, ...]) -> tuple[str, ...]:
    if not domains:
        raise ValueError("must list at least one domain")
    seen: set[str] = set()
    for domain in domains:
        if domain.lower() in seen:  # Envoy compares domains case-insensitively, and refuses a repeated one
            raise ValueError(f"lists the domain {shown(domain)} twice")
        seen.add(domain.lower())
    return domains


def _virtual_host_name(name: str) -> str:
    if not name or _CONTROL.search(name):
        raise ValueError(f"{shown(name)} cannot name a virtual host (Envoy): empty, or holding a control character")
    return name


class PathPrefixOptions(StrategyOptions):
    name: Annotated[str, AfterValidator(_virtual_host_name)] = "all-upstreams"
    domains: Annotated[tuple[Annotated[str, AfterValidator(_domain)], ...], AfterValidator(_distinct_domains)] = ("*",)


@strategy("path-prefix", options=PathPrefixOptions, each=False)
def path_prefix(upstreams: Sequence[Upstream], options: PathPrefixOptions) -> list[VirtualHost]:
    """One catch-all virtual host; `/<upstream name>/...` goes to that upstream with the prefix removed."""
    routes = [route_to(u, prefix=f"/{u.metadata.name}/", prefix_rewrite="/") for u in upstreams]
    return [virtual_host(options.name, options.domains, routes)] if routes else []


class HttpsRedirectOptions(HostHeaderOptions):
    # The status of the redirect: 301 (Envoy's default), 302, 303, 307 or 308.
    response_code: ResponseCode = 301
    # The port of the HTTPS listener when it is not 443: the redirect then names it.
    https_port: StrictInt | None = Field(default=None, ge=1, le=65535)
    # An upstream annotated proxycontroller.io/https-redirect: "false" is routed here as host-header routes it.
    allow_opt_out: StrictBool = True


@strategy("https-redirect", options=HttpsRedirectOptions)
def https_redirect(upstream: Upstream, options: HttpsRedirectOptions) -> VirtualHost:
    """One virtual host per upstream, domains as host-header makes them, answering every request with a
    redirect to the same URL over https; an upstream that opts out is routed as host-header routes it."""
    try:
        stays = options.allow_opt_out and opted_out(upstream.metadata)
    except OptOutError as exc:
        raise Skip(str(exc)) from None
    if stays:
        routed: VirtualHost = host_header.function(upstream, options)
        return routed
    values = {"name": upstream.metadata.name, "namespace": upstream.metadata.namespace}
    return virtual_host(
        upstream.metadata.name,
        [template.render(values) for template in options.templates],
        [https_redirect_route(options.response_code, options.https_port)],
    )


BUILTIN_STRATEGIES = (host_header, path_prefix, https_redirect)
