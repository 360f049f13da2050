"""get, create, replace and delete: the same semantics on every backend (see conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.store.base import ResourceClient
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreError, UnreadableError
from tests.store.backends import StoreBackend
from tests.store.support import port_of, upstream, with_labels, with_port, with_status

GLOO_STATUS = {"statuses": {"gloo-system": {"state": 1, "reportedBy": "gloo"}}}


def key_in(backend: StoreBackend, name: str) -> ObjectKey:
    return ObjectKey(backend.namespaces[0], name)


def upstreams(backend: StoreBackend) -> ResourceClient[Upstream]:
    return backend.client(Upstream)


async def test_a_created_object_reads_back_as_created(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "svc")
    assert await client.get(key) is None

    created = await client.create(upstream(key, port=8080, labels={"team": "x"}))

    assert created.metadata.resource_version
    read = await client.get(key)
    assert read is not None
    assert read.key == key
    assert read.metadata.resource_version == created.metadata.resource_version
    assert read.metadata.labels == {"team": "x"}
    assert port_of(read) == 8080
    assert read.spec.to_json_dict() == created.spec.to_json_dict()


async def test_create_of_a_taken_name_raises_already_exists(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "svc")
    await client.create(upstream(key, port=1))

    with pytest.raises(AlreadyExistsError, match=key.name):
        await client.create(upstream(key, port=2))
    assert port_of(await client.get(key)) == 1


async def test_replace_with_the_version_read_writes_and_moves_the_version_on(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "svc")
    created = await client.create(upstream(key, port=1))

    replaced = await client.replace(with_port(created, 2))

    assert replaced.metadata.resource_version not in (None, created.metadata.resource_version)
    read = await client.get(key)
    assert read is not None
    assert port_of(read) == 2
    assert read.metadata.resource_version == replaced.metadata.resource_version
    again = await client.replace(with_port(read, 3))  # and the new version is the one to write with next
    assert again.metadata.resource_version not in (None, replaced.metadata.resource_version)


async def test_replace_with_a_stale_version_raises_conflict_and_writes_nothing(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "svc")
    created = await client.create(upstream(key, port=1))
    current = await client.replace(with_port(created, 2))  # someone else's write

    with pytest.raises(ConflictError, match=key.name):
        await client.replace(with_port(created, 3))  # still carries the first version

    read = await client.get(key)
    assert read is not None
    assert port_of(read) == 2
    assert read.metadata.resource_version == current.metadata.resource_version


async def test_replace_of_a_missing_object_raises_not_found(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "svc")
    created = await client.create(upstream(key))
    await client.delete(key)

    with pytest.raises(NotFoundError, match=key.name):
        await client.replace(created)
    assert await client.get(key) is None


async def test_delete_removes_and_deleting_what_is_gone_is_no_error(backend: StoreBackend) -> None:
    client, key, other = upstreams(backend), key_in(backend, "svc"), key_in(backend, "other")
    await client.create(upstream(key))
    await client.create(upstream(other))

    await client.delete(key)

    assert await client.get(key) is None
    assert await client.get(other) is not None  # only that one
    await client.delete(key)  # gone already
    await client.delete(key_in(backend, "never-was"))
    recreated = await client.create(upstream(key, port=9))  # the name is free again
    assert port_of(recreated) == 9


async def test_status_is_kept_as_written(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "svc")
    created = await client.create(with_status(upstream(key, port=1), GLOO_STATUS))
    read = await client.get(key)
    assert read is not None
    assert read.status is not None
    assert read.status.to_json_dict() == GLOO_STATUS

    # A write of the spec that carries the status read (as the controller does) keeps it...
    await client.replace(with_port(read, 2))
    kept = await client.get(key)
    assert kept is not None
    assert kept.status is not None
    assert kept.status.to_json_dict() == GLOO_STATUS
    assert port_of(kept) == 2

    # ...and a new status (as Gloo writes one) is stored as given.
    rejected = {"statuses": {"gloo-system": {"state": 2, "reason": "bad", "reportedBy": "gloo"}}}
    written = await client.replace(with_status(kept, rejected))
    assert written.status is not None
    assert written.status.to_json_dict() == rejected
    final = await client.get(key)
    assert final is not None
    assert final.status is not None
    assert final.status.to_json_dict() == rejected
    assert created.metadata.resource_version != final.metadata.resource_version


# --- unreadable objects --------------------------------------------------------------------------------------------


async def test_get_of_an_unreadable_object_raises_unreadable_error_naming_it_and_why(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "broken")
    await client.create(upstream(key))
    await backend.corrupt(key, 1)

    with pytest.raises(UnreadableError) as info:
        await client.get(key)

    assert str(key) in str(info.value)
    assert backend.unreadable_because in str(info.value)
    assert backend.unreadable_because in info.value.reason
    assert info.value.version
    assert await client.get(key_in(backend, "other")) is None  # the rest of the store reads on


async def unreadable(client: ResourceClient[Upstream], key: ObjectKey) -> UnreadableError:
    with pytest.raises(UnreadableError) as info:
        await client.get(key)
    return info.value


def at_version(resource: Upstream, version: str) -> Upstream:
    return resource.model_copy(update={"metadata": resource.metadata.model_copy(update={"resource_version": version})})


async def test_an_unreadable_object_is_written_over_with_the_version_get_gave(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "broken")
    await client.create(upstream(key, port=1))
    await backend.corrupt(key, 1)
    broken = await unreadable(client, key)

    restored = await client.replace(at_version(upstream(key, port=7), broken.version))

    assert restored.metadata.resource_version not in (None, broken.version)
    read = await client.get(key)
    assert read is not None
    assert port_of(read) == 7
    assert read.metadata.resource_version == restored.metadata.resource_version
    again = await client.replace(with_port(read, 8))  # an object like any other again
    assert port_of(again) == 8


async def test_writing_over_an_unreadable_object_that_changed_since_is_a_conflict(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "broken")
    await backend.corrupt(key, 1)
    first = await unreadable(client, key)
    await backend.corrupt(key, 2)  # another writer, meanwhile

    with pytest.raises(ConflictError, match=key.name):
        await client.replace(at_version(upstream(key, port=7), first.version))

    second = await unreadable(client, key)  # untouched: still as the other writer left it
    assert second.version != first.version
    # Nor may it write over an object made readable since.
    await client.delete(key)
    await client.create(upstream(key, port=3))
    with pytest.raises(ConflictError, match=key.name):
        await client.replace(at_version(upstream(key, port=7), second.version))
    assert port_of(await client.get(key)) == 3


async def test_an_unreadable_object_tells_the_labels_its_metadata_carries(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "broken")
    await client.create(upstream(key))
    await backend.corrupt(key, 1, labels={"team": "x", "owner": "someone"})

    broken = await unreadable(client, key)

    assert broken.labels == {"team": "x", "owner": "someone"}
    assert not broken.no_metadata


async def test_an_object_with_nothing_in_it_names_no_owner_and_can_be_written_over(
    blankable_backend: StoreBackend,
) -> None:
    client, key = upstreams(blankable_backend), key_in(blankable_backend, "emptied")
    await client.create(upstream(key, port=1, labels={"team": "x"}))
    await blankable_backend.blank(key)

    emptied = await unreadable(client, key)

    assert emptied.no_metadata
    assert emptied.labels is None
    with pytest.raises(AlreadyExistsError, match=key.name):
        await client.create(upstream(key))
    restored = await client.replace(at_version(upstream(key, port=5, labels={"team": "x"}), emptied.version))
    read = await client.get(key)
    assert read is not None
    assert port_of(read) == 5
    assert read.metadata.resource_version == restored.metadata.resource_version


async def test_replace_of_an_object_that_turned_unreadable_since_it_was_read_raises_conflict(
    backend: StoreBackend,
) -> None:
    client, key = upstreams(backend), key_in(backend, "broken")
    read = await client.create(upstream(key, port=1))
    await backend.corrupt(key, 1)

    with pytest.raises(ConflictError, match=key.name):
        await client.replace(with_port(read, 2))
    with pytest.raises(StoreError, match=backend.unreadable_because):
        await client.get(key)  # still as the other writer left it


async def test_an_unreadable_object_still_takes_its_name_and_can_be_deleted(backend: StoreBackend) -> None:
    client, key = upstreams(backend), key_in(backend, "broken")
    await backend.corrupt(key, 1)

    with pytest.raises(AlreadyExistsError, match=key.name):
        await client.create(upstream(key))
    await client.delete(key)
    assert await client.get(key) is None
    assert port_of(await client.create(upstream(key, port=5))) == 5


# --- only the store's own errors -----------------------------------------------------------------------------------


async def test_a_store_that_cannot_be_reached_raises_only_store_errors(fallible_backend: StoreBackend) -> None:
    client, key = upstreams(fallible_backend), key_in(fallible_backend, "svc")
    read = await client.create(upstream(key, port=1))

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: client.get(key),
        "create": lambda: client.create(upstream(key_in(fallible_backend, "new"))),
        "replace": lambda: client.replace(with_labels(read, {"a": "b"})),
        "delete": lambda: client.delete(key),
    }
    async with fallible_backend.outage():
        for operation, call in calls.items():
            with pytest.raises(StoreError) as info:
                await call()
            assert type(info.value) is StoreError, f"{operation}: {info.value!r}"
            assert key.namespace in str(info.value), f"{operation}: the error does not name the object"

    # And once it is back, the store works again, with the object as it was.
    back = await client.get(key)
    assert back is not None
    assert back.metadata.resource_version == read.metadata.resource_version
