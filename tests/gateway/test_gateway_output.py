"""The Gateway API output end to end: the controller (output: gateway-api) turns Upstreams into HTTPRoutes and a
ReferenceGrant on the test API server, the real kgateway accepts them, and the Gateway's Envoy in the test host
serves the seed's curl by host, the path-prefix strategy with the prefix removed, and the HTTPS redirect.

The routes live in gloo-system (the Proxy's namespace) and the petstore Service in default: every route here is a
cross-namespace one, which kgateway refuses (ResolvedRefs False, 500) without the controller's ReferenceGrant.
The controller runs in the test's event loop as its ServiceAccount under the RBAC `manifests` renders for the
configuration; blocking HTTP checks run in threads so that it keeps reconciling meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.codecs import from_dict
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Service

from proxycontroller.config import ControllerConfig
from proxycontroller.install.manifests import render_rbac
from proxycontroller.manager.backends import BackendChoice, open_backend
from proxycontroller.manager.controller import build_engine, build_logic, route_namespaces
from proxycontroller.model.resources import ObjectKey
from proxycontroller.reconcile.engine import Engine
from proxycontroller.testing.servers.apiserver import CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT
from proxycontroller.testing.servers.petstore import PATH_HEADER, PETS_BODY, PETS_PATH
from proxycontroller.testing.servers.traffic import answer, wait_for_answer
from proxycontroller.translate.gatewayapi import route_base_name
from proxycontroller.translate.translator import INSTANCE_LABEL
from tests.gateway.conftest import GatewayRig
from tests.gateway.test_kgateway import petstore_service, raw_get
from tests.tasks import cancel

GROUP = "gateway.networking.k8s.io"
HTTPRouteCR = create_namespaced_resource(GROUP, "v1", "HTTPRoute", "httproutes")
GrantCR = create_namespaced_resource(GROUP, "v1beta1", "ReferenceGrant", "referencegrants")
UpstreamCR = create_namespaced_resource("gloo.solo.io", "v1", "Upstream", "upstreams")
ServiceCR = Service
LISTENER = "http-listener"
_ids = itertools.count()


def config_for(rig: GatewayRig, instance: str) -> dict[str, Any]:
    """Two Proxies' worth of strategies on the Gateway's one HTTP section: host-header and path-prefix
    (prefix.example) in one, the HTTPS redirect ({name}.redirect.example) in the other (its virtual hosts are
    named as host-header's, so they cannot share a listener)."""
    parent = {"name": rig.gateway_name, "namespace": rig.gateway_namespace, "sectionName": "http"}
    return {
        "output": "gateway-api",
        "instance": instance,
        "namespaces": [CONTROLLER_NAMESPACE],
        "reconcile": {"coalesceWindowSeconds": 0.1, "maxDelaySeconds": 1.0},
        "proxies": [
            {
                "name": f"{instance}-routes",
                "listeners": [
                    {
                        "name": LISTENER,
                        "strategies": [
                            {"kind": "host-header"},
                            {"kind": "path-prefix", "options": {"name": "prefixes", "domains": ["prefix.example"]}},
                        ],
                    }
                ],
            },
            {
                "name": f"{instance}-redirects",
                "listeners": [
                    {
                        "name": LISTENER,
                        "strategies": [
                            {"kind": "https-redirect", "options": {"domainTemplates": ["{name}.redirect.example"]}}
                        ],
                    }
                ],
            },
        ],
        "gatewayApi": {"parentRefs": [parent]},
    }


def upstream(name: str, service: str = "petstore", port: int = 8080) -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": name, "namespace": CONTROLLER_NAMESPACE},
        "spec": {"kube": {"serviceName": service, "serviceNamespace": "default", "servicePort": port}},
    }


def route_name(instance: str, proxy: str, virtual_host: str) -> str:
    return route_base_name(ObjectKey(CONTROLLER_NAMESPACE, f"{instance}-{proxy}"), LISTENER, virtual_host)


def as_dict(obj: Any) -> dict[str, Any]:
    found: dict[str, Any] = obj.to_dict()
    return found


def ours(rig: GatewayRig, instance: str) -> list[dict[str, Any]]:
    """The HTTPRoutes carrying this instance's label."""
    found = rig.admin.list(HTTPRouteCR, namespace=CONTROLLER_NAMESPACE, labels={INSTANCE_LABEL: instance})
    return [as_dict(obj) for obj in found]


