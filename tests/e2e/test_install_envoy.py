"""The install, end to end: `proxycontroller manifests | kubectl apply -f -` on the real API server, the controller
run with the configuration from the rendered ConfigMap and a token of the rendered ServiceAccount, and the Envoy
bootstrap taken out of the rendered ConfigMap (its ADS address pointed at this Gloo, as the cluster's DNS would
point `gloo.gloo-system.svc.cluster.local` at Gloo's pod) run by a real Envoy: the seed's curl returns the pets.

No kubelet runs the Deployments here, so the controller and Envoy run as processes on loopback, with exactly what
the rendered objects hold."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap

from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import admin_get, envoy_binary, envoy_ready
from proxycontroller.testing.servers.gloo import GlooBuildError, build_envoyinit
from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import ManagedProcess, free_port, running
from proxycontroller.testing.servers.traffic import get, wait_for_status
from tests.e2e.kube_fixtures import KubeGloo, static_upstream_cr, wait_for_proxy_state

pytestmark = pytest.mark.e2e

INSTANCE = "envoy-proof"
PROXY = "my-cool-proxy"
PETSTORE = "default-petstore-8080"


def rendered(tmp_path: Path, listener_port: int) -> str:
    config = {
        "instance": INSTANCE,
        "proxies": [
            {
                "name": PROXY,
                "namespace": "gloo-system",
                "listeners": [{"name": "my-amazing-listener", "bindAddress": "127.0.0.1", "bindPort": listener_port}],
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text("# the README's install, on loopback\n" + yaml.safe_dump(config))
    script = Path(sys.executable).parent / "proxycontroller"
    result = subprocess.run(
        [str(script), "manifests", "--config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def bootstrap_for_this_machine(stored: str, xds_port: int, admin_port: int) -> dict[str, Any]:
    """The rendered bootstrap with only its addresses changed: ADS to this Gloo, admin on a free loopback port."""
    bootstrap: dict[str, Any] = yaml.safe_load(stored)
    (cluster,) = bootstrap["static_resources"]["clusters"]
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    socket = endpoint["endpoint"]["address"]["socket_address"]
    assert socket == {"address": "gloo.gloo-system.svc.cluster.local", "port_value": 9977}
    socket.update(address="127.0.0.1", port_value=xds_port)
    admin = bootstrap["admin"]["address"]["socket_address"]
    assert admin["address"] == "127.0.0.1"
    admin["port_value"] = admin_port
    return bootstrap


@pytest.fixture(scope="module")
def envoyinit() -> Path:
    try:
        return build_envoyinit()
    except GlooBuildError as error:
        pytest.fail(f"cannot build Gloo's envoyinit: {error}", pytrace=False)


def envoy_as_rendered(admin: Client, envoyinit: Path, bootstrap: Path, work: Path) -> ManagedProcess:
    """The Envoy container as the stored Deployment runs it: Gloo's image entrypoint `envoyinit` reads the bootstrap
    (INPUT_CONF; /etc/envoy/envoy.yaml in the pod) and execs Envoy (ENVOY; here PyPI's) with it and the container's
    arguments, `$(VAR)` expanded from the pod's downward-API environment as the kubelet does."""
    deployment: Any = admin.get(Deployment, PROXY, namespace="gloo-system")
    (container,) = deployment.spec.template.spec.containers
    pod = {"POD_NAME": f"{PROXY}-0", "POD_NAMESPACE": "gloo-system"}
    assert {env.name for env in container.env} == set(pod)
    args = [re.sub(r"\$\((\w+)\)", lambda match: pod[match.group(1)], arg) for arg in container.args]
    assert args[args.index("--service-node") + 1] == f"{PROXY}-0.gloo-system"
    env = {
        **os.environ,
        **pod,
        "ENVOY": str(envoy_binary()),
        "INPUT_CONF": str(bootstrap),
        "OUTPUT_CONF": str(work / "envoy-transformed.yaml"),
    }
    return ManagedProcess("envoy", [str(envoyinit), *args, "--concurrency", "1"], work / "envoy.log", env=env)


def test_the_seeds_curl_through_the_installed_envoy(
    kube_gloo: KubeGloo, admin: Client, envoyinit: Path, petstore_port: int, tmp_path: Path
) -> None:
    cluster = kube_gloo.cluster
    listener_port = free_port()
    lines = cluster.kubectl("apply", "-f", "-", stdin=rendered(tmp_path, listener_port))
    assert all(line.endswith(" created") for line in lines), lines
    admin.create(static_upstream_cr(PETSTORE, petstore_port))

    stored_config: Any = admin.get(ConfigMap, f"proxycontroller-{INSTANCE}", namespace="gloo-system")
    controller_config = yaml.safe_load(stored_config.data["config.yaml"])
    account = cluster.service_account_kubeconfig(f"proxycontroller-{INSTANCE}", "gloo-system", tmp_path / "account")
    stored_bootstrap: Any = admin.get(ConfigMap, f"{PROXY}-envoy-config", namespace="gloo-system")
    admin_port = free_port()
    bootstrap = bootstrap_for_this_machine(stored_bootstrap.data["envoy.yaml"], kube_gloo.xds_port, admin_port)
    bootstrap_path = tmp_path / "envoy.yaml"
    bootstrap_path.write_text(yaml.safe_dump(bootstrap))
    url = f"http://127.0.0.1:{listener_port}/api/pets"

    with controller_process(tmp_path / "controller", ["--kubeconfig", str(account)], controller_config) as (
        controller,
        _,
    ):
        try:
            wait_for_proxy_state(admin, PROXY, (1, "Accepted"), timeout=60, alive=kube_gloo.process.running)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(f"{error}\n--- controller:\n{controller.log_tail()}") from None
        envoy = envoy_as_rendered(admin, envoyinit, bootstrap_path, tmp_path)
        with running(envoy, envoy_ready(f"http://127.0.0.1:{admin_port}"), timeout=60):
            # envoyinit read the bootstrap and wrote what it gave Envoy (its debugging copy).
            assert yaml.safe_load((tmp_path / "envoy-transformed.yaml").read_text()) == bootstrap
            try:
                assert wait_for_status(url, PETSTORE, 200, timeout=60) == PETS_BODY
                # Each pod names itself: the node id is the one the Deployment's arguments give.
                status, info = admin_get(f"http://127.0.0.1:{admin_port}", "/server_info")
                assert status == 200
                assert json.loads(info)["node"]["id"] == f"{PROXY}-0.gloo-system"
                assert get(url, "unknown.example")[0] == 404
            except AssertionError as error:
                raise AssertionError(
                    f"{error}\n--- envoy:\n{envoy.log_tail()}\n--- gloo:\n{kube_gloo.process.log_tail()}"
                ) from None
