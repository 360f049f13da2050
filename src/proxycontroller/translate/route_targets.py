"""What the strategies route when Services are a source: the Upstreams, and the targets of the Service ports
(`translate.targets`) that no Upstream shadows, by key; kept from pass to pass so that a pass costs what changed.

An Upstream shadows a Service port when its `kube` spec names that Service and port ("spot"), or when it has the
target's namespace and name; the Upstream wins (see `translate.targets`). Each pass is told which Upstream and
Service keys changed (or finds them by identity, for a snapshot without that hint); only the targets at the
spots and keys those touch are decided again, and it answers which keys of the merged mapping may hold another
object. After a failed pass, and at the first, everything is decided anew through the same code, so both ways
agree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from proxycontroller.model.desired import Note
from proxycontroller.model.resources import ObjectKey, Service, ServiceTarget, Upstream
from proxycontroller.translate.targets import targets_of

Spot = tuple[str, str, int]  # a Service port: namespace, service name, port number


def _spot_of(upstream: Upstream) -> Spot | None:
    kube = upstream.spec.kube
    if kube is None or kube.service_name is None or kube.service_port is None:
        return None
    return (kube.service_namespace or upstream.metadata.namespace, kube.service_name, kube.service_port)


def _target_spot(target: ServiceTarget) -> Spot:
    return (target.service.namespace, target.service.name, target.service.port)


def _differing(
    known: Mapping[ObjectKey, Any], now: Mapping[ObjectKey, Any], seen: Callable[[Any], Any]
) -> list[ObjectKey]:
    """The keys whose object is not the very same as the one last seen (a resync, a snapshot without a hint)."""
    get = known.get
    found = [key for key, item in now.items() if (was := get(key)) is None or seen(was) is not item]
    found.extend(known.keys() - now.keys())
    return found


class RouteTargets:
    """The merged mapping of one controller's passes. Not thread-safe: the logic runs one pass at a time."""

    def __init__(self) -> None:
        self._services: dict[ObjectKey, tuple[Service, tuple[ServiceTarget, ...], tuple[Note, ...]]] = {}
        self.forget()  # sets every other attribute

    def forget(self) -> None:
        """Start over: the next merge decides everything anew (after a failed pass: what it changed here was
        not committed by the translator). The targets made of each Service object are kept for it: they are
        a function of that object alone, and the very same targets spare the strategies a run."""
        self._valid = False
        self._made = self._services  # by Service key: reused while the Service is the very same object
        self._merged: dict[ObjectKey, Upstream] = {}
        self._upstreams: dict[ObjectKey, Upstream] = {}  # as last seen
        self._upstream_spots: dict[Spot, set[ObjectKey]] = {}
        self._services = {}
        self._targets: dict[ObjectKey, ServiceTarget] = {}
        self._target_spots: dict[Spot, set[ObjectKey]] = {}
        self._notes: dict[ObjectKey, tuple[Note, ...]] = {}  # per Service that has any

    def merge(
        self,
        upstreams: Mapping[ObjectKey, Upstream],
        services: Mapping[ObjectKey, Service],
        changed_upstreams: Collection[ObjectKey] | None,
        changed_services: Collection[ObjectKey] | None,
    ) -> tuple[Mapping[ObjectKey, Upstream], Collection[ObjectKey] | None, tuple[Note, ...]]:
        """The merged mapping, the keys in it that may hold another object than in the last merge (None: not
        known, compare everything), and the warnings (ports left out, Service ports an Upstream wins over).
        `changed_*`: the keys that may differ from the last merge's inputs (None: not known)."""
        if self._valid and changed_upstreams is None:
            changed_upstreams = _differing(self._upstreams, upstreams, lambda known: known)
        if self._valid and changed_services is None:
            changed_services = _differing(self._services, services, lambda known: known[0])
        if not self._valid or changed_upstreams is None or changed_services is None:
            self.forget()
            self._apply(upstreams, services, list(upstreams), list(services))
            self._valid = True
            self._made = {}
            return self._merged, None, self.notes()
        changed = self._apply(upstreams, services, changed_upstreams, changed_services)
        if len(self._upstreams) != len(upstreams) or len(self._services) != len(services):
            self.forget()  # a hint that missed an addition: start over, and let the caller compare everything
            return self.merge(upstreams, services, None, None)
        return self._merged, changed, self.notes()

    def notes(self) -> tuple[Note, ...]:
        return tuple(note for key in sorted(self._notes) for note in self._notes[key])

    def _apply(
        self,
        upstreams: Mapping[ObjectKey, Upstream],
        services: Mapping[ObjectKey, Service],
        changed_upstreams: Iterable[ObjectKey],
        changed_services: Iterable[ObjectKey],
    ) -> set[ObjectKey]:
        touched: set[ObjectKey] = set()  # keys of the merged mapping to decide again
        for key in changed_upstreams:
            touched.add(key)  # the Upstream itself, and a target of the same key it may shadow
            for spot in self._move_upstream(key, upstreams.get(key)):
                touched.update(self._target_spots.get(spot, ()))
        renote: set[ObjectKey] = set()
        for key in changed_services:
            touched.update(self._replace_service(key, services.get(key)))
            renote.add(key)
        merged = dict(self._merged)  # a new mapping: the translator keeps the last one to compare with
        for key in touched:
            upstream = upstreams.get(key)
            target = self._targets.get(key)
            if target is not None:
                renote.add(ObjectKey(target.service.namespace, target.service.name))
            if upstream is not None:
                merged[key] = upstream
            elif target is not None and self._winner(target) is None:
                merged[key] = target
            else:
                merged.pop(key, None)
        for service in renote:
            self._renote(service)
        self._merged = merged
        return touched

    def _move_upstream(self, key: ObjectKey, upstream: Upstream | None) -> tuple[Spot, ...]:
        """Record the Upstream now at `key` (None: gone); the spots it left and took."""
        before = self._upstreams.pop(key, None)
        old = _spot_of(before) if before is not None else None
        if old is not None:
            holders = self._upstream_spots[old]
            holders.discard(key)
            if not holders:
                del self._upstream_spots[old]
        new = None
        if upstream is not None:
            self._upstreams[key] = upstream
            new = _spot_of(upstream)
            if new is not None:
                self._upstream_spots.setdefault(new, set()).add(key)
        return tuple(spot for spot in {old, new} if spot is not None)

    def _replace_service(self, key: ObjectKey, service: Service | None) -> set[ObjectKey]:
        """Record the Service now at `key` (None: gone); the target keys it had and has."""
        known = self._services.pop(key, None)
        if known is not None and known[0] is service:
            self._services[key] = known
            return set()
        touched: set[ObjectKey] = set()
        for target in known[1] if known is not None else ():  # its notes are made again by the caller
            touched.add(target.key)
            if self._targets.get(target.key) is target:
                del self._targets[target.key]
            spot = self._target_spots.get(_target_spot(target))
            if spot is not None:
                spot.discard(target.key)
                if not spot:
                    del self._target_spots[_target_spot(target)]
        if service is not None:
            made = self._made.get(key) or known
            if made is None or made[0] is not service:
                made = (service, *targets_of(service))
            self._services[key] = made
            for target in made[1]:
                touched.add(target.key)
                self._targets[target.key] = target
                self._target_spots.setdefault(_target_spot(target), set()).add(target.key)
        return touched

    def _winner(self, target: ServiceTarget) -> Upstream | None:
        """The Upstream that wins over the target: the first by key that names its spot, else the Upstream of
        the target's own key."""
        holders = self._upstream_spots.get(_target_spot(target))
        if holders:
            return self._upstreams[min(holders)]
        return self._upstreams.get(target.key)

    def _renote(self, key: ObjectKey) -> None:
        known = self._services.get(key)
        if known is None:
            self._notes.pop(key, None)
            return
        notes = list(known[2])
        for target in known[1]:
            winner = self._winner(target)
            if winner is not None:
                why = (
                    f"Service port {target.service} not routed as {target.key}: Upstream {winner.key} routes the"
                    " same service (an Upstream wins over a Service)"
                )
                notes.append(Note(why, "ServicePortShadowed", None, {"service": str(key), "upstream": str(winner.key)}))
        if notes:
            self._notes[key] = tuple(notes)
        else:
            self._notes.pop(key, None)
