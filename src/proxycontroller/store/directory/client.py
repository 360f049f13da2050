"""The ResourceClient over Gloo's directory layout: get, create, replace, delete and watch, one file per object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from proxycontroller.model.limits import DEFAULT_LIMITS, InputLimits
from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.backoff import Backoff
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.directory.codec import (
    BeyondLimits,
    Unreadable,
    decode_document,
    encode,
    labels_in,
    load_document,
    next_resource_version,
    stored_version,
    with_version,
)
from proxycontroller.store.directory.layout import READ_SUFFIXES, WRITE_SUFFIX, check_key
from proxycontroller.store.directory.reader import (
    FileContent,
    is_unreadable_version,
    read_file,
    read_within,
    too_large,
)
from proxycontroller.store.directory.scanner import Tree
from proxycontroller.store.directory.watcher import follow
from proxycontroller.store.directory.writer import WrittenFiles, commit, signature
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreError, UnreadableError
from proxycontroller.store.selection import Selection

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


class DirectoryClient(Generic[R]):
    """A ResourceClient over `<root>/<kind plural>/<namespace>/<name>.yaml`, the layout Gloo's directory mode reads.

    `root` is what Gloo's `directoryConfigSource.directory` names; neither it nor the kind's directory need exist
    yet: writes create them, and `watch` waits for them. `resync_period`: seconds between full rescans, which
    catch whatever the change events missed (they re-read only files whose stat changed, so they are cheap).
    `limits`: how many bytes of a file are read at most, and how far YAML aliases may expand it.
    """

    def __init__(
        self, kind: type[R], root: Path, resync_period: float = 30.0, limits: InputLimits = DEFAULT_LIMITS
    ) -> None:
        if resync_period <= 0:
            raise ValueError(f"resync_period must be positive, got {resync_period}")
        self.kind = kind
        self.root = Path(root)
        # Absolute and normalised, because the change events name absolute paths we match against it.
        self.directory = Path(os.path.abspath(self.root)) / kind.KIND.plural
        self.resync_period = resync_period
        self.limits = limits
        # Serialises this process's check-then-write sequences; other writers (Gloo) are caught by the version.
        self._write_lock = threading.Lock()
        self._written: WrittenFiles[R] = WrittenFiles()
        self.lists = 0  # full lists (and resyncs) done by watches

    def path_for(self, key: ObjectKey, suffix: str = WRITE_SUFFIX) -> Path:
        return self.directory / key.namespace / f"{key.name}{suffix}"

    def _describe(self, key: ObjectKey) -> str:
        return f"{self.kind.KIND.kind} {key}"

    async def get(self, key: ObjectKey) -> R | None:
        """Raises UnreadableError if the file is there but does not hold a valid resource (the message says why).
        Its version is a digest of the file's bytes, its labels those of the file's metadata if it parses."""
        check_key(key, self._describe(key))
        return await asyncio.to_thread(self._get, key)

    def _get(self, key: ObjectKey) -> R | None:
        for suffix in READ_SUFFIXES:
            path = self.path_for(key, suffix)
            try:
                content = read_file(str(path), self.limits.max_file_bytes)
            except OSError as exc:
                raise StoreError(f"{self._describe(key)}: cannot read {path}: {exc.strerror}") from exc
            if content is not None:
                return self._decoded(key, path, content)
        return None

    def _decoded(self, key: ObjectKey, path: Path, content: FileContent) -> R:
        what = self._describe(key)
        if content.data is None:
            too_big = f"{path}: {too_large(self.limits.max_file_bytes)}"
            raise UnreadableError(what, too_big, content.unreadable_version(), None)
        try:
            document = load_document(content.data, self.limits)
        except BeyondLimits as exc:
            raise UnreadableError(what, f"{path}: {exc}", content.unreadable_version(), None) from exc
        except Unreadable as exc:  # nothing parsed, so nothing names an owner
            version = content.unreadable_version()
            raise UnreadableError(what, f"{path}: {exc}", version, None, no_metadata=True) from exc
        try:
            return decode_document(self.kind, document, key)
        except Unreadable as exc:
            labels = labels_in(document)
            version = content.unreadable_version()
            raise UnreadableError(what, f"{path}: {exc}", version, labels, no_metadata=labels is None) from exc

    async def create(self, resource: R) -> R:
        """Raises AlreadyExistsError if a file for the name exists, whatever it holds. Any resourceVersion given is
        ignored: a new object's counter starts afresh, at what solo-kit writes for a new object ("2")."""
        check_key(resource.key, resource.describe())
        return await asyncio.to_thread(self._create, resource)

    def _create(self, resource: R) -> R:
        stored = with_version(resource, next_resource_version(None))
        data = encode(stored)
        target = self.path_for(resource.key)
        with self._write_lock, _as_store_error(resource.describe(), "create"):
            if any(_stat(self.path_for(resource.key, suffix)) is not None for suffix in READ_SUFFIXES):
                raise AlreadyExistsError(f"{resource.describe()} already exists")
            self._written.remember(str(target), commit(target, data, exclusive=True, what=resource.describe()), stored)
        return stored

    async def replace(self, resource: R) -> R:
        """Writes `resource` (its status included, so a status Gloo wrote and the caller read survives) if the file
        still holds the resourceVersion the caller read; the stored version becomes that plus one.

        A file that is unreadable now (mid-write by another writer, or broken) raises ConflictError: re-read it.
        The version an UnreadableError gave writes over that file if it still holds the very bytes read then; the
        counter goes on from the version in it, if it names one. A `.yml` file is rewritten as `.yaml`, the suffix
        Gloo's own writes use.
        """
        check_key(resource.key, resource.describe())
        return await asyncio.to_thread(self._replace, resource)

    def _replace(self, resource: R) -> R:
        given = resource.metadata.resource_version or ""
        over_unreadable = is_unreadable_version(given)
        if not over_unreadable:  # encoded before taking the lock: for a large Proxy it is the costly part
            stored = with_version(resource, next_resource_version(given))
            data = encode(stored)
        target = self.path_for(resource.key)
        with self._write_lock, _as_store_error(resource.describe(), "replace"):
            existing = [self.path_for(resource.key, s) for s in READ_SUFFIXES]
            current = next((path for path in existing if _is_file(path)), None)
            if current is None:
                raise NotFoundError(f"{resource.describe()} not found")
            if over_unreadable:
                counter = self._unreadable_still(current, given, resource.describe())
                stored = with_version(resource, next_resource_version(counter))
                data = encode(stored)
            else:
                found = self._stored_version(current, resource.describe())
                if found != given:
                    raise ConflictError(
                        f"{resource.describe()} changed since it was read: resourceVersion {given!r} given,"
                        f" {found!r} in {current}"
                    )
            self._written.remember(str(target), commit(target, data, exclusive=False, what=resource.describe()), stored)
            if current != target:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(current)
                self._written.forget(str(current))
        return stored

    def _stored_version(self, path: Path, what: str) -> str:
        """The version in the file now: from what we wrote there if it is still our file, else read from it."""
        try:
            with open(path, "rb") as file:
                st = os.fstat(file.fileno())
                ours = self._written.recall(str(path), signature(st))
                if ours is not None:
                    return ours.metadata.resource_version or ""
                data = read_within(file, st.st_size, self.limits.max_file_bytes)
        except FileNotFoundError as exc:
            raise NotFoundError(f"{what} not found") from exc
        try:
            if data is None:
                raise Unreadable(too_large(self.limits.max_file_bytes))
            return stored_version(data, self.limits)
        except Unreadable as exc:
            raise ConflictError(f"{what}: {path} is not readable now ({exc}); re-read it and retry") from exc

    def _unreadable_still(self, path: Path, given: str, what: str) -> str | None:
        """Checks that `path` holds what an UnreadableError with version `given` was about (ConflictError if it
        changed since); returns the resourceVersion it names, if any, for the counter to go on from."""
        content = read_file(str(path), self.limits.max_file_bytes)
        if content is None:
            raise NotFoundError(f"{what} not found")
        if content.unreadable_version() != given:
            raise ConflictError(f"{what} changed since it was read as unreadable ({path})")
        if content.data is None:
            return None
        try:
            return stored_version(content.data, self.limits)
        except Unreadable:
            return None

    async def delete(self, key: ObjectKey) -> None:
        """Removes the object's file, whichever suffix it has (both, if both exist)."""
        check_key(key, self._describe(key))
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: ObjectKey) -> None:
        with self._write_lock, _as_store_error(self._describe(key), "delete"):
            for suffix in READ_SUFFIXES:
                path = self.path_for(key, suffix)
                self._written.forget(str(path))
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    async def watch(
        self, cache: ResourceCache[R], namespaces: Sequence[str] | None, labels: dict[str, str] | None = None
    ) -> None:
        """Keeps `cache` equal to the valid files in `namespaces` (None: all) whose metadata carries `labels`.

        Each pass lists the tree, then follows inotify events, re-reading only the paths they name, with a full
        (stat-cached) rescan every `resync_period`. A pass ends when the directory is removed or replaced, and a
        new one lists again; a failing pass is retried after capped backoff. Runs until cancelled.
        """
        tree = Tree(self.kind, str(self.directory), Selection.of(namespaces, labels), self._written, self.limits)
        backoff = Backoff(BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)

        def listed() -> None:
            self.lists += 1
            backoff.reset()

        while True:
            try:
                await follow(self.directory, cache, tree, self.resync_period, listed)
            except Exception as exc:
                first = backoff.failures == 0
                delay = backoff.next()
                logger.warning(  # the traceback once, not on every retry of the same failure
                    "watching %s failed: %s; listing again in %.1fs",
                    self.directory,
                    exc,
                    delay,
                    exc_info=exc if first else None,
                )
                await asyncio.sleep(delay)


def _stat(path: Path) -> os.stat_result | None:
    """None if nothing is there; any other failure (ELOOP, EACCES, ...) raises: the store cannot tell."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _is_file(path: Path) -> bool:
    found = _stat(path)
    return found is not None and stat.S_ISREG(found.st_mode)


@contextlib.contextmanager
def _as_store_error(what: str, operation: str) -> Iterator[None]:
    """The filesystem's errors (no space, a path component that is a file, ...) as the store's own."""
    try:
        yield
    except StoreError:
        raise
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise StoreError(f"{what}: {operation} failed:{where} {exc.strerror or exc}") from exc
