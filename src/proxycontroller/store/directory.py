"""Gloo's directory config source as a store: `<root>/<plural>/<namespace>/<name>.yaml`, in Gloo's flat form.

This is the tree Gloo reads with `directoryConfigSource` (solo-kit's file resource client, rooted at
`<directory>/<plural>`), so the controller and Gloo share files with no API server between them. What shapes it:

- Others write here too, and not atomically: solo-kit's client truncates and rewrites files in place (that is how
  Gloo writes statuses into Upstreams), and people edit by hand. So reading forgives: a file that does not decode
  is reported once per version of it, skipped, and read again when it changes; it never stops the watch nor hides
  the rest of the tree. A file that was valid and turns bad keeps its last valid version in use, so a half-saved
  edit does not withdraw routes.
- Our writes never show a reader half a file: Gloo lists a whole namespace directory on each change, and one
  unreadable file fails that whole list. We write a temp file that both Gloo (it reads only names ending in
  `.yaml`/`.yml`) and we (we skip dot-files) ignore, fsync it, and rename it into place.
- Identity is the path, and the file must agree with it. solo-kit selects files by directory but takes the
  object's name and namespace from the file's metadata, while reads and writes (its and ours) go by path. When the
  two disagree every choice is wrong somewhere: trusting the path would route to an object Gloo knows by another
  name (and Gloo rejects a Proxy naming an unknown Upstream); trusting the metadata would give keys that `get`,
  `replace` and `delete` cannot reach, or two files claiming one key. So such a file is reported and skipped, like
  a malformed one, until it is fixed. That includes a missing `metadata.namespace`: Gloo reads it as namespace "".
- resourceVersion is a counter kept in the file, exactly as solo-kit's file client does it (see
  `next_resource_version`), so our optimistic writes and Gloo's status writes detect each other.
- Proxies are always written uncompressed: solo-kit's file client has no `compressedSpec` handling (only its kube
  client does), so Gloo would read a compressed file as a Proxy with no listeners. Reading accepts both.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import watchfiles
import yaml

from proxycontroller.model.documents import dump_yaml, load_yaml
from proxycontroller.model.encoding import DecodeError, from_flat, to_flat
from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreError

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)

WRITE_SUFFIX = ".yaml"
READ_SUFFIXES = (".yaml", ".yml")  # what solo-kit's file client reads; when both exist, `.yaml` wins
TEMP_SUFFIX = ".tmp"
FILE_MODE = 0o644  # what solo-kit writes; Gloo may run as another user and must be able to read our files

_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
_ANCESTOR_RECHECK_MS = 1000  # while the directory does not exist yet, see `_wait_for_directory`

_Signature = tuple[int, int, int, int]  # (inode, size, mtime_ns, ctime_ns): a file version, as far as stat tells
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_INT_RANGE = range(-(2**63), 2**63)


def next_resource_version(current: str | None) -> str:
    """The version a write stores: solo-kit's file client's `newOrIncrementResourceVer`.

    It is `strconv.Atoi(current) + 1`, and anything Atoi rejects (missing, empty, not a number, out of int64)
    counts as 1, so a new object and a hand-written file without a version both get "2" on their first write.
    """
    if current is not None and _GO_INT.fullmatch(current) and int(current) in _GO_INT_RANGE:
        return str(int(current) + 1)
    return "2"


class _Unreadable(Exception):
    """A file that is not a valid resource of the kind at its path; the message says why, without the path."""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    line = f" (line {mark.line + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML{line}: {problem}"


def _decode(kind: type[R], data: bytes, key: ObjectKey) -> R:
    """The resource a file at `key`'s path holds; raises _Unreadable if there is none, or another one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise _Unreadable(_yaml_problem(exc)) from exc
    if document is None:
        raise _Unreadable("empty file")
    if not isinstance(document, dict):
        raise _Unreadable(f"expected a mapping in Gloo's flat form, got {type(document).__name__}")
    if "apiVersion" in document or "kind" in document:
        # A Kubernetes CR read as flat form would pass for a resource with a few unknown fields: refuse it.
        raise _Unreadable(
            "a Kubernetes custom resource (apiVersion/kind/spec); Gloo's directory layout holds the flat form:"
            " metadata and the spec's fields at the top level"
        )
    try:
        resource = from_flat(kind, document)
    except DecodeError as exc:
        raise _Unreadable(str(exc)) from exc
    found = resource.key
    if found != key:
        named = f"{found.namespace}/{found.name}" if found.namespace else f"{found.name} with no namespace"
        raise _Unreadable(
            f"its metadata names {named} but its path says {key}; Gloo names it after its metadata, reads and"
            " writes go by path: make them agree"
        )
    return resource


