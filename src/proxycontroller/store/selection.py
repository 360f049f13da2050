"""Which objects a watch asked for: namespaces and a label selector, matched the way the Kubernetes API does.

The Kubernetes backend sends the selection to the API server; the other backends match it themselves with
these helpers, so that all of them select exactly the same objects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from proxycontroller.model.resources import Resource


def labels_match(labels: Mapping[str, str] | None, selector: Mapping[str, str] | None) -> bool:
    """An equality-based selector (`k=v,...`): every pair must be among the labels; empty or None selects all."""
    if not selector:
        return True
    own = labels or {}
    return all(own.get(key) == value for key, value in selector.items())


@dataclass(frozen=True)
class Selection:
    """`namespaces` None: every namespace."""

    namespaces: frozenset[str] | None
    labels: Mapping[str, str]

    @classmethod
    def of(cls, namespaces: Collection[str] | None, labels: Mapping[str, str] | None) -> Selection:
        return cls(None if namespaces is None else frozenset(namespaces), dict(labels or {}))

    def wants_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def wants(self, resource: Resource) -> bool:
        return self.wants_namespace(resource.metadata.namespace) and labels_match(resource.metadata.labels, self.labels)
