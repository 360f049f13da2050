"""The Gateway API implementation's verdict on the HTTPRoutes the engine writes: `status.parents[]`, one entry per
parent Gateway, with the conditions Accepted and ResolvedRefs. Each change is logged once per route (a
condition that is not True as a warning, with its reason and message) and such a one recorded on the route (an
Event, in kube mode), as Gloo's verdict is for Proxies (`verdicts.py`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from proxycontroller.model.gateway import RouteParentStatus, RouteStatus
from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.events import WARNING, Occurrence, Recorder

log = logging.getLogger(__name__)

CONDITIONS = ("Accepted", "ResolvedRefs")


def parent_verdict(parent: RouteParentStatus) -> tuple[str, bool]:
    """`Gateway ns/name section s: Accepted=True, ResolvedRefs=True` and whether every condition is True; a
    condition not True says its reason and message."""
    said = []
    good = True
    for type_ in CONDITIONS:
        condition = parent.condition(type_)
        if condition is None:
            said.append(f"{type_}=(not yet)")
            continue
        text = f"{type_}={condition.status}"
        if condition.status != "True":
            good = False
            why = ": ".join(part for part in (condition.reason, condition.message) if part)
            text += f" ({why})" if why else ""
        said.append(text)
    return f"{parent.parent_ref.describe()}: {', '.join(said)}", good


def route_parents(item: Resource) -> tuple[RouteParentStatus, ...]:
    status = item.status
    if isinstance(status, RouteStatus):
        return status.parents or ()
    # A status read by a generic path (say, a store that does not know the kind's status model) keeps parents
    # as plain data.
    raw = (status.model_extra or {}).get("parents") if status is not None else None
    return RouteStatus.model_validate({"parents": raw}).parents or () if raw else ()


class RouteVerdictReporter:
    def __init__(self, recorder: Recorder | None = None) -> None:
        self.recorder = recorder
        self._reported: dict[ObjectKey, tuple[str, ...]] = {}

    def report(self, objects: Iterable[Resource]) -> None:
        for item in objects:
            if item.KIND.kind != "HTTPRoute":
                continue
            verdicts = [parent_verdict(parent) for parent in route_parents(item)]
            said = tuple(text for text, _ in verdicts)
            if self._reported.get(item.key, ()) == said:
                continue
            self._reported[item.key] = said
            about = {"httproute": str(item.key)}
            for text, good in verdicts:
                message = f"{item.describe()} {text}"
                log.log(logging.INFO if good else logging.WARNING, "%s", message, extra={"about": about})
                if not good and self.recorder is not None:
                    self.recorder.record(
                        Occurrence(item.KIND, item.key, item.metadata.uid, WARNING, "RouteNotAccepted", message)
                    )
