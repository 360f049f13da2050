"""A managed Proxy left unreadable on the real API server (a status nobody can decode, a compressedSpec that is
not base64 of zlib) is restored; one that does not carry our labels stays exactly as it is, said once."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from proxycontroller.model.encoding import COMPRESS_ANNOTATION, DecodeError, from_cr
from proxycontroller.model.resources import Proxy
from proxycontroller.translate.translator import managed_labels
from tests.kube.test_controller import ProxyCR, Scenario, admin, as_dict, controller, scenario

__all__ = ["admin", "scenario"]  # fixtures shared with test_controller

GARBAGE_STATUS = {"statuses": {"gloo-system": "not a status"}}  # Gloo's CRD keeps any status
GARBAGE_SPEC = {"compressedSpec": "this is not base64 of zlib"}


def spoiled(raw: dict[str, Any], how: str) -> dict[str, Any]:
    if how == "status":
        raw["status"] = GARBAGE_STATUS
    else:
        raw["spec"] = GARBAGE_SPEC
        raw["metadata"]["annotations"] = {COMPRESS_ANNOTATION: "true"}
    return raw


async def routed(scenario: Scenario) -> list[str] | None:
    """The virtual hosts of the stored Proxy; None while it does not decode."""
    raw = await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace)
    try:
        proxy = from_cr(Proxy, as_dict(raw))
    except DecodeError:
        return None
    listener = proxy.spec.listeners[0] if proxy.spec.listeners else None
    hosts = listener.http_listener.virtual_hosts if listener and listener.http_listener else None
    return [host.name for host in hosts or []]


@pytest.mark.parametrize("how", ["status", "compressed-spec"])
async def test_an_unreadable_managed_proxy_is_restored(
    scenario: Scenario, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with controller(scenario) as reconciler:
        await scenario.create_upstreams(["alpha"])
        await scenario.routes(["alpha"])
        raw = await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace)
        broken = await scenario.admin.replace(ProxyCR.from_dict(spoiled(as_dict(raw), how)))

        async def restored() -> bool:
            return await routed(scenario) == ["alpha"]

        await scenario.eventually(restored)
        after = as_dict(await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace))
        assert after["metadata"]["resourceVersion"] != as_dict(broken)["metadata"]["resourceVersion"]
        assert after["metadata"]["labels"] == managed_labels(scenario.config.instance)
        assert after.get("status") != GARBAGE_STATUS
        await scenario.settled()
        assert reconciler.health.consecutive_failures == 0
    if how == "status":  # the store could not read it at all: the restore says so
        said = [r.getMessage() for r in caplog.records if "restored: it was unreadable" in r.getMessage()]
        assert len(said) == 1, said
        assert f"Proxy {scenario.key}" in said[0]
        assert "status.statuses" in said[0]


@pytest.mark.parametrize("how", ["status", "compressed-spec"])
async def test_an_unreadable_proxy_without_our_labels_is_left_untouched(
    scenario: Scenario, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    document = {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Proxy",
        "metadata": {"name": scenario.key.name, "namespace": scenario.key.namespace, "labels": {"owner": "team"}},
        "spec": {"listeners": []},
    }
    created = as_dict(await scenario.admin.create(ProxyCR.from_dict(spoiled(document, how))))
    async with controller(scenario, ends_as_desired=False) as reconciler:
        await scenario.create_upstreams(["alpha"])
        await scenario.settled()
        await scenario.create_upstreams(["beta"])  # another pass, the same refusal
        await scenario.settled()
        assert reconciler.health.writes == 0
        assert reconciler.health.consecutive_failures == 0
    after = as_dict(await scenario.admin.get(ProxyCR, scenario.key.name, namespace=scenario.key.namespace))
    assert after["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    errors = [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and str(scenario.key) in r.getMessage()
    ]
    assert len(errors) == 1, errors
    assert "leaving it untouched" in errors[0]
