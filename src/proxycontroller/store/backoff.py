"""Capped exponential backoff with jitter: how long to wait before retrying something that keeps failing.

One helper for every retry loop (watches, reconcile passes, leader election) so they all back off alike.
The jitter matters as much as the growth: after an API server restart, every controller's watches fail at the
same instant, and without it they would all reconnect in lockstep, again and again.
"""

from __future__ import annotations

import random


class Backoff:
    """`next()` after each failure gives the delay to wait: `base`, doubling (by `factor`) up to `cap`, each scaled
    by a random factor in [1 - jitter, 1]; `reset()` after a success starts over from `base`."""

    def __init__(
        self,
        base: float,
        cap: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < base <= cap:
            raise ValueError(f"need 0 < base <= cap, got base={base}, cap={cap}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.failures = 0  # since the last reset

    def next(self) -> float:
        """Counts a failure and returns the seconds to wait before the next attempt."""
        # The exponent stops growing once the cap is reached, so a long outage cannot overflow the float.
        exponent = self.failures
        self.failures += 1
        delay = self.base
        for _ in range(exponent):
            delay *= self.factor
            if delay >= self.cap:
                break
        return min(delay, self.cap) * self._rng.uniform(1.0 - self.jitter, 1.0)

    def reset(self) -> None:
        self.failures = 0
