"""watch: a ResourceCache kept equal to the store, the same way on every backend (see conftest.py)."""

from __future__ import annotations

import secrets

import pytest

from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.store.base import ResourceClient
from tests.store.backends import StoreBackend
from tests.store.support import (
    assert_cache_equals_store,
    upstream,
    warnings_about,
    watching,
    with_labels,
    with_port,
)


def upstreams(backend: StoreBackend) -> ResourceClient[Upstream]:
    return backend.client(Upstream)


async def test_watch_lists_what_exists_and_marks_the_cache_synced(backend: StoreBackend) -> None:
    client = upstreams(backend)
    first, second = backend.namespaces
    keys = {ObjectKey(first, "a"), ObjectKey(first, "b"), ObjectKey(second, "c")}
    for key in keys:
        await client.create(upstream(key))

    async with watching(client, backend.namespaces, within=backend.within) as w:
        assert w.cache.synced.is_set()
        assert w.keys() == keys  # complete from the first list on: synced means listed
        await assert_cache_equals_store(w, client, keys, "the listed objects")


async def test_watch_of_an_empty_store_is_synced_and_empty(backend: StoreBackend) -> None:
    async with watching(upstreams(backend), backend.namespaces, within=backend.within) as w:
        assert w.cache.synced.is_set()
        assert w.keys() == set()


async def test_watch_follows_creates_updates_and_deletes(backend: StoreBackend) -> None:
    client = upstreams(backend)
    a, b = ObjectKey(backend.namespaces[0], "a"), ObjectKey(backend.namespaces[1], "b")
    await client.create(upstream(a, port=1))

    async with watching(client, backend.namespaces, within=backend.within) as w:
        created = await client.create(upstream(b, port=2))
        await w.eventually(lambda: w.port(b) == 2, "a created object")

        updated = await client.replace(with_port(created, 3))
        await w.eventually(lambda: w.port(b) == 3, "an updated object")
        cached = w.cache.get(b)
        assert cached is not None
        assert cached.metadata.resource_version == updated.metadata.resource_version

        await client.delete(a)
        await w.eventually(lambda: w.keys() == {b}, "a deleted object gone")
        await assert_cache_equals_store(w, client, {b}, "after create, update, delete")


async def test_watch_selects_namespaces_and_labels(backend: StoreBackend) -> None:
    client = upstreams(backend)
    ours, other = backend.namespaces
    chosen = {"team": "x"}
    inside = ObjectKey(ours, "in")
    for key, labels in [
        (inside, chosen),
        (ObjectKey(ours, "wrong-label"), {"team": "y"}),
        (ObjectKey(ours, "no-label"), None),
        (ObjectKey(other, "wrong-namespace"), chosen),
    ]:
        await client.create(upstream(key, labels=labels))

    async with watching(client, [ours], chosen, within=backend.within) as w:
        assert w.keys() == {inside}

        relabelled = await client.get(ObjectKey(ours, "wrong-label"))
        assert relabelled is not None
        await client.replace(with_labels(relabelled, {"team": "x", "more": "yes"}))
        await w.eventually(lambda: w.keys() == {inside, relabelled.key}, "an object that came to carry the labels")

        await client.create(upstream(ObjectKey(other, "later"), labels=chosen))  # not in a selected namespace
        dropped = await client.get(inside)
        assert dropped is not None
        await client.replace(with_labels(dropped, None))
        await w.eventually(lambda: w.keys() == {relabelled.key}, "an object that lost its label")
        await assert_cache_equals_store(w, client, {relabelled.key}, "the selection")


async def test_watch_of_all_namespaces_selects_by_label_alone(backend: StoreBackend) -> None:
    client = upstreams(backend)
    ours, other = backend.namespaces
    run = {"store-test-run": secrets.token_hex(4)}  # the API server is shared: only this test's objects carry it
    tagged = {ObjectKey(ours, "a"), ObjectKey(other, "b")}
    for key in tagged:
        await client.create(upstream(key, labels=run))
    await client.create(upstream(ObjectKey(ours, "untagged")))

    async with watching(client, None, run, within=backend.within) as w:
        assert w.keys() == tagged
        late = ObjectKey(other, "late")
        await client.create(upstream(late, labels=run))
        await w.eventually(lambda: w.keys() == tagged | {late}, "an object created in any namespace")
        await assert_cache_equals_store(w, client, tagged | {late}, "every namespace")


async def test_watch_lists_again_after_a_gap_and_ends_equal_to_the_store(backend: StoreBackend) -> None:
    client = upstreams(backend)
    ours, other = backend.namespaces
    kept, changed, removed = ObjectKey(ours, "kept"), ObjectKey(ours, "changed"), ObjectKey(other, "removed")
    for key in (kept, changed, removed):
        await client.create(upstream(key, port=1))

    async with watching(client, backend.namespaces, within=backend.within) as w:
        lists_before = backend.lists()
        async with backend.gap() as writer:  # changes the watch cannot hear of
            current = await writer.get(changed)
            assert current is not None
            await writer.replace(with_port(current, 2))
            await writer.delete(removed)
            await writer.create(upstream(ObjectKey(other, "added"), port=3))
        expected = {kept, changed, ObjectKey(other, "added")}

        await w.eventually(lambda: backend.lists() > lists_before, "a new list after the gap")
        await assert_cache_equals_store(w, client, expected, "the cache caught up after the gap")
        assert w.port(changed) == 2

        # And the watch goes on following changes after it.
        late = await client.create(upstream(ObjectKey(ours, "late"), port=4))
        await w.eventually(lambda: w.port(late.key) == 4, "a change after the gap")


async def test_an_unreadable_object_is_skipped_reported_once_per_version_and_the_watch_goes_on(
    backend: StoreBackend, caplog: pytest.LogCaptureFixture
) -> None:
    client = upstreams(backend)
    ours = backend.namespaces[0]
    broken, good = ObjectKey(ours, "broken"), ObjectKey(ours, "good")
    await client.create(upstream(broken, port=1))
    await client.create(upstream(good, port=2))

    async with watching(client, backend.namespaces, within=backend.within) as w:
        assert w.keys() == {broken, good}

        await backend.corrupt(broken, 1)
        # Its older reading goes: what the store holds now is not that any more.
        await w.eventually(lambda: w.keys() == {good}, "the unreadable object dropped from the cache")
        await w.eventually(lambda: len(warnings_about(caplog, broken)) == 1, "one warning naming it")
        assert backend.unreadable_because in warnings_about(caplog, broken)[0]

        # Other changes, and a fresh list, find the same version: not news.
        added = await client.create(upstream(ObjectKey(ours, "added"), port=3))
        await w.eventually(lambda: w.port(added.key) == 3, "a change next to the unreadable object")
        lists_before = backend.lists()
        async with backend.gap():
            pass
        await w.eventually(lambda: backend.lists() > lists_before, "a new list")
        await assert_cache_equals_store(w, client, {good, added.key}, "the cache after the new list")
        assert len(warnings_about(caplog, broken)) == 1, warnings_about(caplog, broken)

        # A new unreadable version is news again.
        await backend.corrupt(broken, 2)
        await w.eventually(lambda: len(warnings_about(caplog, broken)) == 2, "a warning for the new version")
        assert w.keys() == {good, added.key}

        # Made readable again, it is back.
        await client.delete(broken)
        await client.create(upstream(broken, port=5))
        await w.eventually(lambda: w.port(broken) == 5, "the object readable again")
        await assert_cache_equals_store(w, client, {good, added.key, broken}, "the end")
    assert len(warnings_about(caplog, broken)) == 2
