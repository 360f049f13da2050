"""What the logic hands the engine: the objects that should exist, as bytes, and what was left out and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.resources import ObjectKey, Resource


@dataclass(frozen=True, slots=True)
class DesiredObject:
    """One object the engine keeps equal to this: its kind (the stored form's class), name, our labels, and
    its spec as canonical JSON. `parts` names what it is made of (say, virtual hosts by listener), for the
    log line that says what an update added or removed; the engine does not interpret it."""

    kind: type[Resource]
    key: ObjectKey
    labels: Mapping[str, str]
    spec: CanonicalSpec
    parts: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def describe(self) -> str:
        return f"{self.kind.KIND.kind} {self.key}"


class Note(str):
    """A warning that also says what it is about: it is its one-line message (everything that reads warnings as
    text keeps working), plus the output object it `regards` (the Proxy), the `subjects` it names (say
    `{"proxy": "ns/name", "upstream": "ns/name"}`, for a structured log line) and a `reason` (CamelCase, as a
    Kubernetes Event names it). The engine logs and records it without knowing what an upstream is."""

    regarding: ObjectKey | None
    subjects: Mapping[str, str]
    reason: str

    def __new__(
        cls,
        message: str,
        reason: str = "Warning",
        regarding: ObjectKey | None = None,
        subjects: Mapping[str, str] | None = None,
    ) -> Note:
        note = super().__new__(cls, message)
        note.regarding = regarding
        note.subjects = MappingProxyType(dict(subjects or {}))
        note.reason = reason
        return note


@dataclass(frozen=True, slots=True)
class Desired:
    objects: tuple[DesiredObject, ...]
    warnings: tuple[str, ...] = ()  # Notes where the logic knows what they are about


def as_resource(desired: DesiredObject) -> Resource:
    """The object as it would be written (metadata and spec; no status, no resourceVersion)."""
    metadata = ObjectMeta(name=desired.key.name, namespace=desired.key.namespace, labels=dict(desired.labels))
    return desired.kind.model_validate({"metadata": metadata, "spec": desired.spec})
