"""Following the tree: list it, then re-read only what inotify events name, with a periodic stat-cached rescan.

A pass ends when the kind's directory is removed or replaced (a watch on the old one would see nothing more), and
the next pass lists again; while the directory does not exist, the watch waits for it to appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import watchfiles

from proxycontroller.model.resources import ObjectKey, Resource
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.directory.layout import is_temp_file
from proxycontroller.store.directory.scanner import Tree

R = TypeVar("R", bound=Resource)

ANCESTOR_RECHECK_MS = 1000  # while the directory does not exist yet, see `wait_for_directory`
# A batch of events closes after this many quiet ms (watchfiles' default is 50): the reconciler coalesces bursts
# itself, so a shorter wait here only cuts the latency of a single change.
BATCH_QUIET_MS = 10


def _identity(directory: Path) -> tuple[int, int] | None:
    """Which directory is at that path now: a watch on a directory removed or replaced since sees nothing more."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _nearest_existing_directory(path: Path) -> Path:
    for candidate in path.parents:
        if candidate.is_dir():
            return candidate
    return Path(path.anchor or "/")


def _not_a_temp_file(change: watchfiles.Change, path: str) -> bool:
    """Temp files would only cause rescans that find nothing."""
    return not is_temp_file(os.path.basename(path))


def publish(cache: ResourceCache[R], tree: Tree[R], keys: Iterable[ObjectKey]) -> None:
    """Upserts compare content, not only resourceVersion: hand edits often leave the version as it was."""
    for key in keys:
        resource = tree.view.get(key)
        if resource is not None and tree.selection.wants(resource):
            cache.upsert(resource)
        else:
            cache.remove(key)


async def list_tree(cache: ResourceCache[R], tree: Tree[R]) -> None:
    keys = await asyncio.to_thread(tree.scan_all)
    publish(cache, tree, keys)
    # Also drops whatever the cache held that this tree never saw, and marks the cache synced.
    cache.replace_all(r for r in tree.view.values() if tree.selection.wants(r))


async def follow(
    directory: Path, cache: ResourceCache[R], tree: Tree[R], resync_period: float, listed: Callable[[], None]
) -> None:
    """One pass: list, then follow changes until the directory disappears or is replaced. `listed` is called
    after each full list."""
    identity = _identity(directory)
    if identity is None:
        await list_tree(cache, tree)  # empties the cache, and says it is synced: there is nothing
        listed()
        await wait_for_directory(directory)
        return
    loop = asyncio.get_running_loop()
    changes = watchfiles.awatch(
        directory,
        watch_filter=_not_a_temp_file,
        rust_timeout=max(1, round(resync_period * 1000)),
        yield_on_timeout=True,
        step=BATCH_QUIET_MS,
    )
    # The generator's first step sets up the inotify watches, then waits in a thread. Running that step before
    # listing (the sleep lets the new task run first) means a change made while we list is reported to us, not
    # missed until the next resync. Events arriving between batches are buffered by the watcher.
    first = asyncio.ensure_future(anext(changes))
    try:
        await asyncio.sleep(0)
        await list_tree(cache, tree)
        listed()
        resync_at = loop.time() + resync_period
        try:
            batch = await first
        except FileNotFoundError:
            return  # removed between our stat and the watch: the next pass waits for it
        while True:
            if _identity(directory) != identity:
                return
            if not batch or loop.time() >= resync_at:  # empty: the watch timed out, a resync is due
                await list_tree(cache, tree)
                listed()
                resync_at = loop.time() + resync_period
            else:
                keys = await asyncio.to_thread(tree.scan_changes, {path for _, path in batch})
                publish(cache, tree, keys)
            batch = await anext(changes)
    finally:
        if not first.done():
            first.cancel()
            await asyncio.wait([first])
        elif not first.cancelled():
            first.exception()  # retrieved, so asyncio does not log it as lost
        await changes.aclose()


async def wait_for_directory(directory: Path) -> None:
    """Returns once `directory` exists.

    Watches the nearest existing ancestor, not recursively (it may be `/`), so that a creation is seen at once; the
    timeout re-check covers one made between our check and the watch starting.
    """
    while _identity(directory) is None:
        ancestor = _nearest_existing_directory(directory)
        async with contextlib.aclosing(
            watchfiles.awatch(
                ancestor,
                watch_filter=None,
                recursive=False,
                rust_timeout=ANCESTOR_RECHECK_MS,
                yield_on_timeout=True,
            )
        ) as events:
            async for _ in events:
                if _identity(directory) is not None or _nearest_existing_directory(directory) != ancestor:
                    break
