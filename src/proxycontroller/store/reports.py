"""Problems with objects (unreadable ones, ones not ours to write), logged once per version of each object.

A watch meets the same broken object again and again (every relist, every resync); only a new version of it is
news. Each watch keeps one `ProblemReports` for as long as it runs, across the relists it does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping


class ProblemReports:
    def __init__(self, logger: logging.Logger, level: int = logging.WARNING) -> None:
        self._logger = logger
        self._level = level
        self._reported: dict[Hashable, Hashable] = {}  # subject -> the version last reported

    def report(
        self, subject: Hashable, version: Hashable, message: str, about: Mapping[str, str] | None = None
    ) -> bool:
        """Logs `message` (a warning unless another level was given) unless this version of `subject` was reported
        already; True if logged. `about`: the objects it names, for a structured log line."""
        if self._reported.get(subject, _NEVER) == version:
            return False
        self._reported[subject] = version
        self._logger.log(self._level, "%s", message, extra={"about": dict(about or {})})
        return True

    def clear(self, subject: Hashable) -> bool:
        """`subject` is readable again, or gone; True if it had been reported."""
        return self._reported.pop(subject, _NEVER) is not _NEVER

    def keep_only(self, wanted: Callable[[Hashable], bool]) -> None:
        """Forgets the subjects a fresh list no longer finds, so the record does not grow without bound."""
        for subject in [s for s in self._reported if not wanted(s)]:
            del self._reported[subject]


_NEVER = object()