async def until(check: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] = lambda: "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail()}")
        await asyncio.sleep(0.2)


def grant_rbac(rig: GatewayRig, config: ControllerConfig) -> None:
    """The rules `proxycontroller manifests` renders for `config`, written over the rig's (rendered for the Gloo
    output) for the rig's ServiceAccount (the names follow the instance; the rules do not), and in force: the
    authorizer learns of RBAC objects a moment later."""
    for obj in render_rbac(config.model_copy(update={"instance": CONTROLLER_SERVICE_ACCOUNT})):
        made = from_dict(obj)
        try:
            rig.admin.create(made)
        except ApiError as error:
            if error.status.code != 409:
                raise
            rig.admin.replace(made)
    as_controller = Client(KubeConfig.from_file(rig.cluster.controller_kubeconfig))
    refused: list[str] = []

    def allowed() -> bool:
        try:
            list(as_controller.list(GrantCR, namespace="default"))
            list(as_controller.list(HTTPRouteCR, namespace=route_namespaces(config)[0]))
        except ApiError as error:
            if error.status.code != 403:
                raise
            refused[:] = [str(error.status.message)]
            return False
        return True

    deadline = time.monotonic() + 30
    try:
        while not allowed():
            assert time.monotonic() < deadline, f"the rendered RBAC never let the controller in: {refused}"
            time.sleep(0.2)
    finally:
        as_controller.close()


@asynccontextmanager
async def controller(rig: GatewayRig, config: ControllerConfig) -> AsyncIterator[Engine]:
    """The controller as it runs in production: as its ServiceAccount, under the RBAC the renderer makes."""
    await asyncio.to_thread(grant_rbac, rig, config)
    backend = open_backend(BackendChoice(kubeconfig=rig.cluster.controller_kubeconfig))
    engine = build_engine(config, build_logic(config), backend)
    task = asyncio.create_task(engine.run())
    try:
        yield engine
    finally:
        await cancel(task)
        await backend.close()
        if task.done() and not task.cancelled() and task.exception():
            raise AssertionError("the controller crashed") from task.exception()


def accepted(route: dict[str, Any]) -> dict[str, str]:
    """The conditions kgateway wrote for its parent Gateway, by type."""
    for parent in (route.get("status") or {}).get("parents") or []:
        return {c["type"]: c["status"] for c in parent.get("conditions") or []}
    return {}


@pytest.fixture
def instance() -> str:
    return f"gw-{next(_ids)}"


