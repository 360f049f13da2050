"""Values kept in the order of their places, changed a few at a time, read all at once.

A listener's virtual hosts and warnings follow the order of its inputs; a pass changes a few of them. A sorted
list of places beside the list of values makes a change one bisection and one slice assignment (a memmove), and
reading every value (to join bytes, or to list warnings) one C-level copy, with no Python step per value.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

V = TypeVar("V")

Place = tuple[Any, ...]  # compared as tuples: (strategy index, upstream key, index within what it made)


class OrderedRuns(Generic[V]):
    """Values by place, in the order of the places; several values may share a place (a run)."""

    __slots__ = ("_places", "values")

    def __init__(self) -> None:
        self._places: list[Place] = []
        self.values: list[V] = []  # read-only for callers: in the order of their places

    def put(self, place: Place, values: Sequence[V]) -> bool:
        """The values at `place` become `values` (none: it holds nothing). True if anything changed."""
        places = self._places
        low = bisect_left(places, place)
        high = bisect_right(places, place, low)
        if low == high and not values:
            return False
        places[low:high] = [place] * len(values)
        self.values[low:high] = values
        return True

    @property
    def places(self) -> list[Place]:
        """The places of the values, in order (read-only for callers)."""
        return self._places

    def reset(self, places: list[Place], values: list[V]) -> None:
        """All at once, from lists already in order (taken over, not copied)."""
        self._places, self.values = places, values

    def __len__(self) -> int:
        return len(self.values)
