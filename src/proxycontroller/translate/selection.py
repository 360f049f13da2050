"""Which upstreams a Proxy routes: its namespaces, a label selector, an exclude list, the owner's annotation,
and, for a sharded Proxy, which shard an upstream belongs to. Pure functions of the upstream and the
configuration, so the translator can decide again for a changed upstream alone.

The label selector is Kubernetes' LabelSelector (`matchLabels`, `matchExpressions` with In, NotIn, Exists and
DoesNotExist) and matches as the API server matches it: NotIn and DoesNotExist hold for an upstream without
that label. `exclude` entries are `name` (in any namespace) or `namespace/name`, each part a shell-style
pattern with `*` and `?` (fnmatch, case-sensitive).

Shards: rendezvous (highest random weight) hashing of `namespace/name` with BLAKE2b, which Python does not
salt per process (its `hash()` is): every controller, on every run, puts an upstream in the same shard. An
upstream goes to the shard whose weight for it is highest, so adding or removing an upstream moves no other,
and changing the number of shards from N to N+1 moves only the ~1/(N+1) that the new shard wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from proxycontroller.config import ALL_NAMESPACES, LabelSelector, ProxySettings, shown
from proxycontroller.model.resources import ObjectKey, Upstream

# Set by a service owner: "false" keeps the upstream out of an opt-out Proxy, "true" lets it into an opt-in one.
EXPOSE_ANNOTATION = "proxycontroller.io/expose"
_EXPOSE_VALUES = {"true": True, "false": False}


def shard_of(key: ObjectKey, shards: int) -> int:
    """The shard (0 to `shards` - 1) of the upstream at `key`: the one with the highest BLAKE2b weight."""
    if shards == 1:
        return 0
    # Names read from files may hold lone surrogates: surrogatepass encodes them (distinctly) instead of raising.
    text = f"{key.namespace}/{key.name}".encode(errors="surrogatepass")
    best, best_weight = 0, -1
    for index in range(shards):
        digest = hashlib.blake2b(text, digest_size=8, key=index.to_bytes(2, "big")).digest()
        weight = int.from_bytes(digest, "big")
        if weight > best_weight:  # strictly: a tie (never seen in 2^64) goes to the lower index
            best, best_weight = index, weight
    return best


def labels_selected(selector: LabelSelector | None, labels: Mapping[str, str] | None) -> bool:
    """Whether `labels` satisfy the selector, as Kubernetes matches a LabelSelector; None selects everything."""
    if selector is None:
        return True
    own = labels or {}
    for key, value in selector.match_labels.items():
        if own.get(key) != value:
            return False
    for requirement in selector.match_expressions:
        operator, present = requirement.operator, requirement.key in own
        if operator == "In":
            held = present and own[requirement.key] in requirement.values
        elif operator == "NotIn":
            held = not present or own[requirement.key] not in requirement.values
        elif operator == "Exists":
            held = present
        else:  # DoesNotExist
            held = not present
        if not held:
            return False
    return True


def _exclude_matcher(pattern: str) -> tuple[str | None, str]:
    namespace, _, name = pattern.rpartition("/")
    return namespace or None, name


@dataclass(frozen=True)
class Selection:
    """One Proxy's choice of upstreams, less the shard (the translator computes that once for all shards)."""

    where: str  # the Proxy, as a warning names it
    namespaces: frozenset[str] | None  # None: every namespace
    selector: LabelSelector | None
    exclude: tuple[tuple[str | None, str], ...]  # (namespace pattern or None: any, name pattern)
    opt_in: bool

    @classmethod
    def of(cls, where: str, settings: ProxySettings, namespaces: tuple[str, ...]) -> Selection:
        selector = settings.selector
        if selector is not None and not selector.match_labels and not selector.match_expressions:
            selector = None  # an empty selector selects everything, as in Kubernetes
        return cls(
            where,
            None if ALL_NAMESPACES in namespaces else frozenset(namespaces),
            selector,
            tuple(_exclude_matcher(pattern) for pattern in settings.exclude),
            settings.exposure == "opt-in",
        )

    def wants_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def matches(self, upstream: Upstream) -> bool:
        """Whether the configuration selects the upstream: its namespace and labels, and not excluded."""
        metadata = upstream.metadata
        if not self.wants_namespace(metadata.namespace):
            return False
        for namespace, name in self.exclude:
            if fnmatchcase(metadata.name, name) and (namespace is None or fnmatchcase(metadata.namespace, namespace)):
                return False
        return labels_selected(self.selector, metadata.labels)

    def exposed(self, upstream: Upstream) -> bool | str:
        """Whether the owner's annotation lets the upstream in; a str: the value is not usable (the upstream is
        left out, and this says why, naming it)."""
        annotations = upstream.metadata.annotations
        value = annotations.get(EXPOSE_ANNOTATION) if annotations else None
        if value is None:
            return not self.opt_in
        exposed = _EXPOSE_VALUES.get(value)
        if exposed is None:
            return (
                f"{self.where}: left out {upstream.describe()}: annotation {EXPOSE_ANNOTATION}={shown(value)}:"
                ' must be "true" (route it) or "false" (do not)'
            )
        return exposed
