"""How the tree is laid out: `<root>/<plural>/<namespace>/<name>.yaml`, and which names in it are resources."""

from __future__ import annotations

import os

from proxycontroller.model.resources import ObjectKey
from proxycontroller.store.errors import StoreError

WRITE_SUFFIX = ".yaml"
READ_SUFFIXES = (".yaml", ".yml")  # what solo-kit's file client reads; when both exist, `.yaml` wins
TEMP_SUFFIX = ".tmp"


def check_key(key: ObjectKey, what: str) -> None:
    """A key names a file two levels under the kind's directory, never anything else (no `/`, `..`, dot-files)."""
    for part, value in (("namespace", key.namespace), ("name", key.name)):
        if not value or value.startswith(".") or "/" in value or "\0" in value:
            raise StoreError(f"{what}: {part} {value!r} cannot name a file in Gloo's directory layout")


def is_resource_file(name: str) -> bool:
    return not name.startswith(".") and name.endswith(READ_SUFFIXES)


def is_temp_file(name: str) -> bool:
    """Our writes' temp files (and editors' dot-temp files): never read, and their events are ignored."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def key_of(path: str) -> ObjectKey:
    """The key a resource file's path names. Paths are plain strings: with 10k files, pathlib's object overhead
    was most of the cost of a resync."""
    head, file_name = os.path.split(path)
    return ObjectKey(os.path.basename(head), os.path.splitext(file_name)[0])
