"""The logic of the `gateway-api` output: snapshot in, desired HTTPRoutes and ReferenceGrants out.

Not a second set of strategies: the Proxy logic runs as for Gloo (translation, Gloo's validation, admission of
names and domains), and the virtual hosts it admits into each listener are converted
(`translate.gatewayapi`), each checked against the Gateway API CRDs' schema (`validate.gatewayapi`). A
conversion is kept per virtual host, by identity, with the Upstreams it looked up: a pass converts again only
the virtual hosts that translation made anew or whose Upstreams changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from proxycontroller.config import ConfigError, ControllerConfig, format_key
from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.desired import Desired, DesiredObject, Note
from proxycontroller.model.gateway import StoredHTTPRoute, StoredReferenceGrant
from proxycontroller.model.proxy import VirtualHost
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.gatewayapi import ServiceRef, Unconvertible, convert_virtual_host, reference_grants
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.translator import managed_labels
from proxycontroller.validate.desired import ProxyLogic
from proxycontroller.validate.gatewayapi import SchemaCheck


@dataclass(frozen=True)
class _Converted:
    """One virtual host's HTTPRoutes (with the Services each routes to), or why it has none."""

    virtual_host: VirtualHost
    looked_up: tuple[tuple[ObjectKey, Upstream | None], ...]
    routes: tuple[tuple[DesiredObject, tuple[ServiceRef, ...]], ...]
    problem: str | None
    dropped: tuple[str, ...] = ()


