"""Kubernetes Events (events.k8s.io/v1) about the objects the controller writes, in their namespace: what
`kubectl describe proxy` and `kubectl events --for proxy/NAME` show. Needs create and patch on events there."""

from __future__ import annotations

import socket
import time
from datetime import datetime

from lightkube import AsyncClient
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.events_v1 import EventSeries
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.events_v1 import Event
from lightkube.types import PatchType

from proxycontroller.store.errors import StoreError
from proxycontroller.store.events import Occurrence
from proxycontroller.store.kube import _TRANSPORT_ERRORS, _answer

REPORTING_CONTROLLER = "proxycontroller.io/proxycontroller"
MAX_NOTE_BYTES = 1024  # the API server refuses a longer note
MAX_INSTANCE_CHARS = 128


def reporting_instance() -> str:
    """The pod's name in Kubernetes (its host name), else this machine's."""
    return socket.gethostname()[:MAX_INSTANCE_CHARS]


def _micro(when: datetime) -> datetime:
    # lightkube writes a datetime whose microsecond is 0 without a fraction, which the API server's MicroTime
    # parser rejects; one microsecond later is as good a time.
    return when if when.microsecond else when.replace(microsecond=1)


def _note(message: str) -> str:
    data = message.encode()
    if len(data) <= MAX_NOTE_BYTES:
        return message
    return data[: MAX_NOTE_BYTES - 3].decode(errors="ignore") + "..."


class KubeEventSink:
    def __init__(self, client: AsyncClient, instance: str | None = None) -> None:
        self._client = client
        self._instance = (instance or reporting_instance())[:MAX_INSTANCE_CHARS]

    async def create(self, occurrence: Occurrence, observed: datetime) -> str:
        key, kind = occurrence.key, occurrence.kind
        name = f"{key.name}.{time.time_ns():x}"  # as client-go names them
        event = Event(
            metadata=ObjectMeta(name=name, namespace=key.namespace),
            eventTime=_micro(observed),
            action=occurrence.action,
            reason=occurrence.reason,
            note=_note(occurrence.message),
            type=occurrence.type,
            regarding=ObjectReference(
                apiVersion=kind.api_version, kind=kind.kind, namespace=key.namespace, name=key.name, uid=occurrence.uid
            ),
            reportingController=REPORTING_CONTROLLER,
            reportingInstance=self._instance,
        )
        try:
            await self._client.create(event)
        except _TRANSPORT_ERRORS as exc:
            raise StoreError(_answer(exc)) from exc
        return name

    async def update_series(self, occurrence: Occurrence, name: str, count: int, last_observed: datetime) -> None:
        series = EventSeries(count=count, lastObservedTime=_micro(last_observed))
        try:
            namespace = occurrence.key.namespace
            patch = {"series": series.to_dict()}
            await self._client.patch(Event, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        except _TRANSPORT_ERRORS as exc:
            raise StoreError(_answer(exc)) from exc
