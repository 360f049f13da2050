"""The logic the engine runs: snapshot in, desired Proxies (as canonical JSON bytes) and warnings out.

Translate, then validate, then serialize by splicing, each kept from pass to pass so that a pass costs what
changed: the upstreams that differ from the last snapshot are found (from the snapshot's hint when it follows
the last one, else by identity), only they are translated again, only the virtual hosts they make are checked
and serialized, admission is decided again only where they can change it (`validate.admission`), and each
listener keeps its admitted virtual hosts' bytes in order, so a Proxy's spec is one join, and Gloo's compressed
form of it recompresses only the chunks of virtual hosts a change touched (`validate.deflated`; made whether
or not the engine writes it compressed: ~0.5 ms a pass at 50k virtual hosts). The spec is the same as a fresh
`ProxyLogic` would give for the snapshot. The memos live in this object, one per controller,
never in module globals.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from operator import attrgetter

import msgspec

from proxycontroller.config import SERVICES, UPSTREAMS, ControllerConfig
from proxycontroller.model.canonical import CanonicalSpec, canonical_json, compress
from proxycontroller.model.desired import Desired, DesiredObject, Note
from proxycontroller.model.proxy import Listener, VirtualHost
from proxycontroller.model.resources import ObjectKey, Resource, Service, StoredProxy, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.route_targets import RouteTargets
from proxycontroller.translate.translator import WHOLE, Position, StrategyChanges, Translator
from proxycontroller.validate.admission import Admission, Candidate
from proxycontroller.validate.deflated import Chunks, Deflated, compressed_text, deflate
from proxycontroller.validate.ordered import OrderedRuns, Place
from proxycontroller.validate.rules import (
    CLEAN,
    Verdict,
    admit_listeners,
    check_virtual_host,
    direct_response_limit,
    one_line,
    proxy_where,
)

_HOSTS_MARK = "\x00virtual-hosts\x00"  # stands for the joined virtual hosts in a listener's envelope
_HOSTS_MARK_JSON = msgspec.json.encode(_HOSTS_MARK)

# Past this share of a listener's positions changed, deciding admission anew costs less than deciding again
# around each change.
_REBUILD_SHARE = 4

_name = attrgetter("name")


class ProxyLogic:
    """Upstreams (and Services, if a source) to Proxies. `desired` is a function of the snapshot (and the
    configuration) only."""

    output_kinds = (StoredProxy,)

    def __init__(self, config: ControllerConfig, registry: StrategyRegistry | None = None) -> None:
        kinds: dict[str, type[Resource]] = {UPSTREAMS: Upstream, SERVICES: Service}
        self.input_kinds: tuple[type[Resource], ...] = tuple(kinds[source] for source in config.sources)
        # Services: their ports become route targets beside the Upstreams (translate.targets).
        self._targets = RouteTargets() if SERVICES in config.sources else None
        self._target_notes: tuple[Note, ...] = ()
        self.translator = Translator(config, registry or StrategyRegistry.discover())
        self._proxies = tuple(
            _ProxyState(key, listeners, self.translator.labels) for key, listeners in self.translator.plans
        )
        self._generation: object = None  # the last snapshot this logic answered for
        self._desired: Desired | None = None

    @property
    def progress(self) -> str:
        """What it is doing now (for the engine to name what ran past its time budget)."""
        return self.translator.progress

    def desired(self, snapshot: Snapshot) -> Desired:
        upstreams: Mapping[ObjectKey, Upstream] = snapshot.upstreams
        merged: Collection[ObjectKey] | None = None
        if self._targets is not None:
            upstreams, merged, notes = self._merge(snapshot, upstreams)
            if notes != self._target_notes:
                self._target_notes = notes
                self._desired = None
        changed = merged if merged is not None else self._changed(snapshot, upstreams, self._targets is None)
        if changed or self._desired is None:
            try:
                translation = self.translator.translate(upstreams, changed)  # may fail: nothing remembered yet
            except BaseException:
                if self._targets is not None:
                    self._targets.forget()  # it moved on with this pass, which the translator did not take
                raise
            try:
                self.translator.commit(translation)
                for proxy, per_listener, skipped in zip(
                    self._proxies, translation.changes, translation.selection, strict=True
                ):
                    proxy.update(per_listener, skipped)
                self._desired = self._assemble()
            except BaseException:
                self._forget()  # a bug halfway through: the next pass starts over rather than build on it
                raise
        self._generation = snapshot.generation
        assert self._desired is not None
        return self._desired

    def admitted(self) -> Iterator[tuple[ObjectKey, str, tuple[VirtualHost, ...]]]:
        """After `desired`: each Proxy, each listener validation serves, and the virtual hosts admitted into it,
        in order, as written (without the routes validation left out). For another output made from them."""
        for proxy in self._proxies:
            for listener in proxy.served:
                yield proxy.key, listener.listener.name, tuple(map(_as_written, listener.admission.admitted.values))

    def _merge(
        self, snapshot: Snapshot, upstreams: Mapping[ObjectKey, Upstream]
    ) -> tuple[Mapping[ObjectKey, Upstream], Collection[ObjectKey] | None, tuple[Note, ...]]:
        """The Upstreams and the Service targets, the keys that may have changed (None: not known), warnings."""
        assert self._targets is not None
        known = self._generation is not None
        changed_upstreams = snapshot.changed_since(self._generation, Upstream) if known else None
        changed_services = snapshot.changed_since(self._generation, Service) if known else None
        return self._targets.merge(upstreams, snapshot.of_kind(Service), changed_upstreams, changed_services)

    def _changed(
        self, snapshot: Snapshot, upstreams: Mapping[ObjectKey, Upstream], use_hint: bool = True
    ) -> Collection[ObjectKey]:
        """The keys whose upstream is not the very same object as in the last snapshot answered for."""
        previous = self.translator.upstreams
        hinted = None
        if use_hint and self._generation is not None:
            hinted = snapshot.changed_since(self._generation, Upstream)
        if hinted is not None:
            changed = [key for key in hinted if previous.get(key) is not upstreams.get(key)]
            added = sum(key not in previous for key in changed)
            removed = sum(key not in upstreams for key in changed)
            if len(previous) + added - removed == len(upstreams):  # a hint that missed an addition is not used
                return changed
        get = previous.get
        changed = [key for key, upstream in upstreams.items() if get(key) is not upstream]
        changed.extend(previous.keys() - upstreams.keys())
        return changed

    def _assemble(self) -> Desired:
        warnings: list[str] = list(self._target_notes)
        for proxy in self._proxies:
            warnings += proxy.skips.values
            for listener in proxy.listeners:
                warnings += listener.skips.values
        for proxy in self._proxies:
            said = list(proxy.warnings)
            for listener in proxy.served:
                said += listener.admission.warnings.values
            warnings += proxy.noted(said)
        return Desired(tuple(proxy.desired() for proxy in self._proxies), tuple(warnings))

    def _forget(self) -> None:
        self.translator.forget()
        if self._targets is not None:
            self._targets.forget()
        self._proxies = tuple(_ProxyState(p.key, p.listener_models, p.labels) for p in self._proxies)
        self._generation = None
        self._desired = None


class _ProxyState:
    """One Proxy: its listeners' states, what validation says of its listeners, its last desired object."""

    def __init__(self, key: ObjectKey, listeners: tuple[Listener, ...], labels: Mapping[str, str]) -> None:
        self.key = key
        self.labels = labels
        self.listener_models = listeners
        plan = ProxyPlan(key, labels, tuple(ListenerPlan(listener, ()) for listener in listeners))
        where = proxy_where(plan)
        said: list[str] = []
        served = {id(p.listener) for p in admit_listeners(where, plan.listeners, said)}
        self.warnings = tuple(said)  # listeners left out: they depend on the configuration only
        self._notes: dict[str, Note] = {}  # validation's warnings as Notes, from the last pass that had some
        self.listeners = tuple(
            _ListenerState(f"{where} listener {listener.name!r}", listener, id(listener) in served, key)
            for listener in listeners
        )
        self.served = tuple(listener for listener in self.listeners if listener.served)
        # What the spec holds around the listeners' virtual hosts, deflated once: per listener served, what
        # comes before its first virtual host and after its last.
        self._around = [
            (
                deflate((b'{"listeners":[' if index == 0 else b",") + listener.envelope[0]),
                deflate(listener.envelope[1] + (b"]}" if index == len(self.served) - 1 else b"")),
            )
            for index, listener in enumerate(self.served)
        ]
        self._object: DesiredObject | None = None
        self.skips: OrderedRuns[Note] = OrderedRuns()  # upstreams its selection left out, and why, by key

    def noted(self, warnings: list[str]) -> list[Note]:
        """Validation's warnings (what it left out of this Proxy) as Notes regarding it; made once per text,
        kept while the text is still said, so a pass costs a lookup per warning, not an object."""
        if not warnings and not self._notes:
            return []
        known, subjects = self._notes, {"proxy": str(self.key)}
        notes = {text: known.get(text) or Note(text, "VirtualHostLeftOut", self.key, subjects) for text in warnings}
        self._notes = notes
        return [notes[text] for text in warnings]

    def update(self, per_listener: Sequence[list[StrategyChanges]], skipped: Mapping[ObjectKey, str | None]) -> None:
        if skipped and (self.skips or any(skipped.values())):
            for key, reason in skipped.items():
                note = () if reason is None else (_skip_note(self.key, key, one_line(reason)),)
                self.skips.put((key,), note)
        for listener, found in zip(self.listeners, per_listener, strict=True):
            if listener.update(found) and listener.served:
                self._object = None

    def desired(self) -> DesiredObject:
        if self._object is None:
            # The spec is 10 MB at 50k virtual hosts, and each copy of it costs: it is made in one join. The
            # commas between virtual hosts are also those between listeners, so each listener's envelope is
            # glued to its first and last virtual host, and one b",".join of the lot is the spec.
            elements: list[bytes] = []
            for listener in self.served:
                before, after = listener.envelope
                hosts = listener.admission.data.values
                if not hosts:
                    elements.append(before + after)
                elif len(hosts) == 1:
                    elements.append(before + hosts[0] + after)
                else:
                    elements.append(before + hosts[0])
                    elements += hosts[1:-1]
                    elements.append(hosts[-1] + after)
            if elements:
                elements[0] = b'{"listeners":[' + elements[0]
                elements[-1] += b"]}"
            json = b",".join(elements) if elements else b'{"listeners":[]}'
            spec = CanonicalSpec(json=json, compressed=self._compressed() if elements else compress(json))
            parts = _Parts(
                {listener.listener.name: list(listener.admission.admitted.values) for listener in self.served}
            )
            self._object = DesiredObject(StoredProxy, self.key, self.labels, spec, parts)
        return self._object

    def _compressed(self) -> str:
        """Gloo's compressed form of the spec, from the deflated pieces each listener keeps (`deflated`)."""
        pieces: list[Deflated] = []
        for listener, (before, after) in zip(self.served, self._around, strict=True):
            pieces.append(before)
            pieces += listener.deflated()
            pieces.append(after)
        return compressed_text(pieces)


