"""Snapshot in, proxy plans out: every configured Proxy, its listeners, and the strategies that fill them.

A `Translator` belongs to one controller and remembers, per strategy, what each upstream gave last time:
an upstream that did not change (the very same immutable object in the snapshot) is not translated again, so
a pass costs what changed. The result depends on the snapshot and the configuration only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from proxycontroller.config import ControllerConfig, ProxySettings
from proxycontroller.model.proxy import Listener, SslConfig, VirtualHost
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.api import Skip, sources_of
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost
from proxycontroller.translate.registry import ResolvedStrategy, StrategyRegistry
from proxycontroller.translate.templates import TemplateError

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "proxycontroller"
INSTANCE_LABEL = "app.kubernetes.io/instance"

# What one upstream gave a per-upstream strategy: its virtual hosts, or the reason it was skipped.
_Outcome = tuple[SourcedVirtualHost, ...] | str


class StrategyFailure(Exception):
    """A strategy raised or returned something that is not virtual hosts: the whole pass fails, so that the
    last good objects stay (a bug that hit every upstream must not write an empty Proxy)."""


def managed_labels(instance: str) -> dict[str, str]:
    """The labels that mark an object as this controller's. Never `created_by: gloo-gateway`: Gloo deletes those."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, INSTANCE_LABEL: instance}


class _ListenerBlueprint:
    def __init__(self, listener: Listener, strategies: tuple[ResolvedStrategy, ...]) -> None:
        self.listener = listener
        self.strategies = strategies


class _ProxyBlueprint:
    def __init__(self, settings: ProxySettings, namespaces: tuple[str, ...], listeners: tuple[_ListenerBlueprint, ...]):
        self.key = ObjectKey(settings.namespace, settings.name)
        self.namespaces = None if "*" in namespaces else frozenset(namespaces)
        self.listeners = listeners


class Translator:
    """Resolves the configuration's strategies once (raising StrategyError naming the key), then translates
    snapshots. Not thread-safe: the engine runs one translation at a time."""

    def __init__(self, config: ControllerConfig, registry: StrategyRegistry) -> None:
        self.labels = managed_labels(config.instance)
        self._proxies = tuple(_blueprint(config, index, proxy, registry) for index, proxy in enumerate(config.proxies))
        self._each_memo: dict[str, dict[ObjectKey, tuple[Upstream, _Outcome]]] = {}
        self._all_memo: dict[str, tuple[tuple[Upstream, ...], tuple[SourcedVirtualHost, ...], tuple[str, ...]]] = {}
        self._sorted: tuple[frozenset[ObjectKey], list[ObjectKey]] = (frozenset(), [])
        # The strategy running now: read by the engine (another thread) to name a strategy past its budget.
        self.progress = "starting"

    @property
    def strategies(self) -> tuple[ResolvedStrategy, ...]:
        return tuple(s for proxy in self._proxies for listener in proxy.listeners for s in listener.strategies)

    def translate(self, snapshot: Snapshot) -> tuple[list[ProxyPlan], list[str]]:
        upstreams = snapshot.upstreams
        keys = self._sorted_keys(upstreams)
        warnings: list[str] = []
        each_memo: dict[str, dict[ObjectKey, tuple[Upstream, _Outcome]]] = {}
        all_memo: dict[str, tuple[tuple[Upstream, ...], tuple[SourcedVirtualHost, ...], tuple[str, ...]]] = {}
        plans = []
        for proxy in self._proxies:
            selected = keys if proxy.namespaces is None else [k for k in keys if k.namespace in proxy.namespaces]
            listeners = []
            for blueprint in proxy.listeners:
                hosts: list[SourcedVirtualHost] = []
                for resolved in blueprint.strategies:
                    self.progress = f"running {resolved.describe()}"
                    if resolved.strategy.each:
                        memo = self._each_memo.get(resolved.where, {})
                        fresh = each_memo.setdefault(resolved.where, {})
                        self._run_each(resolved, selected, upstreams, memo, fresh, hosts, warnings)
                    else:
                        chosen = tuple(upstreams[key] for key in selected)
                        outcome = self._all_memo.get(resolved.where)
                        if outcome is None or not _same_objects(outcome[0], chosen):
                            made, skipped = _run_all(resolved, chosen)
                            outcome = (chosen, made, skipped)
                        all_memo[resolved.where] = outcome
                        hosts.extend(outcome[1])
                        warnings.extend(outcome[2])
                listeners.append(ListenerPlan(blueprint.listener, tuple(hosts)))
            plans.append(ProxyPlan(proxy.key, self.labels, tuple(listeners)))
        self._each_memo, self._all_memo = each_memo, all_memo  # only what this snapshot still has
        self.progress = "translated"
        return plans, warnings

    def _sorted_keys(self, upstreams: Mapping[ObjectKey, Upstream]) -> list[ObjectKey]:
        """Sorted by namespace, then name; the sort is redone only when the set of keys changed."""
        known, ordered = self._sorted
        if upstreams.keys() != known:
            ordered = sorted(upstreams)
            self._sorted = (frozenset(ordered), ordered)
        return ordered

    @staticmethod
    def _run_each(
        resolved: ResolvedStrategy,
        keys: Sequence[ObjectKey],
        upstreams: Mapping[ObjectKey, Upstream],
        memo: dict[ObjectKey, tuple[Upstream, _Outcome]],
        fresh: dict[ObjectKey, tuple[Upstream, _Outcome]],
        hosts: list[SourcedVirtualHost],
        warnings: list[str],
    ) -> None:
        for key in keys:
            upstream = upstreams[key]
            known = memo.get(key)
            outcome = known[1] if known is not None and known[0] is upstream else _call_each(resolved, upstream)
            fresh[key] = (upstream, outcome)
            if isinstance(outcome, str):
                warnings.append(outcome)
            else:
                hosts.extend(outcome)


