"""Reading a file within `limits.maxFileBytes`: a file already larger is not read at all, and one that grows while
it is read is read no further than the limit and one byte, so a 200 MB file (or one that never ends) costs no
memory. And the version a file that does not decode gets, so that it can be written over optimistically.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from proxycontroller.store.directory.writer import Signature, signature

LIMIT_SETTING = "limits.maxFileBytes"
# A resourceVersion solo-kit's counter never makes (it writes integers), nor would a person: one marks a version
# this store made up for a file that does not decode.
UNREADABLE_VERSION_PREFIX = "unreadable-"


def too_large(limit: int) -> str:
    return f"larger than the limit of {limit} bytes ({LIMIT_SETTING})"


def read_within(file: BinaryIO, size: int, limit: int) -> bytes | None:
    """The rest of `file`, whose size `fstat` gave as `size`; None if it is larger than `limit` bytes."""
    if size > limit:
        return None
    data = file.read(size + 1)  # one byte more than the stat said: did it grow since?
    if len(data) > size:
        data += file.read(limit + 1 - len(data))
        if len(data) > limit:
            return None
    return data


@dataclass(frozen=True)
class FileContent:
    signature: Signature
    data: bytes | None  # None: larger than the limit, so not read

    def unreadable_version(self) -> str:
        """A version for this content when it does not decode: a digest of its bytes (of its stat signature when
        it was too large to read), so any later write, even one that keeps size and mtime, gives another."""
        source = self.data if self.data is not None else repr(self.signature).encode()
        return UNREADABLE_VERSION_PREFIX + hashlib.blake2b(source, digest_size=16).hexdigest()


def is_unreadable_version(version: str) -> bool:
    return version.startswith(UNREADABLE_VERSION_PREFIX)


def read_file(path: str, limit: int) -> FileContent | None:
    """What the regular file at `path` holds now, read within `limit`; None if no regular file is there (missing,
    a directory, a FIFO: never blocked on). Other failures raise OSError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with open(fd, "rb", closefd=True) as file:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return FileContent(signature(st), read_within(file, st.st_size, limit))
