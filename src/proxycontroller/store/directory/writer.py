"""Writes that never show a reader half a file, and a memory of what they wrote.

Gloo lists a whole namespace directory on each change, and one unreadable file fails that whole list. So we write a
temp file that both Gloo (it reads only names ending in `.yaml`/`.yml`) and we (we skip dot-files) ignore, fsync
it, and rename it into place.

The memory (`WrittenFiles`) spares the watch re-reading what this client itself just wrote: for a 4.5 MB Proxy,
decoding the file again would cost a second, to learn what the writer already had in hand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from pathlib import Path
from typing import Generic, TypeVar

from proxycontroller.model.resources import Resource
from proxycontroller.store.directory.layout import TEMP_SUFFIX
from proxycontroller.store.errors import AlreadyExistsError

R = TypeVar("R", bound=Resource)

FILE_MODE = 0o644  # what solo-kit writes; Gloo may run as another user and must be able to read our files

Signature = tuple[int, int, int, int]  # (inode, size, mtime_ns, ctime_ns): a file version, as far as stat tells


def signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class WrittenFiles(Generic[R]):
    """path -> the signature of the file this client last wrote there, and the resource it holds.

    Shared by the client's writes (worker threads) and its watches' scans (worker threads), hence the lock. One
    entry per path, so it holds no more than the objects this client wrote.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: dict[str, tuple[Signature, R]] = {}

    def remember(self, path: str, written: Signature, resource: R) -> None:
        with self._lock:
            self._written[path] = (written, resource)

    def recall(self, path: str, found: Signature) -> R | None:
        """What we wrote at `path`, if the file there is still the one we wrote."""
        with self._lock:
            entry = self._written.get(path)
        return entry[1] if entry is not None and entry[0] == found else None

    def forget(self, path: str) -> None:
        with self._lock:
            self._written.pop(path, None)


def fsync_directory(directory: Path) -> None:
    """Makes a rename or link in `directory` durable: without it a crash can lose the new entry."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(path: Path, data: bytes, exclusive: bool, what: str) -> Signature:
    """Puts `data` at `path` whole or not at all; returns the signature of the file written.

    `exclusive`: fail if the path exists (a hard link, unlike a rename, never replaces), which also stops another
    process's create racing ours.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    # A dot-name ending in .tmp: ignored by Gloo, which reads only `.yaml`/`.yml`, and by our scans.
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=directory)
    with open(fd, "wb", closefd=True) as temp:
        try:
            temp.write(data)
            temp.flush()
            os.fchmod(fd, FILE_MODE)  # mkstemp makes it 0600
            os.fsync(fd)
            if exclusive:
                _link_new(temp_name, path, what)
            else:
                os.replace(temp_name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
        # Of the file now at `path` (the fd follows the inode): the rename, link and unlink changed its ctime.
        written = signature(os.fstat(fd))
    fsync_directory(directory)
    return written


def _link_new(temp_name: str, path: Path, what: str) -> None:
    try:
        os.link(temp_name, path)
    except FileExistsError as exc:
        raise AlreadyExistsError(f"{what} already exists") from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        os.replace(temp_name, path)  # no hard links here: the check under the client's lock must do
