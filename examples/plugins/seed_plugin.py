"""The seed's whole controller as a strategy: one virtual host per upstream, matched by its Host header."""

from proxycontroller import StrategyOptions, Upstream, VirtualHost, route_to, strategy, virtual_host


class SeedOptions(StrategyOptions):
    # The domains of each virtual host; {name} and {namespace} stand for the upstream's.
    domain_templates: tuple[str, ...] = ("{name}",)


@strategy("seed", options=SeedOptions)
def seed(upstream: Upstream, options: SeedOptions) -> VirtualHost:
    name, namespace = upstream.metadata.name, upstream.metadata.namespace
    domains = [t.replace("{name}", name).replace("{namespace}", namespace) for t in options.domain_templates]
    return virtual_host(name, domains, [route_to(upstream)])