class _Parts(Mapping[str, tuple[str, ...]]):
    """The names of the virtual hosts each listener holds, made only when asked (for a log line when the
    Proxy is written): a tuple of 50k names per pass would be work for nothing."""

    def __init__(self, admitted: dict[str, list[Candidate]]) -> None:
        self._admitted = admitted
        self._names: dict[str, tuple[str, ...]] = {}

    def __getitem__(self, listener: str) -> tuple[str, ...]:
        names = self._names.get(listener)
        if names is None:
            names = self._names[listener] = tuple(map(_name, self._admitted[listener]))
        return names

    def __iter__(self) -> Iterator[str]:
        return iter(self._admitted)

    def __len__(self) -> int:
        return len(self._admitted)


class _ListenerState:
    """A listener's virtual hosts by position, as the last pass left them; its admission; its JSON."""

    def __init__(self, where: str, listener: Listener, served: bool, proxy: ObjectKey) -> None:
        self.where = where
        self.proxy = proxy
        self.listener = listener
        self.served = served  # False: validation left the listener out; its virtual hosts are not written
        self.body_limit = direct_response_limit(listener)
        self.groups: dict[Position, tuple[Candidate, ...]] = {}
        self.skips: OrderedRuns[Note] = OrderedRuns()  # what translation left out, in order
        self.admission = Admission(where)
        self.envelope = _envelope(listener)  # its canonical JSON before and after its virtual hosts
        self.chunks = Chunks()  # its virtual hosts' JSON, deflated in chunks

    def update(self, found: list[StrategyChanges]) -> bool:
        """Take in what changed for each strategy (in order); True if anything did."""
        count = sum(0 if changes is None else len(changes) if isinstance(changes, dict) else 1 for changes in found)
        if not count:
            return False
        rebuild = count * _REBUILD_SHARE > len(self.groups)
        first = not self.groups  # then the changes come in the listener's order, and so do the groups
        removed: list[Candidate] = []
        added: list[Candidate] = []
        for strategy, changes in enumerate(found):
            if isinstance(changes, dict):
                for key, memo in changes.items():
                    outcome = () if memo is None else memo[1]
                    if isinstance(outcome, str):
                        self._place((strategy, key), (), (outcome,), removed, added, rebuild)
                    else:
                        self._place((strategy, key), outcome, (), removed, added, rebuild)
            elif changes is not None:
                self._place((strategy, WHOLE), changes[0], changes[1], removed, added, rebuild)
        if self.served:
            if rebuild:
                if not first:
                    self.groups = {position: self.groups[position] for position in sorted(self.groups)}
                self.admission.rebuild([candidate for candidates in self.groups.values() for candidate in candidates])
            else:
                self.admission.update(removed, added)
        return True

    def _place(
        self,
        position: Position,
        hosts: tuple[SourcedVirtualHost, ...],
        skipped: tuple[str, ...],
        removed: list[Candidate],
        added: list[Candidate],
        rebuild: bool,
    ) -> None:
        """What `position` holds now: its virtual hosts (checked and serialized) and its skip warnings."""
        if skipped or self.skips:  # nothing to say, and nothing said before: nothing to change
            # A strategy's reason names the upstream, whose name may hold a newline: one warning, one line.
            self.skips.put(position, tuple(_skip_note(self.proxy, position[1], one_line(reason)) for reason in skipped))
        if not self.served:
            return
        before = self.groups.pop(position, ())
        if not rebuild:
            removed.extend(before)
        if not hosts:
            return
        known = {id(c.host.virtual_host): c for c in before} if before else None
        made = []
        place: Place = position  # a first virtual host's place is its position: one tuple fewer per host
        for index, host in enumerate(hosts):
            if index:
                place = (*position, index)
            virtual_host = host.virtual_host
            same = known.get(id(virtual_host)) if known else None
            if same is not None and same.host.virtual_host is virtual_host:  # made again (whole-set): known
                verdict, data = same.verdict, same.data
            else:
                verdict, data = _serialize(virtual_host)
            made.append(Candidate(place, host, verdict, data, self.body_limit))
        candidates = self.groups[position] = tuple(made)
        if not rebuild:
            added.extend(candidates)

    def deflated(self) -> list[Deflated]:
        """The admitted virtual hosts' JSON (joined by commas) in deflated chunks; only what changed since the
        last call is compressed again."""
        admission, chunks = self.admission, self.chunks
        rebuilt, touched = admission.take_changes()
        if rebuilt:
            chunks.reset(admission.data.places)
        for place in touched:
            chunks.touch(place)
        return chunks.deflated(admission.data.places, admission.data.values)


