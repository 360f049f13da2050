"""The status Gloo writes back into a resource it has read."""

from __future__ import annotations

import enum

from proxycontroller.model.base import GlooModel


class State(enum.IntEnum):
    """solo-kit's `core.solo.io.Status.State`."""

    PENDING = 0
    ACCEPTED = 1
    REJECTED = 2
    WARNING = 3

    @classmethod
    def parse(cls, raw: int | str | None) -> State | None:
        """Gloo writes the state as a number in some encodings and as a name in others."""
        if raw is None:
            return None
        if isinstance(raw, int):
            return cls(raw) if raw in cls._value2member_map_ else None
        try:
            return cls[raw.upper()]
        except KeyError:
            return None


class ResourceStatus(GlooModel):
    state: int | str | None = None
    reason: str | None = None
    reported_by: str | None = None

    @property
    def parsed_state(self) -> State | None:
        return State.parse(self.state)


class NamespacedStatuses(GlooModel):
    """Statuses keyed by the namespace of the Gloo that reported them (`status.statuses.<ns>`)."""

    statuses: dict[str, ResourceStatus] | None = None
