"""Upstreams in, changes of proxy plans out: every configured Proxy, its listeners, and the strategies that fill them.

A `Translator` belongs to one controller and remembers, per strategy, what each upstream gave last time. It is
told which upstreams may have changed and answers what each listener now gets from them: a per-upstream
strategy runs again only for an upstream that is not the very same immutable object as before, a whole-set
strategy only when one of the upstreams it sees changed, so a pass costs what changed. What it remembers
changes only in `commit`, once the rest of the pass succeeded: a strategy that fails leaves it as it was.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from proxycontroller.config import ControllerConfig, ProxySettings
from proxycontroller.model.proxy import Listener, SslConfig, VirtualHost
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.translate.api import Skip, sources_of
from proxycontroller.translate.plan import SourcedVirtualHost
from proxycontroller.translate.registry import ResolvedStrategy, StrategyRegistry
from proxycontroller.translate.selection import Selection, shard_of
from proxycontroller.translate.targets import kube_destinations
from proxycontroller.translate.templates import TemplateError

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "proxycontroller"
INSTANCE_LABEL = "app.kubernetes.io/instance"

# Where a listener's virtual hosts come from, in the order they are listed: the index of the strategy in the
# listener, then the upstream's key (sorted by namespace, then name), or WHOLE for a whole-set strategy.
Position = tuple[int, ObjectKey]
WHOLE = ObjectKey("", "")

# What one upstream gave a per-upstream strategy: its virtual hosts, or the reason it was skipped; and with
# the upstream it was made from, as remembered.
Outcome = tuple[SourcedVirtualHost, ...] | str
Memo = tuple[Upstream, Outcome]
# What a whole-set strategy made of the upstreams it saw: its virtual hosts and its skip warnings.
WholeOutcome = tuple[tuple[SourcedVirtualHost, ...], tuple[str, ...]]
# What changed for one strategy of a listener: a per-upstream one's new outcomes by upstream (None: the
# upstream is gone), in key order; a whole-set one's new outcome, or None if it did not run again.
StrategyChanges = dict[ObjectKey, Memo | None] | WholeOutcome | None


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
        # Per strategy: a per-upstream one's outcome by upstream (with the upstream it was made from), or a
        # whole-set one's last outcome.
        self.each: list[dict[ObjectKey, Memo]] = [{} for _ in strategies]
        self.whole: list[WholeOutcome] = [((), ()) for _ in strategies]


class _ProxyBlueprint:
    def __init__(
        self, key: ObjectKey, selection: Selection, shard: tuple[int, int], listeners: tuple[_ListenerBlueprint, ...]
    ):
        self.key = key
        self.selection = selection
        self.namespaces = selection.namespaces
        self.shard, self.shards = shard  # this Proxy's shard, of how many (0 of 1: not sharded)
        self.listeners = listeners
        self.sees_all = any(not s.strategy.each for listener in listeners for s in listener.strategies)
        self.order: list[ObjectKey] = []  # the keys it routes, sorted: kept only if a whole-set strategy needs them


class Translation:
    """What one pass changes: `changes[proxy][listener][strategy]`. The translator remembers it once committed."""

    def __init__(self, upstreams: Mapping[ObjectKey, Upstream]) -> None:
        self.upstreams = upstreams
        self.changes: list[list[list[StrategyChanges]]] = []
        # Per proxy: for each changed key it may route, why the upstream is left out before any strategy sees
        # it (an annotation it cannot read), or None.
        self.selection: list[dict[ObjectKey, str | None]] = []
        self.orders: list[tuple[_ProxyBlueprint, list[ObjectKey]]] = []  # for proxies with a whole-set strategy


class Translator:
    """Resolves the configuration's strategies once (raising StrategyError naming the key), then translates
    changes. Not thread-safe: the engine runs one translation at a time."""

    def __init__(self, config: ControllerConfig, registry: StrategyRegistry) -> None:
        self.labels = managed_labels(config.instance)
        self._proxies = tuple(
            shard for index, proxy in enumerate(config.proxies) for shard in _blueprints(config, index, proxy, registry)
        )
        self.upstreams: Mapping[ObjectKey, Upstream] = {}  # what the last committed translation saw
        # The strategy running now: read by the engine (another thread) to name a strategy past its budget.
        self.progress = "starting"

    @property
    def strategies(self) -> tuple[ResolvedStrategy, ...]:
        return tuple(s for proxy in self._proxies for listener in proxy.listeners for s in listener.strategies)

    @property
    def plans(self) -> tuple[tuple[ObjectKey, tuple[Listener, ...]], ...]:
        """Each Proxy's key and its listeners (without virtual hosts), in the configuration's order."""
        return tuple((proxy.key, tuple(b.listener for b in proxy.listeners)) for proxy in self._proxies)

    def translate(self, upstreams: Mapping[ObjectKey, Upstream], changed: Collection[ObjectKey]) -> Translation:
        """What changes when the upstreams become `upstreams`, where only the `changed` keys may hold another
        object than in the last committed translation (added, replaced or removed). Raises StrategyFailure."""
        translation = Translation(upstreams)
        keys = sorted(changed)
        shards: dict[int, dict[ObjectKey, int]] = {}  # computed once per key for all the shards of a Proxy
        for proxy in self._proxies:
            mine = keys if proxy.namespaces is None else [k for k in keys if k.namespace in proxy.namespaces]
            per_listener: list[list[StrategyChanges]] = []
            translation.changes.append(per_listener)
            skipped: dict[ObjectKey, str | None] = {}
            translation.selection.append(skipped)
            if not mine:
                per_listener.extend([None] * len(b.strategies) for b in proxy.listeners)
                continue
            selected = _selected(proxy, mine, upstreams, skipped, shards.setdefault(proxy.shards, {}))
            order = proxy.order
            if proxy.sees_all:
                order = _reordered(order, mine, selected)
                translation.orders.append((proxy, order))
            for blueprint in proxy.listeners:
                found: list[StrategyChanges] = []
                for position, resolved in enumerate(blueprint.strategies):
                    self.progress = f"running {resolved.describe()}"
                    if resolved.strategy.each:
                        found.append(_changes_each(resolved, blueprint.each[position], mine, selected, upstreams))
                    else:
                        found.append(_run_all(resolved, tuple(map(upstreams.__getitem__, order)), upstreams))
                per_listener.append(found)
        self.progress = "translated"
        return translation

    def commit(self, translation: Translation) -> None:
        """Remember what `translation` made: the next one is relative to it."""
        for proxy, per_listener in zip(self._proxies, translation.changes, strict=True):
            for blueprint, found in zip(proxy.listeners, per_listener, strict=True):
                for position, changes in enumerate(found):
                    if isinstance(changes, dict):
                        memo = blueprint.each[position]
                        memo.update(changes)  # type: ignore[arg-type]  # the None entries go next
                        for key in [key for key, entry in changes.items() if entry is None]:
                            del memo[key]
                    elif changes is not None:
                        blueprint.whole[position] = changes
        for proxy, order in translation.orders:
            proxy.order = order
        self.upstreams = translation.upstreams

    def forget(self) -> None:
        """Start over: the next translation is told every upstream as changed."""
        for proxy in self._proxies:
            proxy.order = []
            for blueprint in proxy.listeners:
                blueprint.each = [{} for _ in blueprint.strategies]
                blueprint.whole = [((), ()) for _ in blueprint.strategies]
        self.upstreams = {}


def _selected(
    proxy: _ProxyBlueprint,
    keys: list[ObjectKey],
    upstreams: Mapping[ObjectKey, Upstream],
    skipped: dict[ObjectKey, str | None],
    shards: dict[ObjectKey, int],
) -> Mapping[ObjectKey, Upstream]:
    """Of the `keys` (changed, in the proxy's namespaces), the upstreams the proxy routes; what it cannot read
    of an upstream's annotation goes to `skipped`, each key's entry None otherwise. A key not in the answer is,
    for this proxy, an upstream removed: one that changed so it is no longer selected leaves its routes."""
    selection = proxy.selection
    # The keys are in the proxy's namespaces already: without a selector or excludes, nothing more to match.
    matches = None if selection.selector is None and not selection.exclude else selection.matches
    found: dict[ObjectKey, Upstream] = {}
    for key in keys:
        skipped[key] = None
        upstream = upstreams.get(key)
        if upstream is None or (matches is not None and not matches(upstream)):
            continue
        if proxy.shards > 1:
            shard = shards.get(key)
            if shard is None:
                shard = shards[key] = shard_of(key, proxy.shards)
            if shard != proxy.shard:
                continue
        exposed = selection.exposed(upstream)
        if exposed is True:
            found[key] = upstream
        elif exposed is not False:
            skipped[key] = exposed
    return found


def _changes_each(
    resolved: ResolvedStrategy,
    memo: Mapping[ObjectKey, Memo],
    keys: list[ObjectKey],
    upstreams: Mapping[ObjectKey, Upstream],
    targets: Mapping[ObjectKey, Upstream],
) -> dict[ObjectKey, Memo | None]:
    """A per-upstream strategy's new outcomes for the `keys` (sorted) whose upstream is not the one it saw;
    `targets`: every upstream of the pass (Service targets among them get `kube` destinations)."""
    changes: dict[ObjectKey, Memo | None] = {}
    for key in keys:
        upstream = upstreams.get(key)
        known = memo.get(key)
        if upstream is None:
            if known is not None:
                changes[key] = None
        elif known is None or known[0] is not upstream:
            changes[key] = (upstream, _call_each(resolved, upstream, targets))
    return changes


def _reordered(
    order: list[ObjectKey], changed: list[ObjectKey], upstreams: Mapping[ObjectKey, Upstream]
) -> list[ObjectKey]:
    """`order` (sorted keys) after the `changed` keys (sorted) were added, replaced or removed: a new list."""
    if len(changed) * 8 > len(order):
        gone = {key for key in changed if key not in upstreams}
        kept = [key for key in order if key not in gone] if gone else list(order)
        added = [key for key in changed if key in upstreams and not _holds(order, key)]
        return sorted(kept + added)  # two sorted runs: merged in linear time
    order = list(order)
    for key in changed:
        present = _holds(order, key)
        if key in upstreams and not present:
            insort(order, key)
        elif key not in upstreams and present:
            del order[bisect_left(order, key)]
    return order


def _holds(order: list[ObjectKey], key: ObjectKey) -> bool:
    at = bisect_left(order, key)
    return at < len(order) and order[at] == key


def _call_each(resolved: ResolvedStrategy, upstream: Upstream, targets: Mapping[ObjectKey, Upstream]) -> Outcome:
    try:
        returned = resolved.strategy.function(upstream, resolved.options)
        returned = list(returned) if isinstance(returned, Iterator) else returned  # a generator runs here
    except (Skip, TemplateError) as skip:
        return f"{resolved.strategy.describe()}: left out {upstream.describe()}: {skip}"
    except Exception as exc:
        raise StrategyFailure(
            f"{resolved.describe()} failed for {upstream.describe()}: {type(exc).__name__}: {exc}"
        ) from exc
    hosts = returned if not isinstance(returned, VirtualHost) else (returned,)
    context = f"for Upstream {upstream.key}"
    return tuple(_sourced(resolved, host, context, targets, upstream.key) for host in _iterable(resolved, hosts))


def _run_all(
    resolved: ResolvedStrategy, upstreams: tuple[Upstream, ...], targets: Mapping[ObjectKey, Upstream]
) -> WholeOutcome:
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
            which = item.upstream.describe() if item.upstream is not None else "an input"
            skipped.append(f"{resolved.strategy.describe()}: left out {which}: {item.reason}")
        else:
            made.append(_sourced(resolved, item, "", targets))
    return tuple(made), tuple(skipped)


def _iterable(resolved: ResolvedStrategy, returned: Any) -> Iterable[Any]:
    if isinstance(returned, str | bytes | dict) or not isinstance(returned, Iterable):
        raise StrategyFailure(
            f"{resolved.describe()} returned {type(returned).__name__}; expected virtual hosts (a list of VirtualHost)"
        )
    return returned


def _sourced(
    resolved: ResolvedStrategy,
    item: Any,
    context: str,
    targets: Mapping[ObjectKey, Upstream],
    made_for: ObjectKey | None = None,
) -> SourcedVirtualHost:
    """The virtual host with the upstreams it routes to; one that routes to none (a redirect) is named after
    the upstream a per-upstream strategy made it for, so a warning about it still names an upstream. Routes
    to a Service target go to Gloo's `kube` destination (`targets.kube_destinations`)."""
    if not isinstance(item, VirtualHost):
        raise StrategyFailure(
            f"{resolved.describe()} returned a {type(item).__name__} {context}".rstrip()
            + "; expected proxycontroller.VirtualHost"
        )
    sources = sources_of(item)
    if not sources and made_for is not None:
        sources = (made_for,)
    return kube_destinations(SourcedVirtualHost(item, sources), targets)


def _blueprints(
    config: ControllerConfig, index: int, proxy: ProxySettings, registry: StrategyRegistry
) -> list[_ProxyBlueprint]:
    """The Proxy's blueprint, or one per shard: each with its own listeners' memos."""
    made = []
    for shard, name in enumerate(proxy.shard_names):
        key = ObjectKey(proxy.namespace, name)
        selection = Selection.of(f"Proxy {key}", proxy, config.namespaces_of(proxy))
        listeners = _listeners(index, proxy, shard, registry)
        made.append(_ProxyBlueprint(key, selection, (shard, proxy.shards), listeners))
    return made


def _listeners(
    index: int, proxy: ProxySettings, shard: int, registry: StrategyRegistry
) -> tuple[_ListenerBlueprint, ...]:
    listeners = []
    for position, settings in enumerate(proxy.listeners):
        where = f"proxies[{index}].listeners[{position}]"
        listener = Listener(
            name=settings.name,
            bind_address=settings.bind_address,
            bind_port=proxy.shard_port(settings, shard),
            ssl_configurations=tuple(SslConfig.model_validate(ssl) for ssl in settings.ssl_configurations) or None,
        )
        strategies = tuple(
            registry.resolve(strategy, f"{where}.strategies[{k}]") for k, strategy in enumerate(settings.strategies)
        )
        listeners.append(_ListenerBlueprint(listener, strategies))
    return tuple(listeners)
