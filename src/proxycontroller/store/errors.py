"""What a store says when a write cannot be done as asked."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation failed; the message names the object."""


class ConflictError(StoreError):
    """The object changed since it was read (stale resourceVersion): re-read and try again."""


class AlreadyExistsError(StoreError):
    """Create found an object of that name already there."""


class NotFoundError(StoreError):
    """The object is not there."""
