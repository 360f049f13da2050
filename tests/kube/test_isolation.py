"""Failure isolation on the real API server: a strategy that raises, returns garbage or None, or blocks fails
its pass only. The stored Proxy stays exactly as the last good pass wrote it (same resourceVersion), the loop
keeps running and reports the failure, and it recovers by itself once the strategy behaves again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import proxycontroller as pc
from proxycontroller.config import ControllerConfig
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES
from proxycontroller.translate.registry import StrategyRegistry
from tests.kube.test_controller import FAST, Scenario, admin, controller, scenario
from tests.strategies import MODES, Switch, switchable

__all__ = ["admin", "scenario"]  # fixtures shared with test_controller


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_a_failing_strategy_leaves_the_stored_proxy_untouched_and_the_loop_recovers(
    scenario: Scenario, mode: str
) -> None:
    switch = Switch()
    data = scenario.config.model_dump(by_alias=True)
    data["proxies"][0]["listeners"][0]["strategies"] = [{"kind": "switchable", "options": {}}]
    data["reconcile"] = FAST.model_copy(
        update={"pass_timeout_seconds": 0.5, "error_backoff_seconds": 0.1, "error_backoff_cap_seconds": 0.5}
    ).model_dump(by_alias=True)
    scenario.config = ControllerConfig.model_validate(data)
    scenario.registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, switchable(switch))})
    try:
        async with controller(scenario) as engine:
            await scenario.create_upstreams(["a"])
            await scenario.routes(["a"])
            good = await scenario.stored_proxy()
            assert good is not None
            switch.mode = mode
            await scenario.create_upstreams(["b"])
            await scenario.eventually(_at_least_two_failures(engine))
            stored = await scenario.stored_proxy()
            assert stored is not None
            assert stored.metadata.resource_version == good.metadata.resource_version
            assert MODES[mode] in (engine.health.last_error or "")
            assert "switchable" in (engine.health.last_error or "")
            assert engine.metrics.reconcile_errors_total.labels("proxy")._value.get() >= 2
            switch.mode = "good"
            switch.release.set()
            await scenario.routes(["a", "b"])
            assert engine.health.consecutive_failures == 0
    finally:
        switch.release.set()


def _at_least_two_failures(engine: Any) -> Any:
    async def check() -> bool:
        await asyncio.sleep(0)
        return bool(engine.health.consecutive_failures >= 2)

    return check


async def test_one_upstream_the_strategy_skips_is_left_out_alone(scenario: Scenario) -> None:
    @pc.strategy("picky")
    def picky(upstream: pc.Upstream, options: pc.NoOptions) -> pc.VirtualHost:
        if upstream.metadata.name.startswith("bad"):
            raise pc.Skip("names starting with 'bad' are not routed")
        return pc.virtual_host(upstream.metadata.name, [upstream.metadata.name], [pc.route_to(upstream)])

    data = scenario.config.model_dump(by_alias=True)
    data["proxies"][0]["listeners"][0]["strategies"] = [{"kind": "picky", "options": {}}]
    scenario.config = ControllerConfig.model_validate(data)
    scenario.registry = StrategyRegistry({s.name: s for s in (*BUILTIN_STRATEGIES, picky)})
    async with controller(scenario) as engine:
        await scenario.create_upstreams(["a", "bad-one", "c"])
        await scenario.routes(["a", "c"])
        assert any("bad-one" in warning and "not routed" in warning for warning in engine.warnings)
        assert engine.health.consecutive_failures == 0