def _same_objects(a: tuple[Upstream, ...], b: tuple[Upstream, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _call_each(resolved: ResolvedStrategy, upstream: Upstream) -> _Outcome:
    try:
        returned = resolved.strategy.function(upstream, resolved.options)
        returned = list(returned) if isinstance(returned, Iterator) else returned  # a generator runs here
    except (Skip, TemplateError) as skip:
        return f"{resolved.strategy.describe()}: left out Upstream {upstream.key}: {skip}"
    except Exception as exc:
        raise StrategyFailure(
            f"{resolved.describe()} failed for Upstream {upstream.key}: {type(exc).__name__}: {exc}"
        ) from exc
    hosts = returned if not isinstance(returned, VirtualHost) else (returned,)
    return tuple(_sourced(resolved, host, f"for Upstream {upstream.key}") for host in _iterable(resolved, hosts))


def _run_all(
    resolved: ResolvedStrategy, upstreams: tuple[Upstream, ...]
) -> tuple[tuple[SourcedVirtualHost, ...], tuple[str, ...]]:
    try:
        returned = resolved.strategy.function(upstreams, resolved.options)
        items = list(_iterable(resolved, returned))
    except StrategyFailure:
        raise
    except Exception as exc:
        raise StrategyFailure(f"{resolved.describe()} failed: {type(exc).__name__}: {exc}") from exc
    made, skipped = [], []
    for item in items:
        if isinstance(item, Skip):
            which = f"Upstream {item.upstream.key}" if item.upstream is not None else "an input"
            skipped.append(f"{resolved.strategy.describe()}: left out {which}: {item.reason}")
        else:
            made.append(_sourced(resolved, item, ""))
    return tuple(made), tuple(skipped)


def _iterable(resolved: ResolvedStrategy, returned: Any) -> Iterable[Any]:
    if isinstance(returned, str | bytes | dict) or not isinstance(returned, Iterable):
        raise StrategyFailure(
            f"{resolved.describe()} returned {type(returned).__name__}; expected virtual hosts (a list of VirtualHost)"
        )
    return returned


def _sourced(resolved: ResolvedStrategy, item: Any, context: str) -> SourcedVirtualHost:
    if not isinstance(item, VirtualHost):
        raise StrategyFailure(
            f"{resolved.describe()} returned a {type(item).__name__} {context}".rstrip()
            + "; expected proxycontroller.VirtualHost"
        )
    return SourcedVirtualHost(item, sources_of(item))


def _blueprint(
    config: ControllerConfig, index: int, proxy: ProxySettings, registry: StrategyRegistry
) -> _ProxyBlueprint:
    listeners = []
    for position, settings in enumerate(proxy.listeners):
        where = f"proxies[{index}].listeners[{position}]"
        listener = Listener(
            name=settings.name,
            bind_address=settings.bind_address,
            bind_port=settings.bind_port,
            ssl_configurations=tuple(SslConfig.model_validate(ssl) for ssl in settings.ssl_configurations) or None,
        )
        strategies = tuple(
            registry.resolve(strategy, f"{where}.strategies[{k}]") for k, strategy in enumerate(settings.strategies)
        )
        listeners.append(_ListenerBlueprint(listener, strategies))
    return _ProxyBlueprint(proxy, config.namespaces_of(proxy), tuple(listeners))
