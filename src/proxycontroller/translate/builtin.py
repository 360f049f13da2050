"""The built-in strategies: the seed's host-header routing, path-prefix routing, and HTTP to HTTPS redirects."""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StrictInt

from proxycontroller.config import shown
from proxycontroller.model.proxy import Matcher, VirtualHost
from proxycontroller.model.resources import Upstream
from proxycontroller.translate.annotations import (
    PREFIX_RULE,
    AnnotationError,
    annotated_prefix,
    extra_domains,
    prefix_problem,
)
from proxycontroller.translate.api import Skip, StrategyOptions, route_to, strategy, virtual_host
from proxycontroller.translate.redirect import OptOutError, ResponseCode, https_redirect_route, opted_out
from proxycontroller.translate.templates import DOMAIN_REFUSED, Template, TemplateError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


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
    # Domains per virtual host, from the upstream's fields (templates.py). The seed uses the bare name only.
    domain_templates: DomainTemplates = ("{name}",)
    # Add the domains of the annotation proxycontroller.io/domains: "a.example.com,b.example.com".
    allow_domains_annotation: StrictBool = True

    @functools.cached_property
    def templates(self) -> tuple[Template, ...]:
        return tuple(Template.parse(template) for template in self.domain_templates)


def host_domains(upstream: Upstream, options: HostHeaderOptions) -> list[str]:
    """The upstream's domains: its templates', then its annotation's, each once (Envoy compares them without
    case, and refuses a virtual host that repeats one). Raises Skip or TemplateError to leave it out."""
    domains = [template.render(upstream) for template in options.templates]
    extra: tuple[str, ...] = ()
    if options.allow_domains_annotation and upstream.metadata.annotations:
        try:
            extra = extra_domains(upstream.metadata)
        except AnnotationError as exc:
            raise Skip(str(exc)) from None
    if len(domains) == 1 and not extra:
        return domains  # the seed's case: nothing to compare
    seen: set[str] = set()
    unique = []
    for domain in (*domains, *extra):
        folded = domain.translate(_ASCII_LOWER)  # as Envoy compares them: in ASCII only
        if folded not in seen:
            seen.add(folded)
            unique.append(domain)
    return unique


@strategy("host-header", options=HostHeaderOptions)
def host_header(upstream: Upstream, options: HostHeaderOptions) -> VirtualHost:
    """The seed's strategy: one virtual host per upstream, named after it, matched by Host header."""
    name, namespace = upstream.metadata.name, upstream.metadata.namespace
    # What virtual_host(name, domains, [route_to(upstream)]) builds, validated from one document: one call into
    # pydantic-core instead of six nested constructors (the first pass builds one per upstream).
    return VirtualHost.model_validate(
        {
            "name": name,
            "domains": host_domains(upstream, options),
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


def _prefix_template(template: str) -> str:
    parsed = Template.parse(_parses(template))
    if not parsed.literal_start.startswith("/"):
        raise ValueError(f"{shown(template)} must start with '/' (a path prefix), e.g. '/{{name}}'")
    return template


class PathPrefixOptions(StrategyOptions):
    name: Annotated[str, AfterValidator(_virtual_host_name)] = "all-upstreams"
    domains: Annotated[tuple[Annotated[str, AfterValidator(_domain)], ...], AfterValidator(_distinct_domains)] = ("*",)
    # Each upstream's prefix, from its fields as domain templates use them.
    prefix_template: Annotated[str, AfterValidator(_prefix_template)] = "/{name}"
    # An upstream annotated proxycontroller.io/prefix: "/pets" is routed under /pets instead.
    allow_prefix_annotation: StrictBool = True

    @functools.cached_property
    def template(self) -> Template:
        return Template.parse(self.prefix_template)


def upstream_prefix(upstream: Upstream, options: PathPrefixOptions) -> str:
    """The upstream's path prefix: its annotation's, else the template's; AnnotationError or TemplateError if
    it has none that can be used."""
    prefix = annotated_prefix(upstream.metadata) if options.allow_prefix_annotation else None
    if prefix is None:
        prefix = options.template.render(upstream)
        problem = prefix_problem(prefix)
        if problem is not None:
            made = f"prefixTemplate {shown(options.prefix_template)} makes {shown(prefix)}"
            raise TemplateError(f"{made}, which {problem}; expected {PREFIX_RULE}")
    return prefix


@strategy("path-prefix", options=PathPrefixOptions, each=False)
def path_prefix(upstreams: Sequence[Upstream], options: PathPrefixOptions) -> list[VirtualHost | Skip]:
    """One catch-all virtual host; `/<prefix>` and `/<prefix>/...` go to the upstream with the prefix replaced
    by `/`. Longest prefix first; a prefix two upstreams claim goes to the first (by namespace, then name)."""
    made: list[VirtualHost | Skip] = []
    claimed: dict[str, Upstream] = {}
    for upstream in upstreams:
        try:
            prefix = upstream_prefix(upstream, options)
        except (AnnotationError, TemplateError) as exc:
            made.append(Skip(str(exc), upstream))
            continue
        holder = claimed.setdefault(prefix, upstream)
        if holder is not upstream:
            made.append(
                Skip(
                    f"its path prefix {shown(prefix)} is already routed to {holder.describe()} (the first by"
                    " namespace, then name, keeps a prefix)",
                    upstream,
                )
            )
    routes = []
    for prefix in sorted(claimed, key=lambda prefix: (-len(prefix), prefix)):
        upstream = claimed[prefix]
        routes.append(route_to(upstream, prefix=f"{prefix}/", prefix_rewrite="/"))
        exact = route_to(upstream, prefix_rewrite="/")
        routes.append(exact.model_copy(update={"matchers": (Matcher(exact=prefix),)}))
    if routes:
        made.append(virtual_host(options.name, options.domains, routes))
    return made


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
    return virtual_host(
        upstream.metadata.name,
        host_domains(upstream, options),
        [https_redirect_route(options.response_code, options.https_port)],
    )


BUILTIN_STRATEGIES = (host_header, path_prefix, https_redirect)
