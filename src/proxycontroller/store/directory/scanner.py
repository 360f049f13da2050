"""What a watch knows of the directory tree: each file's stat signature and what it decoded to.

Others write here too, and not atomically: solo-kit's client truncates and rewrites files in place (that is how
Gloo writes statuses into Upstreams), and people edit by hand. So reading forgives: a file that does not decode is
reported once per version of it, skipped (an older reading of it is dropped, as every store does with an object it
cannot read), and read again when it changes; it never stops the watch nor hides the rest of the tree. Nor is it
trusted: a file over `limits.maxFileBytes` is not read at all, and YAML aliases expand only within
`limits.maxAliasNodes`, so one hostile file costs neither memory nor a stalled watch; it is skipped like any other.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from proxycontroller.model.limits import InputLimits
from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.directory.codec import Unreadable, decode
from proxycontroller.store.directory.layout import is_resource_file, key_of
from proxycontroller.store.directory.reader import read_within, too_large
from proxycontroller.store.directory.writer import Signature, WrittenFiles, signature
from proxycontroller.store.reports import ProblemReports
from proxycontroller.store.selection import Selection

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)

_NO_SIGNATURE: Signature = (0, 0, 0, 0)


@dataclass(frozen=True)
class _FileState(Generic[R]):
    signature: Signature
    resource: R | None  # None: the file did not decode (reported)


@dataclass
class Tree(Generic[R]):
    """The files of one kind's directory, as far as the selection's namespaces go.

    It lives as long as one `watch` call, across the passes that call restarts, so that a resync re-reads only
    files whose stat changed, and a broken file is reported once per version of it rather than on every rescan.
    Its methods do blocking I/O and run in a worker thread; the event loop reads `view` between them.
    """

    kind: type[R]
    directory: str
    selection: Selection
    written: WrittenFiles[R]  # what the client wrote itself: taken as is when the file is still the one written
    limits: InputLimits  # how much of a file is read, and how far YAML aliases may expand it
    files: dict[str, _FileState[R]] = field(default_factory=dict)
    view: dict[ObjectKey, R] = field(default_factory=dict)  # each readable key's resource
    reports: ProblemReports = field(default_factory=lambda: ProblemReports(logger))
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
            listed = True
        except (FileNotFoundError, NotADirectoryError):
            namespaces, listed = [], False
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
        if listed:
            # Only once the directory could be listed: one that went away and came back with the same files (same
            # signatures) has nothing new to report.
            self.reports.keep_only(lambda subject: _path_of(subject) in self.files or _path_of(subject) in unlisted)
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
            elif len(parts) == 2 and is_resource_file(parts[1]):
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
                entries = [e for e in listing if is_resource_file(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return set()
        except OSError as exc:
            self._report(namespace_dir, "listing", _NO_SIGNATURE, f"cannot list: {exc.strerror}")
            return None
        self.reports.clear((namespace_dir, "listing"))
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
            if known is None or known.signature != signature(st):
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
            self._record(path, _NO_SIGNATURE, None, f"cannot be read: {exc.strerror}")
            return
        with open(fd, "rb", closefd=True) as file:
            st = os.fstat(fd)  # of the very file read, even if the path was replaced meanwhile
            if not stat.S_ISREG(st.st_mode):
                self._forget(path)
                return
            found = signature(st)
            known = self.files.get(path)
            if not force and known is not None and known.signature == found:
                return
            ours = self.written.recall(path, found)
            if ours is not None:
                self._record(path, found, ours, None)  # our own write: we know what it holds
                return
            limit = self.limits.max_file_bytes
            data = read_within(file, st.st_size, limit)
        if data is None:
            self._record(path, found, None, too_large(limit))
            return
        try:
            resource = decode(self.kind, data, key_of(path), self.limits)
        except Unreadable as exc:
            self._record(path, found, None, str(exc))
        else:
            self._record(path, found, resource, None)

    def _record(self, path: str, found: Signature, resource: R | None, problem: str | None) -> None:
        key = key_of(path)
        self.files[path] = _FileState(found, resource)
        self.dirty.add(key)
        if problem is not None:
            self._report(path, "content", found, f"{problem}; skipped until it changes")
        elif self.reports.clear((path, "content")):
            logger.info("%s: valid again, read", path)

    def _forget(self, path: str) -> None:
        """The file is gone. What was reported about it is kept until a full scan prunes it (see scan_all)."""
        if self.files.pop(path, None) is not None:
            self.dirty.add(key_of(path))

    def _report(self, path: str, topic: str, found: Signature, problem: str) -> None:
        """Logs a problem once per version of the file: a resync re-finding it is not news."""
        self.reports.report((path, topic), (found, problem), f"{path}: {problem}")

    def _settle(self) -> set[ObjectKey]:
        """Resolves the dirty keys into `view`; returns them, for the caller to publish."""
        settled, self.dirty = self.dirty, set()
        for key in settled:
            self._resolve(key)
        return settled

    def _resolve(self, key: ObjectKey) -> None:
        """Settles `view[key]` from the key's files: `.yaml` over `.yml`; an unreadable file leaves no reading."""
        base = os.path.join(self.directory, key.namespace, key.name)
        primary = self.files.get(base + ".yaml")
        secondary_path = base + ".yml"
        secondary = self.files.get(secondary_path)
        if primary is not None and secondary is not None:
            problem = f"ignored: {key.name}.yaml in the same directory names the same object and wins"
            self._report(secondary_path, "shadowed", secondary.signature, problem)
        else:
            self.reports.clear((secondary_path, "shadowed"))
        state = primary if primary is not None else secondary
        if state is None or state.resource is None:
            self.view.pop(key, None)
        else:
            self.view[key] = state.resource


def _path_of(subject: object) -> object:
    """Report subjects are (path, topic)."""
    return subject[0] if isinstance(subject, tuple) else subject