async def test_httproutes_written_by_the_controller_route_host_prefix_and_redirect_through_kgateway(
    gateway_rig: GatewayRig, instance: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = gateway_rig
    for obj in petstore_service(rig):
        rig.apply(obj)
    name = f"default-petstore-{instance}"
    rig.apply(upstream(name))
    raw = config_for(rig, instance)
    config = ControllerConfig.model_validate(raw)
    url = rig.envoy.url(rig.gateway_port, PETS_PATH)
    caplog.set_level("INFO", logger="proxycontroller")
    try:
        async with controller(rig, config) as engine:
            # Host routing: the seed's curl, by Host header.
            seen = await asyncio.to_thread(wait_for_answer, url, name, 200, 90)
            assert seen.body == PETS_BODY
            assert seen.header(PATH_HEADER) == PETS_PATH
            # Path prefix: /<upstream>/api/pets on prefix.example reaches the petstore as /api/pets.
            prefixed = rig.envoy.url(rig.gateway_port, f"/{name}{PETS_PATH}")
            seen = await asyncio.to_thread(wait_for_answer, prefixed, "prefix.example", 200, 60)
            assert (seen.body, seen.header(PATH_HEADER)) == (PETS_BODY, PETS_PATH)
            # The HTTPS redirect: 301 to the same URL over https.
            redirect_host = f"{name}.redirect.example"
            await until(lambda: raw_get(rig, redirect_host, PETS_PATH)[0] == 301, 60, "the redirect")
            status, headers, _ = await asyncio.to_thread(raw_get, rig, redirect_host, f"{PETS_PATH}?x=1")
            assert (status, headers.get("location")) == (301, f"https://{redirect_host}{PETS_PATH}?x=1")
            # Another host is not routed.
            assert (await asyncio.to_thread(answer, url, "nobody.example")).status == 404

            # The cross-namespace routes hold thanks to the ReferenceGrant in the Service's namespace.
            grants = list(rig.admin.list(GrantCR, namespace="default", labels={INSTANCE_LABEL: instance}))
            assert len(grants) == 1
            assert {t["name"] for t in as_dict(grants[0])["spec"]["to"]} == {"petstore"}

            # kgateway's verdict read back: Accepted and ResolvedRefs True on every route; logged by the controller.
            await until(
                lambda: (
                    all(
                        accepted(r).get("Accepted") == accepted(r).get("ResolvedRefs") == "True"
                        for r in ours(rig, instance)
                    )
                    and len(ours(rig, instance)) == 3
                ),
                60,
                "the routes' Accepted and ResolvedRefs conditions",
                lambda: f": {[accepted(r) for r in ours(rig, instance)]}",
            )
            host_route = route_name(instance, "routes", name)
            await until(
                lambda: any(
                    host_route in r.getMessage() and "Accepted=True, ResolvedRefs=True" in r.getMessage()
                    for r in caplog.records
                ),
                30,
                "the controller's log line of the verdict",
            )
            # What it wrote is a fixed point: a full resync writes nothing (every default is spelled out).
            await asyncio.wait_for(engine.converged.wait(), 30)
            writes = engine.health.writes
            engine.resync()
            await asyncio.sleep(1.0)
            await asyncio.wait_for(engine.converged.wait(), 30)
            assert engine.health.writes == writes

            # `proxycontroller status` shows the verdict per route.
            config_file = tmp_path / "config.yaml"
            config_file.write_text(yaml.safe_dump(raw))
            shown = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "proxycontroller.cli.main", "status", "--kubeconfig",
                 str(rig.cluster.admin_kubeconfig), "--config", str(config_file)],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            line = next(line for line in shown.stdout.splitlines() if host_route in line)
            assert "Accepted=True, ResolvedRefs=True" in line
            assert f"{rig.gateway_namespace}/{rig.gateway_name} section http" in line

            # The Upstream deleted: its routes go (the path-prefix route has no rule left, so it goes too).
            rig.admin.delete(UpstreamCR, name, namespace=CONTROLLER_NAMESPACE)
            await until(lambda: not ours(rig, instance), 60, "the routes to be deleted")
            assert not list(rig.admin.list(GrantCR, namespace="default", labels={INSTANCE_LABEL: instance}))
            await asyncio.to_thread(wait_for_answer, url, name, 404, 60)
    finally:
        with contextlib.suppress(ApiError):  # deleted by the test already, unless it failed before
            rig.admin.delete(UpstreamCR, name, namespace=CONTROLLER_NAMESPACE)


