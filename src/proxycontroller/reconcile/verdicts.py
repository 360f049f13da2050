"""Gloo's verdict on the objects the engine writes: each change of `status.statuses.<gloo namespace>` is
logged once (Rejected as an error, with Gloo's reason), and a rejection or warning recorded on the object (an
Event, in kube mode)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.model.status import State
from proxycontroller.store.events import WARNING, Occurrence, Recorder

log = logging.getLogger(__name__)


class Verdicts(Protocol):
    """Reads the verdict of whoever serves the engine's outputs from the objects as stored, after each pass."""

    def report(self, objects: Iterable[Resource]) -> None: ...


class VerdictReporter:
    def __init__(self, reporter_namespace: str, recorder: Recorder | None = None) -> None:
        self.reporter_namespace = reporter_namespace
        self.recorder = recorder
        self._reported: dict[tuple[str, ObjectKey], tuple[State | None, str | None]] = {}

    def report(self, objects: Iterable[Resource]) -> None:
        for item in objects:
            status = item.status_from(self.reporter_namespace)
            verdict = (status.parsed_state, status.reason) if status else (None, None)
            seen = (item.KIND.kind, item.key)
            if self._reported.get(seen) == verdict:
                continue
            self._reported[seen] = verdict
            state, reason = verdict
            if state is None:
                continue
            level = {State.REJECTED: logging.ERROR, State.WARNING: logging.WARNING}.get(state, logging.INFO)
            about = {item.KIND.kind.lower(): str(item.key)}
            said = f"Gloo reports {item.describe()} {state.name}{f': {reason}' if reason else ''}"
            log.log(level, "%s", said, extra={"about": about, "state": state.name})
            if self.recorder is not None and level > logging.INFO:
                why = "Rejected" if state is State.REJECTED else "GlooWarning"
                self.recorder.record(Occurrence(item.KIND, item.key, item.metadata.uid, WARNING, why, said))
