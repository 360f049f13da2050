"""A pass costs what changed: the snapshot says what changed, the logic looks at that alone, admission decides
again only where a change can alter a decision, and the caches record what they touched."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import proxycontroller as pc
from proxycontroller.config import ControllerConfig
from proxycontroller.model.canonical import CanonicalSpec, compress
from proxycontroller.model.desired import Desired
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.proxy import VirtualHost
from proxycontroller.model.resources import ObjectKey, StoredProxy, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.model.status import NamespacedStatuses, ResourceStatus
from proxycontroller.store.cache import ResourceCache
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES
from proxycontroller.translate.plan import SourcedVirtualHost
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.translator import StrategyFailure
from proxycontroller.validate.admission import Admission, Candidate
from proxycontroller.validate.deflated import compressed_text, deflate
from proxycontroller.validate.desired import ProxyLogic
from proxycontroller.validate.rules import CLEAN, Verdict, admit_virtual_hosts
from tests.unit.factories import kube_upstream

# -- admission: deciding again around a change is deciding anew -------------------------------------------

LIMIT = 4096
verdicts = st.sampled_from(
    [
        CLEAN,
        CLEAN,
        CLEAN,
        Verdict("has an empty domain (Gloo: EmptyDomainError)"),
        Verdict(None, None, ("left out Upstream a/b (route 1 of virtual host 'x'): it is wrong",)),
        Verdict(None, None, (), LIMIT + 1),
        Verdict(None, None, (), LIMIT),
    ]
)
# Few names and domains, differing in case (and one Envoy does not fold: the Kelvin sign), so they clash.
domain_texts = st.sampled_from(["a", "A", "b", "c.example", "C.EXAMPLE", "\u212a", "k"])
hosts = st.tuples(st.sampled_from(["x", "y", "z", "X"]), st.lists(domain_texts, min_size=1, max_size=3, unique=True))


def candidate(place: int, name: str, domains: list[str], verdict: Verdict) -> Candidate:
    if verdict is CLEAN and not all(d.isascii() for d in domains):
        verdict = Verdict(None)  # the shared clean verdict stands for ASCII domains only
    host = SourcedVirtualHost(VirtualHost(name=name, domains=tuple(domains)), (ObjectKey("ns", f"u{place}"),))
    return Candidate((place,), host, verdict, f"{place}".encode(), LIMIT)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(hosts, verdicts), max_size=12),
    st.lists(st.tuples(st.booleans(), st.integers(0, 30), hosts, verdicts), max_size=12),
)
def test_admission_kept_across_changes_decides_as_admission_anew(
    initial: list[tuple[tuple[str, list[str]], Verdict]],
    changes: list[tuple[bool, int, tuple[str, list[str]], Verdict]],
) -> None:
    held = {i: candidate(i * 2, name, domains, verdict) for i, ((name, domains), verdict) in enumerate(initial)}
    admission = Admission("here")
    admission.rebuild(held[i] for i in sorted(held))
    for remove, slot, (name, domains), verdict in changes:
        gone = [held.pop(slot)] if slot in held else []
        made = [] if remove else [candidate(slot * 2 + 1, name, domains, verdict)]
        if made:
            held[slot] = made[0]
        admission.update(gone, made)
        ordered = [held[i] for i in sorted(held, key=lambda s: held[s].place)]
        warnings: list[str] = []
        expected = admit_virtual_hosts("here", [(c.host, c.verdict) for c in ordered], warnings, LIMIT)
        assert [c.host for c in admission.admitted.values] == expected
        assert admission.data.values == [c.data for c in admission.admitted.values]
        assert admission.warnings.values == warnings


def test_a_change_decides_again_only_what_claims_a_name_or_domain_in_common_with_it() -> None:
    """Of three virtual hosts, the one that claims nothing the new one claims keeps its decision untouched."""
    a, b, c = candidate(0, "a", ["a"], CLEAN), candidate(2, "b", ["b"], CLEAN), candidate(4, "c", ["c"], CLEAN)
    admission = Admission("here")
    admission.rebuild([a, b, c])
    first = candidate(1, "first", ["B"], CLEAN)  # earlier than b, claims its domain
    admission.update([], [first])
    assert [x.name for x in admission.admitted.values] == ["a", "first", "c"]
    assert admission.warnings.values == [
        "here: left out virtual host 'b' (from Upstream ns/u2): it claims domain 'b', already served by "
        "virtual host 'first' (from Upstream ns/u1)"
    ]
    admission.update([first], [])
    assert [x.name for x in admission.admitted.values] == ["a", "b", "c"]
    assert admission.warnings.values == []


# -- the logic looks at the changed upstreams alone -----------------------------------------------------------


class Watched(Mapping[ObjectKey, Upstream]):
    """The upstreams of a snapshot, counting how the logic reads them."""

    def __init__(self, items: dict[ObjectKey, Upstream]) -> None:
        self._items = items
        self.walks = 0
        self.reads = 0

    def __getitem__(self, key: ObjectKey) -> Upstream:
        self.reads += 1
        return self._items[key]

    def __iter__(self) -> Iterator[ObjectKey]:
        self.walks += 1
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def counted_logic(calls: list[str], config: dict[str, Any] | None = None) -> ProxyLogic:
    @pc.strategy("counted")
    def counted(upstream: pc.Upstream, options: pc.NoOptions) -> pc.VirtualHost:
        calls.append(upstream.metadata.name)
        name = upstream.metadata.name
        return pc.virtual_host(name, [name], [pc.route_to(upstream)])

    registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, counted)})
    return ProxyLogic(ControllerConfig.model_validate(config or {"strategy": {"kind": "counted"}}), registry)


def test_a_pass_after_one_change_among_thousands_reads_that_upstream_alone() -> None:
    calls: list[str] = []
    logic = counted_logic(calls)
    cache = {u.key: u for u in (kube_upstream(f"svc-{i:04d}") for i in range(3000))}
    first = Snapshot.of_mappings({Upstream: dict(cache)})
    logic.desired(first)
    calls.clear()
    changed = kube_upstream("svc-1500", port=9090)
    cache[changed.key] = changed
    watched = Watched(dict(cache))
    second = first.followed_by({Upstream: watched}, {Upstream: {changed.key}})

    desired = logic.desired(second)

    assert calls == ["svc-1500"]
    assert watched.walks == 0  # no upstream but the changed one was looked at
    assert watched.reads < 10  # a few lookups of that key, not one per upstream
    fresh = counted_logic([]).desired(Snapshot.of(cache.values()))
    assert desired.objects[0].spec.json == fresh.objects[0].spec.json


def test_a_snapshot_whose_hint_is_not_about_the_last_one_answered_is_compared_in_full() -> None:
    calls: list[str] = []
    logic = counted_logic(calls)
    a, b, c, d = kube_upstream("a"), kube_upstream("b"), kube_upstream("c"), kube_upstream("d")
    seen = Snapshot.of([a, b])
    logic.desired(seen)
    # A pass that failed: never answered. b went, c came.
    unseen = seen.followed_by({Upstream: {a.key: a, c.key: c}}, {Upstream: {b.key, c.key}})
    latest = unseen.followed_by({Upstream: {a.key: a, c.key: c, d.key: d}}, {Upstream: {d.key}})
    assert [host["name"] for host in _hosts(logic.desired(latest))] == ["a", "c", "d"]


def test_a_hint_that_misses_an_addition_is_not_trusted() -> None:
    calls: list[str] = []
    logic = counted_logic(calls)
    a, b = kube_upstream("a"), kube_upstream("b")
    first = Snapshot.of([a])
    logic.desired(first)
    wrong = first.followed_by({Upstream: {a.key: a, b.key: b}}, {Upstream: set()})
    assert [host["name"] for host in _hosts(logic.desired(wrong))] == ["a", "b"]


def test_a_pass_that_fails_leaves_the_logic_as_the_last_good_pass_left_it() -> None:
    @pc.strategy("fragile")
    def fragile(upstream: pc.Upstream, options: pc.NoOptions) -> pc.VirtualHost:
        if upstream.metadata.name == "boom":
            raise RuntimeError("boom")
        name = upstream.metadata.name
        return pc.virtual_host(name, [name], [pc.route_to(upstream)])

    registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, fragile)})
    logic = ProxyLogic(ControllerConfig.model_validate({"strategy": {"kind": "fragile"}}), registry)
    a, b, boom = kube_upstream("a"), kube_upstream("b"), kube_upstream("boom")
    good = Snapshot.of([a])
    logic.desired(good)
    failing = good.followed_by({Upstream: {a.key: a, b.key: b, boom.key: boom}}, {Upstream: {b.key, boom.key}})
    with pytest.raises(StrategyFailure, match="boom"):
        logic.desired(failing)
    after = failing.followed_by({Upstream: {a.key: a, b.key: b}}, {Upstream: {boom.key}})
    assert [host["name"] for host in _hosts(logic.desired(after))] == ["a", "b"]


def _hosts(desired: Desired) -> list[dict[str, Any]]:
    spec = desired.objects[0].spec.to_json_dict()
    hosts: list[dict[str, Any]] = spec["listeners"][0]["httpListener"]["virtualHosts"]
    return hosts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3000) | st.sampled_from([b"", b",", b"x" * 70_000]), max_size=8))
def test_pieces_deflated_apart_make_one_zlib_stream_of_their_texts(texts: list[bytes]) -> None:
    stream = base64.b64decode(compressed_text(deflate(text) for text in texts))
    assert zlib.decompress(stream) == b"".join(texts)  # the checksum too, combined from the pieces'


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9599), st.integers(1, 1100)), min_size=1, max_size=6))
@example([(True, 0, 800), (True, 800, 400)])  # the first chunk grows past twice its size
@example([(False, 0, 1100), (False, 1100, 1000), (True, 0, 3)])  # the first two emptied, then filled again
def test_the_compressed_spec_kept_in_chunks_holds_the_spec_through_growth_and_emptied_ranges(
    edits: list[tuple[bool, int, int]],
) -> None:
    """Runs of hundreds of upstreams added or removed at once in one place: chunks grow past twice their
    size and are cut, others are emptied; the compressed form always decompresses to the spec."""
    logic = counted_logic([])
    cache = {u.key: u for u in (kube_upstream(f"svc-{i:04d}") for i in range(0, 9600, 4))}
    snapshot = Snapshot.of_mappings({Upstream: dict(cache)})
    logic.desired(snapshot)
    for add, first, count in edits:
        touched = set()
        for i in range(first, min(first + count, 9600)):
            upstream = kube_upstream(f"svc-{i:04d}")
            touched.add(upstream.key)
            if add:
                cache[upstream.key] = upstream
            else:
                cache.pop(upstream.key, None)
        snapshot = snapshot.followed_by({Upstream: dict(cache)}, {Upstream: touched})
        (item,) = logic.desired(snapshot).objects
        assert zlib.decompress(base64.b64decode(item.spec.compressed)) == item.spec.json
    fresh = counted_logic([]).desired(Snapshot.of(cache.values()))
    assert item.spec.json == fresh.objects[0].spec.json


# -- snapshots and caches ---------------------------------------------------------------------------------------


def test_a_snapshot_says_what_changed_only_relative_to_the_one_it_follows() -> None:
    a = kube_upstream("a")
    first = Snapshot.of([a])
    second = first.followed_by({Upstream: {a.key: a}}, {Upstream: {a.key}})
    assert second.changed_since(first.generation, Upstream) == frozenset({a.key})
    assert second.changed_since(second.generation, Upstream) is None
    assert first.changed_since(first.generation, Upstream) is None  # made from scratch: nothing known
    assert second.changed_since(first.generation, StoredProxy) == frozenset()


def test_a_cache_records_the_keys_it_touched_until_asked() -> None:
    cache: ResourceCache[Upstream] = ResourceCache(Upstream)
    a, b = versioned("a", "1"), versioned("b", "1")
    cache.replace_all([a, b])
    assert cache.take_touched() == {a.key, b.key}
    assert cache.take_touched() == set()
    cache.upsert(versioned("a", "1"))  # the same object again (as a watch may repeat it): no change
    cache.replace_all([versioned("a", "1"), b])  # a relist at the same versions
    assert cache.take_touched() == set()
    assert cache.get(a.key) is a  # the object held stays: the logic sees no change
    cache.upsert(versioned("a", "2"))
    cache.remove(b.key)
    assert cache.take_touched() == {a.key, b.key}
    assert cache.copy() == {a.key: cache.get(a.key)}


def test_a_status_write_keeps_the_spec_held_and_what_it_knows() -> None:
    """Gloo's verdict arrives as a new version with the same compressed spec: comparing the next desired spec
    with it must not decompress 10 MB again."""
    cache: ResourceCache[StoredProxy] = ResourceCache(StoredProxy)
    raw = b'{"listeners":[]}'
    ours = CanonicalSpec(json=raw)
    written = StoredProxy(metadata=ObjectMeta(name="p", namespace="ns", resource_version="1"), spec=ours)
    cache.upsert(written, notify=False)
    status = NamespacedStatuses(statuses={"ns": ResourceStatus(state=1, reported_by="gloo")})
    from_watch = StoredProxy(
        metadata=ObjectMeta(name="p", namespace="ns", resource_version="2"),
        spec=CanonicalSpec(compressed=ours.compressed),
        status=status,
    )
    cache.upsert(from_watch)
    held = cache.get(written.key)
    assert held is not None
    assert held.status == status
    assert held.metadata.resource_version == "2"
    assert held.spec is ours
    other = CanonicalSpec(compressed=compress(b'{"listeners":[{"name":"x"}]}'))
    cache.upsert(from_watch.model_copy(update={"spec": other, "metadata": ObjectMeta(name="p", namespace="ns")}))
    assert cache.get(written.key).spec is other  # type: ignore[union-attr]


def test_what_the_engine_wrote_is_held_as_written_also_when_the_watch_reported_it_first() -> None:
    """The watch may report our write before the write returns: the object held must still be the written one,
    whose spec knows its bytes, or the next comparison decompresses the whole spec."""
    cache: ResourceCache[StoredProxy] = ResourceCache(StoredProxy)
    ours = CanonicalSpec(json=b'{"listeners":[]}')
    metadata = ObjectMeta(name="p", namespace="ns", resource_version="1")
    cache.upsert(StoredProxy(metadata=metadata, spec=CanonicalSpec(compressed=ours.compressed)))  # the watch
    written = StoredProxy(metadata=metadata, spec=ours)
    cache.upsert(written, notify=False)
    assert cache.get(written.key) is written


def versioned(name: str, version: str) -> Upstream:
    upstream = kube_upstream(name)
    return upstream.model_copy(update={"metadata": upstream.metadata.model_copy(update={"resource_version": version})})
