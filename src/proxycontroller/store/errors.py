"""What a store says when a write cannot be done as asked."""

from __future__ import annotations

from collections.abc import Mapping


class StoreError(RuntimeError):
    """A store operation failed; the message names the object."""


class ConflictError(StoreError):
    """The object changed since it was read (stale resourceVersion): re-read and try again."""


class AlreadyExistsError(StoreError):
    """Create found an object of that name already there."""


class NotFoundError(StoreError):
    """The object is not there."""


class UnreadableError(StoreError):
    """The object exists but does not decode as its kind: `get` says so with what a writer needs to decide whether,
    and how, to write over it.

    - `version`: the resourceVersion `replace` takes to write over this very state of the object; if it changed
      since, that is a ConflictError, as for any replace.
    - `labels`: the labels its metadata carries ({} when it has none); None when they are not known.
    - `no_metadata`: it holds no metadata at all (empty, text that does not parse, or a document without a
      `metadata` object), so nothing in it names an owner. `labels` is then None.
    """

    def __init__(
        self, what: str, reason: str, version: str, labels: Mapping[str, str] | None, no_metadata: bool = False
    ) -> None:
        super().__init__(f"{what} is unreadable: {reason}")
        self.reason = reason
        self.version = version
        self.labels = None if labels is None else dict(labels)
        self.no_metadata = no_metadata