async def test_a_route_someone_else_owns_is_never_touched_and_ours_are_restored(
    gateway_rig: GatewayRig, instance: str
) -> None:
    rig = gateway_rig
    for obj in petstore_service(rig):
        rig.apply(obj)
    config = ControllerConfig.model_validate(config_for(rig, instance))
    mine, theirs = f"default-mine-{instance}", f"default-theirs-{instance}"
    foreign_name = route_name(instance, "routes", theirs)
    foreign = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": foreign_name, "namespace": CONTROLLER_NAMESPACE, "labels": {"team": "theirs"}},
        "spec": {
            "parentRefs": [{"name": rig.gateway_name, "namespace": rig.gateway_namespace, "sectionName": "http"}],
            "hostnames": ["theirs.example"],
            "rules": [{"backendRefs": [{"name": "petstore", "namespace": "default", "port": 8080}]}],
        },
    }
    rig.admin.create(from_dict(foreign))
    before = as_dict(rig.admin.get(HTTPRouteCR, foreign_name, namespace=CONTROLLER_NAMESPACE))
    for item in (mine, theirs):
        rig.apply(upstream(item))
    try:
        async with controller(rig, config) as engine:
            my_route = route_name(instance, "routes", mine)
            await until(lambda: any(r["metadata"]["name"] == my_route for r in ours(rig, instance)), 60, "our route")
            await asyncio.wait_for(engine.converged.wait(), 30)
            after = as_dict(rig.admin.get(HTTPRouteCR, foreign_name, namespace=CONTROLLER_NAMESPACE))
            # kgateway writes its verdict into the status (a new resourceVersion); nobody else writes anything.
            assert after["spec"] == before["spec"]
            writers = {entry.get("manager") for entry in after["metadata"].get("managedFields") or []}
            assert config.reconcile.field_manager not in writers
            assert INSTANCE_LABEL not in (after["metadata"].get("labels") or {})

            # Drift: our route edited, then deleted, is restored; so is our ReferenceGrant.
            edited = as_dict(rig.admin.get(HTTPRouteCR, my_route, namespace=CONTROLLER_NAMESPACE))
            wanted = edited["spec"]
            edited["spec"] = {**wanted, "hostnames": ["hijacked.example"]}
            rig.admin.replace(from_dict(edited))
            await until(
                lambda: as_dict(rig.admin.get(HTTPRouteCR, my_route, namespace=CONTROLLER_NAMESPACE))["spec"] == wanted,
                30,
                "the edited route to be restored",
            )
            rig.admin.delete(HTTPRouteCR, my_route, namespace=CONTROLLER_NAMESPACE)
            await until(
                lambda: any(r["metadata"]["name"] == my_route for r in ours(rig, instance)), 30, "the route again"
            )
            (grant,) = rig.admin.list(GrantCR, namespace="default", labels={INSTANCE_LABEL: instance})
            rig.admin.delete(GrantCR, as_dict(grant)["metadata"]["name"], namespace="default")
            await until(
                lambda: len(list(rig.admin.list(GrantCR, namespace="default", labels={INSTANCE_LABEL: instance}))) == 1,
                30,
                "the ReferenceGrant again",
            )
    finally:
        with contextlib.suppress(ApiError):
            for item in (mine, theirs):
                rig.admin.delete(UpstreamCR, item, namespace=CONTROLLER_NAMESPACE)
            rig.admin.delete(HTTPRouteCR, foreign_name, namespace=CONTROLLER_NAMESPACE)


async def test_a_service_without_upstream_is_routed_by_an_httproute_and_deleting_it_removes_the_route(
    gateway_rig: GatewayRig, instance: str
) -> None:
    """`sources: [services]`: a Service port is a route target named as discovery names its Upstream; the
    HTTPRoute lives in the Service's namespace (routeNamespace), so no ReferenceGrant is needed."""
    rig = gateway_rig
    service = f"svc-{instance}"
    objects = petstore_service(rig)
    objects[0]["metadata"] = {"name": service, "namespace": "default", "labels": {"test": instance}}
    objects[1]["metadata"]["name"] = f"{service}-1"
    objects[1]["metadata"]["labels"]["kubernetes.io/service-name"] = service
    for obj in objects:
        rig.apply(obj)
    raw = config_for(rig, instance)
    raw.update(sources=["services"], namespaces=["default"])
    raw["proxies"] = [{**raw["proxies"][0], "selector": {"matchLabels": {"test": instance}}}]
    raw["gatewayApi"]["routeNamespace"] = "default"
    config = ControllerConfig.model_validate(raw)
    host = f"default-{service}-8080"
    url = rig.envoy.url(rig.gateway_port, PETS_PATH)
    try:
        async with controller(rig, config):
            seen = await asyncio.to_thread(wait_for_answer, url, host, 200, 90)
            assert seen.body == PETS_BODY
            listed = rig.admin.list(HTTPRouteCR, namespace="default", labels={INSTANCE_LABEL: instance})
            names = sorted(as_dict(route)["metadata"]["name"] for route in listed)
            assert len(names) == 2  # host-header's and path-prefix's
            assert not list(rig.admin.list(GrantCR, namespace="default", labels={INSTANCE_LABEL: instance}))

            rig.admin.delete(ServiceCR, service, namespace="default")

            def gone() -> bool:
                return not list(rig.admin.list(HTTPRouteCR, namespace="default", labels={INSTANCE_LABEL: instance}))

            await until(gone, 60, "the Service's routes to be deleted")
            await asyncio.to_thread(wait_for_answer, url, host, 404, 60)
    finally:
        with contextlib.suppress(ApiError):
            rig.admin.delete(ServiceCR, service, namespace="default")
