"""A stop (SIGTERM cancels the engine) while a write is in flight lets that write finish, and knows it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from proxycontroller.config import ControllerConfig
from proxycontroller.manager.backends import Backend
from proxycontroller.manager.controller import build_engine
from proxycontroller.model.resources import StoredProxy, Upstream
from proxycontroller.store.memory import MemoryClient
from proxycontroller.validate.desired import ProxyLogic
from tests.unit.factories import kube_upstream
from tests.unit.test_engine import FAST, PROXY_KEY


class SlowWrites(MemoryClient[StoredProxy]):
    """The memory store, with each create taking a while: long enough to be stopped in the middle of one."""

    def __init__(self) -> None:
        super().__init__(StoredProxy)
        self.started = asyncio.Event()

    async def create(self, resource: StoredProxy) -> StoredProxy:
        self.started.set()
        await asyncio.sleep(0.3)
        return await super().create(resource)


async def test_a_write_in_flight_finishes_when_the_engine_is_stopped(caplog: pytest.LogCaptureFixture) -> None:
    config = ControllerConfig(reconcile=FAST)
    upstreams, slow = MemoryClient(Upstream), SlowWrites()
    clients: dict[type[Any], Any] = {Upstream: upstreams, StoredProxy: slow}
    engine = build_engine(config, ProxyLogic(config), Backend(clients.__getitem__, True))
    await upstreams.create(kube_upstream("alpha"))
    task = asyncio.create_task(engine.run())
    await asyncio.wait_for(slow.started.wait(), 5)
    with caplog.at_level(logging.INFO, logger="proxycontroller.reconcile.engine"):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    assert PROXY_KEY in slow.objects  # written, not abandoned half way
    assert engine.output_caches[StoredProxy].get(PROXY_KEY) is not None  # and the engine knows it
    messages = [record.getMessage() for record in caplog.records]
    assert "stopping: finishing the write in flight" in messages
    assert any(message.startswith(f"Proxy {PROXY_KEY} created") for message in messages), messages