class GatewayLogic:
    """Upstreams to HTTPRoutes (and the ReferenceGrants their cross-namespace Services need)."""

    output_kinds = (StoredHTTPRoute, StoredReferenceGrant)

    def __init__(self, config: ControllerConfig, registry: StrategyRegistry | None = None) -> None:
        problem = config.gateway_api_problem()
        if problem is not None:
            raise ConfigError(f"{format_key(problem[0])}: {problem[1]}")
        self.proxies = ProxyLogic(config, registry)
        self.input_kinds = self.proxies.input_kinds  # Upstreams, Services or both, as the configuration says
        self.settings = config.gateway_api
        self.labels = managed_labels(config.instance)
        self.grant_name = f"proxycontroller-{config.instance}"
        # Where ReferenceGrants can be kept (and garbage-collected); None: anywhere.
        self.grant_namespaces = config.gateway_api.grant_namespaces
        self.schema = SchemaCheck()
        self._memo: dict[tuple[ObjectKey, str, str], _Converted] = {}
        self._grant_memo: dict[tuple[str, str, frozenset[str]], tuple[tuple[DesiredObject, ...], tuple[str, ...]]] = {}

    @property
    def progress(self) -> str:
        return self.proxies.progress

    def route_namespace(self, proxy: ObjectKey) -> str:
        return self.settings.route_namespace or proxy.namespace

    def desired(self, snapshot: Snapshot) -> Desired:
        inner = self.proxies.desired(snapshot)
        upstreams = snapshot.upstreams
        warnings: list[str] = list(inner.warnings)
        routes: list[DesiredObject] = []
        services: dict[str, set[ServiceRef]] = {}
        memo: dict[tuple[ObjectKey, str, str], _Converted] = {}
        names: dict[ObjectKey, str] = {}
        for proxy, listener, hosts in self.proxies.admitted():
            parents = [p.reference() for p in self.settings.parent_refs if p.listener in (None, listener)]
            if not parents:
                continue
            namespace = self.route_namespace(proxy)
            for virtual_host in hosts:
                where = (proxy, listener, virtual_host.name)
                converted = self._converted(where, virtual_host, namespace, parents, upstreams)
                memo[where] = converted
                what = f"virtual host {virtual_host.name!r} of Proxy {proxy} listener {listener!r}"
                if converted.problem is not None:
                    warnings.append(
                        _note(f"{what} left out of the HTTPRoutes: {converted.problem}", proxy, virtual_host)
                    )
                    continue
                warnings += [_note(f"{what}: {text}", proxy, virtual_host) for text in converted.dropped]
                for route, named in converted.routes:
                    if route.key in names:
                        warnings.append(
                            _note(f"{what}: HTTPRoute {route.key} is also {names[route.key]}", proxy, virtual_host)
                        )
                        continue
                    names[route.key] = what
                    routes.append(route)
                    services.setdefault(route.key.namespace, set()).update(named)
        self._memo = memo
        grants = list(self._grants(services, warnings))
        # Grants first: a route written before the grant it needs is refused for a moment (RefNotPermitted).
        return Desired(tuple(sorted(grants, key=_key) + sorted(routes, key=_key)), tuple(warnings))

    def _converted(
        self,
        where: tuple[ObjectKey, str, str],
        virtual_host: VirtualHost,
        namespace: str,
        parents: list[dict[str, Any]],
        upstreams: Mapping[ObjectKey, Upstream],
    ) -> _Converted:
        known = self._memo.get(where)
        if (
            known is not None
            and known.virtual_host is virtual_host
            and all(upstreams.get(key) is found for key, found in known.looked_up)
        ):
            return known
        proxy, listener, _ = where
        try:
            conversion = convert_virtual_host(
                virtual_host,
                proxy=proxy,
                listener=listener,
                namespace=namespace,
                parents=parents,
                upstreams=upstreams.get,
            )
        except Unconvertible as exc:
            return _Converted(virtual_host, (), (), str(exc))
        looked_up = tuple((key, upstreams.get(key)) for key in dict.fromkeys(conversion.upstreams))
        made = []
        for route in conversion.routes:
            problems = self.schema.problems("HTTPRoute", route.spec)
            if problems:
                return _Converted(virtual_host, looked_up, (), f"HTTPRoute {route.key}: {'; '.join(problems)}")
            outside = [
                s
                for s in route.services
                if s.namespace != namespace
                and self.grant_namespaces is not None
                and s.namespace not in self.grant_namespaces
            ]
            if outside:
                service = outside[0]
                problem = (
                    f"Service {service.namespace}/{service.name} is in a namespace not in gatewayApi.grantNamespaces,"
                    f" where the ReferenceGrant an HTTPRoute of {namespace} needs cannot be kept"
                )
                return _Converted(virtual_host, looked_up, (), problem)
            desired = DesiredObject(StoredHTTPRoute, route.key, self.labels, CanonicalSpec.of(route.spec))
            made.append((desired, route.services))
        return _Converted(virtual_host, looked_up, tuple(made), None, conversion.dropped)

    def _grants(self, services: dict[str, set[ServiceRef]], warnings: list[str]) -> Iterable[DesiredObject]:
        """The grants each (route namespace, Service namespace) needs; made and checked again only when the
        Services named there changed (checking 600 grants costs ~0.7 s a pass)."""
        groups: dict[tuple[str, str], frozenset[str]] = {}
        for route_namespace, named in services.items():
            by_namespace: dict[str, set[str]] = {}
            for service in named:
                if service.namespace != route_namespace:
                    by_namespace.setdefault(service.namespace, set()).add(service.name)
            for namespace, found in by_namespace.items():
                groups[(route_namespace, namespace)] = frozenset(found)
        memo: dict[tuple[str, str, frozenset[str]], tuple[tuple[DesiredObject, ...], tuple[str, ...]]] = {}
        for (route_namespace, namespace), names in sorted(groups.items()):
            key = (route_namespace, namespace, names)
            made = self._grant_memo.get(key)
            if made is None:
                refs = [ServiceRef(namespace, name, 0) for name in names]
                objects, said = [], []
                for grant, spec in reference_grants(route_namespace, refs, self.grant_name):
                    problems = self.schema.problems("ReferenceGrant", spec)
                    if problems:
                        said.append(Note(f"ReferenceGrant {grant} left out: {'; '.join(problems)}", "NotConverted"))
                        continue
                    objects.append(DesiredObject(StoredReferenceGrant, grant, self.labels, CanonicalSpec.of(spec)))
                made = (tuple(objects), tuple(said))
            memo[key] = made
            warnings += made[1]
            yield from made[0]
        self._grant_memo = memo


def _key(item: DesiredObject) -> ObjectKey:
    return item.key


def _note(text: str, proxy: ObjectKey, virtual_host: VirtualHost) -> Note:
    return Note(text, "NotConverted", None, {"proxy": str(proxy), "virtualHost": virtual_host.name})
