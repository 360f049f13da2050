"""Pure decisions of the engine: is a stored object ours, is it what we want, and what to write instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.encoding import COMPRESS_ANNOTATION
from proxycontroller.model.resources import Resource

R = TypeVar("R", bound=Resource)


def is_owned(resource: Resource, ownership: Mapping[str, str]) -> bool:
    """Ours: carries every ownership label with our value (managed-by and this controller's instance)."""
    labels = resource.metadata.labels or {}
    return all(labels.get(key) == value for key, value in ownership.items())


def _compressed(resource: Resource) -> bool:
    return (resource.metadata.annotations or {}).get(COMPRESS_ANNOTATION) == "true"


def needs_write(current: Resource, desired: Resource) -> bool:
    """Only the spec, our labels and the compression choice matter: Gloo writes status into the same object.
    Specs compare as canonical bytes (raises CanonicalError if the stored one cannot be read)."""
    current_spec, desired_spec = current.spec, desired.spec
    if isinstance(current_spec, CanonicalSpec) and isinstance(desired_spec, CanonicalSpec):
        if not current_spec.same_as(desired_spec):
            return True
    elif current_spec.to_json_bytes() != desired_spec.to_json_bytes():
        return True
    current_labels = current.metadata.labels or {}
    if any(current_labels.get(k) != v for k, v in (desired.metadata.labels or {}).items()):
        return True
    return _compressed(current) != _compressed(desired)


def merge_for_write(current: R, desired: R) -> R:
    """What to send to replace `current`: our spec and labels, everything else (status, others' labels and
    annotations, resourceVersion) as read, so a write never clobbers what Gloo or a person added."""
    labels = {**(current.metadata.labels or {}), **(desired.metadata.labels or {})}
    annotations = dict(current.metadata.annotations or {})
    annotations.pop(COMPRESS_ANNOTATION, None)
    annotations.update(desired.metadata.annotations or {})
    update: dict[str, object] = {"labels": labels}
    if annotations or current.metadata.annotations:
        update["annotations"] = annotations
    metadata = current.metadata.model_copy(update=update)
    return current.model_copy(update={"metadata": metadata, "spec": desired.spec})


def describe_parts_change(
    before: Mapping[str, tuple[str, ...]] | None, after: Mapping[str, tuple[str, ...]], limit: int = 5
) -> str:
    """`: listener 'x' +2 [a, b] -1 [c]` for a log line; empty when nothing is known or nothing moved."""
    if before is None:
        counts = ", ".join(f"listener {name!r}: {len(parts)}" for name, parts in after.items())
        return f" ({counts})" if counts else ""
    changes = []
    for name in sorted({*before, *after}):
        old, new = set(before.get(name, ())), set(after.get(name, ()))
        added, removed = sorted(new - old), sorted(old - new)
        if added or removed:
            changes.append(f"listener {name!r}{_listed('+', added, limit)}{_listed('-', removed, limit)}")
    return f": {'; '.join(changes)}" if changes else ""


def parts_change(
    before: Mapping[str, tuple[str, ...]] | None, after: Mapping[str, tuple[str, ...]], limit: int = 10
) -> dict[str, object]:
    """For a structured log line: the parts added and removed over all listeners, as counts and the first
    `limit` names of each (sorted); nothing when nothing is known or nothing moved."""
    if before is None:
        return {}
    added: set[str] = set()
    removed: set[str] = set()
    for name in {*before, *after}:
        old, new = set(before.get(name, ())), set(after.get(name, ()))
        added |= new - old
        removed |= old - new
    fields: dict[str, object] = {}
    if added:
        fields.update(added=sorted(added)[:limit], addedCount=len(added))
    if removed:
        fields.update(removed=sorted(removed)[:limit], removedCount=len(removed))
    return fields


def _listed(sign: str, names: list[str], limit: int) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
    return f" {sign}{len(names)} [{shown}]"
