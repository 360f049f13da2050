"""A strategy for isolation tests whose behaviour the test switches while the controller runs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import proxycontroller as pc

# What each mode makes the strategy do, and what the engine's error then says.
MODES = {"raise": "RuntimeError: boom", "garbage": "returned a str", "none": "returned NoneType", "block": "budget"}


class Switch:
    def __init__(self) -> None:
        self.mode = "good"
        self.release = threading.Event()


def switchable(switch: Switch) -> pc.Strategy[Any]:
    @pc.strategy("switchable", each=False)
    def strategy(upstreams: Sequence[pc.Upstream], options: pc.NoOptions) -> object:
        if switch.mode == "raise":
            raise RuntimeError("boom")
        if switch.mode == "garbage":
            return [u.metadata.name for u in upstreams]
        if switch.mode == "none":
            return None
        if switch.mode == "block":
            switch.release.wait()
        return [pc.virtual_host(u.metadata.name, [u.metadata.name], [pc.route_to(u)]) for u in upstreams]

    return strategy
