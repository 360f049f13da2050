"""One interface for where resources live, whatever the backend (Kubernetes, Gloo's directory, memory).

This is what Gloo's solo-kit calls a resource client. Writes are optimistic: `replace` carries the
resourceVersion it read and fails with ConflictError if the object changed since.

Every backend keeps the same contract, checked by one conformance suite (tests/store):

- get, create, replace and delete raise only StoreError and its subclasses (store/errors.py), whatever failed
  underneath (a connection, the filesystem, a document that does not decode); the message names the object.
- An object that exists but does not decode as its kind is unreadable: `get` raises UnreadableError saying why,
  with a resourceVersion for it and the labels it carries (if its metadata could be read); `replace` given that
  resourceVersion writes over it (ConflictError if it changed since), so a writer can restore what it owns even
  when someone left it empty or broken; `watch` leaves it out of the cache (dropping any older reading of it)
  and logs one warning per version of it; `create` of its name is AlreadyExistsError and `delete` removes it.

Where a backend reads text itself (the directory store), it reads within `InputLimits` (bytes per file, nodes
YAML aliases may add): an object over a limit is unreadable like a malformed one, and is never read whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.cache import ResourceCache

R = TypeVar("R", bound=Resource)


class ResourceClient(Protocol, Generic[R]):
    kind: type[R]

    async def get(self, key: ObjectKey) -> R | None:
        """The object as stored now (not from a cache), or None. Raises UnreadableError if it does not decode."""
        ...

    async def create(self, resource: R) -> R:
        """Raises AlreadyExistsError if the name is taken."""
        ...

    async def replace(self, resource: R) -> R:
        """Writes metadata, spec and status as given; `metadata.resourceVersion` must be the one read.

        Raises ConflictError when the stored object has moved on, NotFoundError when it is gone. The version of
        an UnreadableError writes over that unreadable object.
        """
        ...

    async def delete(self, key: ObjectKey) -> None:
        """Deleting what is already gone is not an error."""
        ...

    async def watch(
        self, cache: ResourceCache[R], namespaces: Sequence[str] | None, labels: dict[str, str] | None = None
    ) -> None:
        """Keeps `cache` equal to the store's objects in `namespaces` (None: all) carrying `labels`.

        Runs until cancelled: lists, then follows changes, and starts over with a fresh list after any
        gap (a dropped connection, an expired resourceVersion), with capped backoff between failures.
        """
        ...