def _with_version(resource: R, version: str) -> R:
    metadata = resource.metadata.model_copy(update={"resource_version": version})
    return resource.model_copy(update={"metadata": metadata})


def _encode(resource: Resource) -> bytes:
    return dump_yaml(to_flat(resource, compress=False)).encode("utf-8")


def _check_key(key: ObjectKey, what: str) -> None:
    """A key names a file two levels under the kind's directory, never anything else (no `/`, `..`, dot-files)."""
    for part, value in (("namespace", key.namespace), ("name", key.name)):
        if not value or value.startswith(".") or "/" in value or "\0" in value:
            raise StoreError(f"{what}: {part} {value!r} cannot name a file in Gloo's directory layout")


def _fsync_directory(directory: Path) -> None:
    """Makes a rename or link in `directory` durable: without it a crash can lose the new entry."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _identity(directory: Path) -> tuple[int, int] | None:
    """Which directory is at that path now: a watch on a directory removed or replaced since sees nothing more."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _nearest_existing_directory(path: Path) -> Path:
    for candidate in path.parents:
        if candidate.is_dir():
            return candidate
    return Path(path.anchor or "/")


def _is_resource_file(name: str) -> bool:
    return not name.startswith(".") and name.endswith(READ_SUFFIXES)


def _is_temp_file(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _not_a_temp_file(change: watchfiles.Change, path: str) -> bool:
    """Our own writes' temp files (and editors' dot-temp files) would only cause rescans that find nothing."""
    return not _is_temp_file(os.path.basename(path))


def _key_of(path: str) -> ObjectKey:
    head, file_name = os.path.split(path)
    return ObjectKey(os.path.basename(head), os.path.splitext(file_name)[0])


@dataclass(frozen=True)
class _Selection:
    namespaces: frozenset[str] | None
    labels: Mapping[str, str]

    def wants_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def wants(self, resource: Resource) -> bool:
        own = resource.metadata.labels or {}
        return self.wants_namespace(resource.metadata.namespace) and all(
            own.get(k) == v for k, v in self.labels.items()
        )


@dataclass(frozen=True)
class _FileState(Generic[R]):
    signature: _Signature
    resource: R | None  # None: the file did not decode (reported)


@dataclass
class _Tree(Generic[R]):
    """What a watch knows of the directory: for each file, its stat signature and what it decoded to.

    It lives as long as one `watch` call, across the passes that call restarts, so that a resync re-reads only
    files whose stat changed, and a broken file is reported once per version of it rather than on every rescan.
    Its methods do blocking I/O and run in a worker thread; the event loop reads `view` between them. Paths are
    plain strings: with 10k files, pathlib's object overhead was most of the cost of a resync.
    """

    kind: type[R]
    directory: str
    selection: _Selection
    files: dict[str, _FileState[R]] = field(default_factory=dict)
    view: dict[ObjectKey, R] = field(default_factory=dict)  # each key's resource: its file's, or the last valid
    reported: dict[tuple[str, str], tuple[_Signature, str]] = field(default_factory=dict)
    # Keys whose files were read or forgotten and not yet settled into `view`. Kept across a scan that fails
    # half-way, so the next one still settles them although their files' stat no longer looks changed.
    dirty: set[ObjectKey] = field(default_factory=set)

    def scan_all(self) -> set[ObjectKey]:
        """Brings every file up to date, re-reading only those whose stat changed; returns the keys that moved."""
        present: set[str] = set()
        unlisted: set[str] = set()  # namespace directories that could not be listed: keep what we knew
        try:
            with os.scandir(self.directory) as entries:
                namespaces = [e.path for e in entries if not e.name.startswith(".") and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            namespaces = []
        for namespace_dir in namespaces:
            if not self.selection.wants_namespace(os.path.basename(namespace_dir)):
                continue
            found = self._scan_namespace_files(namespace_dir)
            if found is None:
                unlisted.add(namespace_dir)
            else:
                present |= found
        for path in [p for p in self.files if p not in present and os.path.dirname(p) not in unlisted]:
            self._forget(path)
        return self._settle()

    def scan_changes(self, paths: Iterable[str]) -> set[ObjectKey]:
        """Re-reads what a batch of change events names, the rest stays as it is; returns the keys that moved."""
        prefix = self.directory + os.sep
        rescan: set[str] = set()
        for path in paths:
            if path == self.directory:
                return self.scan_all()  # the kind's directory itself changed
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split(os.sep)
            if parts[0].startswith(".") or not self.selection.wants_namespace(parts[0]):
                continue
            namespace_dir = prefix + parts[0]
            if len(parts) == 1:
                rescan.add(namespace_dir)  # created, removed or renamed: its files got no events of their own
            elif len(parts) == 2 and _is_resource_file(parts[1]):
                # Forced: a rewrite in place within one mtime tick, same size, would keep the signature.
                self._refresh(path, force=True)
            elif len(parts) == 2 and parts[1].startswith("."):
                # e.g. a Kubernetes ConfigMap volume swapping its `..data` symlink: every file may have changed.
                rescan.add(namespace_dir)
        for namespace_dir in rescan:
            found = self._scan_namespace_files(namespace_dir)
            if found is not None:
                for path in [p for p in self.files if os.path.dirname(p) == namespace_dir and p not in found]:
                    self._forget(path)
        return self._settle()

    def _scan_namespace_files(self, namespace_dir: str) -> set[str] | None:
        """Refreshes the files of one namespace directory; returns their paths, or None if it cannot be listed."""
        try:
            with os.scandir(namespace_dir) as listing:
                entries = [e for e in listing if _is_resource_file(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return set()
        except OSError as exc:
            self._report(namespace_dir, "listing", (0, 0, 0, 0), f"cannot list: {exc.strerror}")
            return None
        self.reported.pop((namespace_dir, "listing"), None)
        found: set[str] = set()
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue  # gone since the listing (or a dangling symlink): forgotten like any missing file
            if not stat.S_ISREG(st.st_mode):
                continue
            found.add(entry.path)
            known = self.files.get(entry.path)
            if known is None or known.signature != _signature(st):
                self._refresh(entry.path, force=True)
        return found

    def _refresh(self, path: str, force: bool) -> None:
        """Reads one file again (unless `force` is off and its stat is unchanged) and records what it holds."""
        try:
            # O_NONBLOCK: a FIFO named like a resource must not hang the scan.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            self._forget(path)
            return
        except OSError as exc:
            self._record(path, (0, 0, 0, 0), None, f"cannot be read: {exc.strerror}")
            return
        with open(fd, "rb", closefd=True) as file:
            st = os.fstat(fd)  # of the very file read, even if the path was replaced meanwhile
            if not stat.S_ISREG(st.st_mode):
                self._forget(path)
                return
            signature = _signature(st)
            known = self.files.get(path)
            if not force and known is not None and known.signature == signature:
                return
            data = file.read()
        try:
            resource = _decode(self.kind, data, _key_of(path))
        except _Unreadable as exc:
            self._record(path, signature, None, str(exc))
        else:
            self._record(path, signature, resource, None)

    def _record(self, path: str, signature: _Signature, resource: R | None, problem: str | None) -> None:
        key = _key_of(path)
        self.files[path] = _FileState(signature, resource)
        self.dirty.add(key)
        if problem is not None:
            kept = "; the last valid version stays in use" if key in self.view else ""
            self._report(path, "content", signature, f"{problem}; skipped until it changes{kept}")
        elif self.reported.pop((path, "content"), None) is not None:
            logger.info("%s: valid again, read", path)

    def _forget(self, path: str) -> None:
        if self.files.pop(path, None) is not None:
            self.dirty.add(_key_of(path))
        self.reported.pop((path, "content"), None)
        self.reported.pop((path, "shadowed"), None)

    def _report(self, path: str, topic: str, signature: _Signature, problem: str) -> None:
        """Logs a problem once per version of the file: a resync re-finding it is not news."""
        if self.reported.get((path, topic)) != (signature, problem):
            self.reported[(path, topic)] = (signature, problem)
            logger.warning("%s: %s", path, problem)

    def _settle(self) -> set[ObjectKey]:
        """Resolves the dirty keys into `view`; returns them, for the caller to publish."""
        settled, self.dirty = self.dirty, set()
        for key in settled:
            self._resolve(key)
        return settled

    def _resolve(self, key: ObjectKey) -> None:
        """Settles `view[key]` from the key's files: `.yaml` over `.yml`, and a broken file keeps the last valid."""
        base = os.path.join(self.directory, key.namespace, key.name)
        primary = self.files.get(base + ".yaml")
        secondary_path = base + ".yml"
        secondary = self.files.get(secondary_path)
        if primary is not None and secondary is not None:
            problem = f"ignored: {key.name}.yaml in the same directory names the same object and wins"
            self._report(secondary_path, "shadowed", secondary.signature, problem)
        else:
            self.reported.pop((secondary_path, "shadowed"), None)
        state = primary if primary is not None else secondary
        if state is None:
            self.view.pop(key, None)
        elif state.resource is not None:
            self.view[key] = state.resource


def _publish(cache: ResourceCache[R], tree: _Tree[R], keys: Iterable[ObjectKey]) -> None:
    """Upserts compare content, not only resourceVersion: hand edits often leave the version as it was."""
    for key in keys:
        resource = tree.view.get(key)
        if resource is not None and tree.selection.wants(resource):
            cache.upsert(resource)
        else:
            cache.remove(key)


class DirectoryClient(Generic[R]):
    """A ResourceClient over `<root>/<kind plural>/<namespace>/<name>.yaml`, the layout Gloo's directory mode reads.

    `root` is what Gloo's `directoryConfigSource.directory` names; neither it nor the kind's directory need exist
    yet: writes create them, and `watch` waits for them. `resync_period`: seconds between full rescans, which
    catch whatever the change events missed (they re-read only files whose stat changed, so they are cheap).
    """

    def __init__(self, kind: type[R], root: Path, resync_period: float = 30.0) -> None:
        if resync_period <= 0:
            raise ValueError(f"resync_period must be positive, got {resync_period}")
        self.kind = kind
        self.root = Path(root)
        # Absolute and normalised, because the change events name absolute paths we match against it.
        self.directory = Path(os.path.abspath(self.root)) / kind.KIND.plural
        self.resync_period = resync_period
        # Serialises this process's check-then-write sequences; other writers (Gloo) are caught by the version.
        self._write_lock = threading.Lock()

    def path_for(self, key: ObjectKey, suffix: str = WRITE_SUFFIX) -> Path:
        return self.directory / key.namespace / f"{key.name}{suffix}"

    def _describe(self, key: ObjectKey) -> str:
        return f"{self.kind.KIND.kind} {key}"

    async def get(self, key: ObjectKey) -> R | None:
        """Raises StoreError if the file is there but does not hold a valid resource (the message says why)."""
        _check_key(key, self._describe(key))
        return await asyncio.to_thread(self._get, key)

    def _get(self, key: ObjectKey) -> R | None:
        for suffix in READ_SUFFIXES:
            path = self.path_for(key, suffix)
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue
            except OSError as exc:
                raise StoreError(f"{self._describe(key)}: cannot read {path}: {exc.strerror}") from exc
            try:
                return _decode(self.kind, data, key)
            except _Unreadable as exc:
                raise StoreError(f"{self._describe(key)}: {path}: {exc}") from exc
        return None

    async def create(self, resource: R) -> R:
        """Raises AlreadyExistsError if a file for the name exists, whatever it holds. Any resourceVersion given is
        ignored: a new object's counter starts afresh, at what solo-kit writes for a new object ("2")."""
        _check_key(resource.key, resource.describe())
        return await asyncio.to_thread(self._create, resource)

    def _create(self, resource: R) -> R:
        stored = _with_version(resource, next_resource_version(None))
        data = _encode(stored)
        with self._write_lock:
            if any(self.path_for(resource.key, suffix).exists() for suffix in READ_SUFFIXES):
                raise AlreadyExistsError(f"{resource.describe()} already exists")
            self._commit(self.path_for(resource.key), data, exclusive=True, what=resource.describe())
        return stored

    async def replace(self, resource: R) -> R:
        """Writes `resource` (its status included, so a status Gloo wrote and the caller read survives) if the file
        still holds the resourceVersion the caller read; the stored version becomes that plus one.

        A file that is unreadable now (mid-write by another writer, or broken) raises ConflictError: re-read later.
        A `.yml` file is rewritten as `.yaml`, the suffix Gloo's own writes use.
        """
        _check_key(resource.key, resource.describe())
        return await asyncio.to_thread(self._replace, resource)

    def _replace(self, resource: R) -> R:
        given = resource.metadata.resource_version or ""
        stored = _with_version(resource, next_resource_version(given))
        data = _encode(stored)
        target = self.path_for(resource.key)
        with self._write_lock:
            existing = [self.path_for(resource.key, s) for s in READ_SUFFIXES]
            current = next((path for path in existing if path.is_file()), None)
            if current is None:
                raise NotFoundError(f"{resource.describe()} not found")
            found = self._stored_version(current, resource.describe())
            if found != given:
                raise ConflictError(
                    f"{resource.describe()} changed since it was read: resourceVersion {given!r} given,"
                    f" {found!r} in {current}"
                )
            self._commit(target, data, exclusive=False, what=resource.describe())
            if current != target:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(current)
        return stored

    @staticmethod
    def _stored_version(path: Path, what: str) -> str:
        """The file's metadata.resourceVersion, "" when absent, as solo-kit compares it (its Go zero value)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"{what} not found") from exc
        try:
            document = load_yaml(data.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConflictError(f"{what}: {path} is not readable now; re-read it and retry") from exc
        metadata = document.get("metadata") if isinstance(document, dict) else None
        if not isinstance(metadata, dict):
            raise ConflictError(f"{what}: {path} has no metadata now; re-read it and retry")
        version = metadata.get("resourceVersion")
        return "" if version is None else str(version)

    @staticmethod
    def _commit(path: Path, data: bytes, exclusive: bool, what: str) -> None:
        """Puts `data` at `path` whole or not at all. `exclusive`: fail if the path exists (a hard link, unlike a
        rename, never replaces), which also stops another process's create racing ours."""
        directory = path.parent
        directory.mkdir(parents=True, exist_ok=True)
        # A dot-name ending in .tmp: ignored by Gloo, which reads only `.yaml`/`.yml`, and by our scans.
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=directory)
        try:
            with open(fd, "wb", closefd=True) as temp:
                temp.write(data)
                temp.flush()
                os.fchmod(fd, FILE_MODE)  # mkstemp makes it 0600
                os.fsync(fd)
            if exclusive:
                try:
                    os.link(temp_name, path)
                except FileExistsError as exc:
                    raise AlreadyExistsError(f"{what} already exists") from exc
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                        raise
                    os.replace(temp_name, path)  # no hard links here: the check under our lock must do
            else:
                os.replace(temp_name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
        _fsync_directory(directory)

    async def delete(self, key: ObjectKey) -> None:
        """Removes the object's file, whichever suffix it has (both, if both exist)."""
        _check_key(key, self._describe(key))
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: ObjectKey) -> None:
        with self._write_lock:
            for suffix in READ_SUFFIXES:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path_for(key, suffix))

    async def watch(
        self, cache: ResourceCache[R], namespaces: Sequence[str] | None, labels: dict[str, str] | None = None
    ) -> None:
        """Keeps `cache` equal to the valid files in `namespaces` (None: all) whose metadata carries `labels`.

        Each pass lists the tree, then follows inotify events, re-reading only the paths they name, with a full
        (stat-cached) rescan every `resync_period`. A pass ends when the directory is removed or replaced, and a
        new one lists again; a failing pass is retried after a capped, doubling delay. Runs until cancelled.
        """
        tree = _Tree(
            self.kind,
            str(self.directory),
            _Selection(None if namespaces is None else frozenset(namespaces), dict(labels or {})),
        )
        failures = 0

        def listed() -> None:
            nonlocal failures
            failures = 0

        while True:
            try:
                await self._follow(cache, tree, listed)
            except Exception as exc:
                failures += 1
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (failures - 1))
                logger.warning(  # the traceback once, not on every retry of the same failure
                    "watching %s failed: %s; listing again in %.1fs",
                    self.directory,
                    exc,
                    delay,
                    exc_info=exc if failures == 1 else None,
                )
                await asyncio.sleep(delay)

    async def _list(self, cache: ResourceCache[R], tree: _Tree[R]) -> None:
        keys = await asyncio.to_thread(tree.scan_all)
        _publish(cache, tree, keys)
        # Also drops whatever the cache held that this tree never saw, and marks the cache synced.
        cache.replace_all(r for r in tree.view.values() if tree.selection.wants(r))

    async def _follow(self, cache: ResourceCache[R], tree: _Tree[R], listed: Callable[[], None]) -> None:
        """One pass: list, then follow changes until the directory disappears or is replaced."""
        identity = _identity(self.directory)
        if identity is None:
            await self._list(cache, tree)  # empties the cache, and says it is synced: there is nothing
            listed()
            await self._wait_for_directory()
            return
        loop = asyncio.get_running_loop()
        changes = watchfiles.awatch(
            self.directory,
            watch_filter=_not_a_temp_file,
            rust_timeout=max(1, round(self.resync_period * 1000)),
            yield_on_timeout=True,
            # A batch closes after this many quiet ms (watchfiles' default is 50): the reconciler coalesces
            # bursts itself, so a shorter wait here only cuts the latency of a single change.
            step=10,
        )
        # The generator's first step sets up the inotify watches, then waits in a thread. Running that step before
        # listing (the sleep lets the new task run first) means a change made while we list is reported to us,
        # not missed until the next resync. Events arriving between batches are buffered by the watcher.
        first = asyncio.ensure_future(anext(changes))
        try:
            await asyncio.sleep(0)
            await self._list(cache, tree)
            listed()
            resync_at = loop.time() + self.resync_period
            try:
                batch = await first
            except FileNotFoundError:
                return  # removed between our stat and the watch: the next pass waits for it
            while True:
                if _identity(self.directory) != identity:
                    return
                if not batch or loop.time() >= resync_at:  # empty: the watch timed out, a resync is due
                    await self._list(cache, tree)
                    resync_at = loop.time() + self.resync_period
                else:
                    keys = await asyncio.to_thread(tree.scan_changes, {path for _, path in batch})
                    _publish(cache, tree, keys)
                batch = await anext(changes)
        finally:
            if not first.done():
                first.cancel()
                await asyncio.wait([first])
            elif not first.cancelled():
                first.exception()  # retrieved, so asyncio does not log it as lost
            await changes.aclose()

    async def _wait_for_directory(self) -> None:
        """Returns once the kind's directory exists.

        Watches the nearest existing ancestor, not recursively (it may be `/`), so that a creation is seen at once;
        the timeout re-check covers one made between our check and the watch starting.
        """
        while not self.directory.is_dir():
            ancestor = _nearest_existing_directory(self.directory)
            async with contextlib.aclosing(
                watchfiles.awatch(
                    ancestor,
                    watch_filter=None,
                    recursive=False,
                    rust_timeout=_ANCESTOR_RECHECK_MS,
                    yield_on_timeout=True,
                )
            ) as events:
                async for _ in events:
                    if self.directory.is_dir() or _nearest_existing_directory(self.directory) != ancestor:
                        break