def _skip_note(proxy: ObjectKey, upstream: ObjectKey, text: str) -> Note:
    """An upstream left out of `proxy` (by its selection, or by a strategy), as a Note naming both; WHOLE: a
    whole-set strategy's skip, which names no one upstream."""
    subjects = {"proxy": str(proxy)}
    if upstream != WHOLE:
        subjects["upstream"] = str(upstream)
    return Note(text, "UpstreamSkipped", proxy, subjects)


def _as_written(candidate: Candidate) -> VirtualHost:
    """The virtual host as the Proxy holds it: the strategy's own, or (when validation left routes out of it)
    the model of what is written."""
    if candidate.verdict is CLEAN:
        return candidate.host.virtual_host
    return VirtualHost.model_validate_json(candidate.data)


def _serialize(virtual_host: VirtualHost) -> tuple[Verdict, bytes]:
    """What validation makes of the virtual host on its own, and the canonical JSON of what is written of it.
    Checked as the JSON Gloo reads, then that JSON written: nothing for a virtual host left out."""
    verdict = check_virtual_host(virtual_host)
    return verdict.kept(), b"" if verdict.document is None else canonical_json(verdict.document)


def _envelope(listener: Listener) -> tuple[bytes, bytes]:
    """The listener's canonical JSON around its virtual hosts: what comes before the list and after it."""
    envelope = msgspec.json.decode(listener.model_copy(update={"http_listener": None}).to_json_bytes())
    envelope["httpListener"] = {"virtualHosts": _HOSTS_MARK}
    before, _, after = canonical_json(envelope).partition(_HOSTS_MARK_JSON)
    return before + b"[", b"]" + after
