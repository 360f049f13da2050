"""The built-in strategies: the seed's host-header routing and path-prefix routing."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from pydantic import field_validator

from proxycontroller.model.proxy import VirtualHost
from proxycontroller.model.resources import Upstream
from proxycontroller.translate.api import StrategyOptions, route_to, strategy, virtual_host
from proxycontroller.translate.templates import Template, TemplateError


class HostHeaderOptions(StrategyOptions):
    # Domains per virtual host, from the upstream's name and namespace. The seed uses the bare name only.
    domain_templates: tuple[str, ...] = ("{name}",)

    @field_validator("domain_templates")
    @classmethod
    def _templates_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one template")
        for template in value:
            try:
                Template.parse(template)
            except TemplateError as exc:
                raise ValueError(str(exc)) from exc
        return value

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


class PathPrefixOptions(StrategyOptions):
    name: str = "all-upstreams"
    domains: tuple[str, ...] = ("*",)


@strategy("path-prefix", options=PathPrefixOptions, each=False)
def path_prefix(upstreams: Sequence[Upstream], options: PathPrefixOptions) -> list[VirtualHost]:
    """One catch-all virtual host; `/<upstream name>/...` goes to that upstream with the prefix removed."""
    routes = [route_to(u, prefix=f"/{u.metadata.name}/", prefix_rewrite="/") for u in upstreams]
    return [virtual_host(options.name, options.domains, routes)] if routes else []


BUILTIN_STRATEGIES = (host_header, path_prefix)
