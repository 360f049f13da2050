"""Runs the logic off the event loop, in a daemon thread, within a time budget.

Users' strategies are arbitrary code: one that blocks must not freeze the loop (watches, probes, SIGTERM).
A thread cannot be killed, so a call past its budget is abandoned: the caller gets TimeoutError at once,
and the thread, a daemon, cannot keep the process from exiting. While it still runs, no new call starts
(the logic keeps memos and is not re-entrant): those fail at once with `StillRunning`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class StillRunning(RuntimeError):
    """The call that ran past its budget has not returned yet."""


class BudgetedCaller(Generic[T]):
    def __init__(self, name: str) -> None:
        self._name = name
        self._running = threading.Event()  # set while a call's function runs

    @property
    def busy(self) -> bool:
        return self._running.is_set()

    async def call(self, function: Callable[[], T], budget: float) -> T:
        if self.busy:
            raise StillRunning(f"{self._name}: the call that ran past its {budget:g}s budget is still running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(outcome: Callable[[], None]) -> None:
            if not future.done():
                outcome()

        def target() -> None:
            try:
                result = function()
            except BaseException as exc:  # handed to the awaiting task, which decides
                error = exc
                deliver: Callable[[], None] = lambda: future.set_exception(error)  # noqa: E731
            else:
                deliver = lambda: future.set_result(result)  # noqa: E731
            finally:
                self._running.clear()  # before the result is seen, so the next call may start at once
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(settle, deliver)

        self._running.set()
        threading.Thread(target=target, name=self._name, daemon=True).start()
        try:
            async with asyncio.timeout(budget):
                return await asyncio.shield(future)
        except TimeoutError:
            raise TimeoutError(f"{self._name}: still running after its {budget:g}s budget") from None
