"""Small asyncio helpers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
