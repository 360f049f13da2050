"""The whole pure pipeline, snapshot to desired proxies: translate, then validate."""

from __future__ import annotations

from proxycontroller.config import ControllerConfig
from proxycontroller.model.snapshot import DesiredState, Snapshot
from proxycontroller.translate.strategies import Strategy
from proxycontroller.translate.translator import translate
from proxycontroller.validate.rules import validate


def desired_state(snapshot: Snapshot, config: ControllerConfig, strategy: Strategy) -> DesiredState:
    return validate(translate(snapshot, config, strategy))
