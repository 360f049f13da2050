"""`proxycontroller manifests`: what it renders from the configuration (the cluster proofs are in
tests/kube/test_install.py and tests/e2e/test_install_envoy.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from proxycontroller.cli.main import main
from proxycontroller.config import ControllerConfig
from proxycontroller.install.layout import ManifestError
from proxycontroller.install.manifests import dump_manifests, render_manifests

SEED_KINDS = [
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Deployment",
    "PodDisruptionBudget",
    "ConfigMap",
    "Deployment",
    "Service",
]


def manifests(*args: str, config: str | None = None, tmp_path: Path | None = None) -> tuple[int, str, str]:
    argv = ["manifests", *args]
    if config is not None:
        assert tmp_path is not None
        path = tmp_path / "config.yaml"
        path.write_text(config)
        argv += ["--config", str(path)]
    result = CliRunner().invoke(main, argv)
    return result.exit_code, result.stdout, result.stderr


def objects_of(config: dict[str, Any], text: str = "") -> list[dict[str, Any]]:
    return render_manifests(ControllerConfig.model_validate(config), text)


def find(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] == kind and meta["name"] == name and meta.get("namespace") == namespace:
            return obj
    raise AssertionError(f"no {kind} {namespace}/{name} in {[(o['kind'], o['metadata']['name']) for o in objects]}")


def rules(objects: list[dict[str, Any]], namespace: str | None) -> dict[str, list[str]]:
    """resource -> verbs granted in `namespace` (None: cluster-wide) by the rendered roles."""
    kind = "ClusterRole" if namespace is None else "Role"
    granted: dict[str, list[str]] = {}
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"].get("namespace") == namespace:
            for rule in obj["rules"]:
                for resource in rule["resources"]:
                    granted.setdefault(resource, []).extend(rule["verbs"])
    return granted


def test_the_seed_renders_in_an_order_kubectl_applies_at_once(tmp_path: Path) -> None:
    code, out, err = manifests(tmp_path=tmp_path)
    assert (code, err) == (0, "")
    documents = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in documents] == SEED_KINDS
    ids = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in documents]
    assert len(set(ids)) == len(ids)  # kustomize refuses two objects with one id
    assert "generateName" not in out
    assert manifests(tmp_path=tmp_path)[1] == out  # nothing random: the same bytes every time


def test_json_is_a_list_of_the_same_objects(tmp_path: Path) -> None:
    yaml_out = list(yaml.safe_load_all(manifests(tmp_path=tmp_path)[1]))
    code, out, _ = manifests("-o", "json", tmp_path=tmp_path)
    assert code == 0
    listed = json.loads(out)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert listed["items"] == yaml_out


def test_rbac_is_a_role_per_namespace_and_no_cluster_role_unless_every_namespace_is_routed() -> None:
    objects = objects_of(
        {"namespaces": ["team-a", "team-b"], "proxies": [{"name": "edge", "namespace": "gloo-system"}]}
    )
    assert not [o for o in objects if o["kind"].startswith("Cluster")]
    for namespace in ("team-a", "team-b"):
        assert rules(objects, namespace) == {"upstreams": ["get", "list", "watch"]}
        binding = find(objects, "RoleBinding", "proxycontroller", namespace)
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "proxycontroller", "namespace": "gloo-system"}
        ]
    assert rules(objects, "gloo-system") == {
        "proxies": ["get", "list", "watch", "create", "update", "delete"],
        "events": ["create", "patch"],
        "leases": ["get", "create", "update"],
    }

    everywhere = objects_of({"namespaces": ["*"]})
    assert rules(everywhere, None) == {"upstreams": ["get", "list", "watch"]}
    assert find(everywhere, "ClusterRoleBinding", "proxycontroller")["roleRef"]["kind"] == "ClusterRole"
    assert "upstreams" not in rules(everywhere, "gloo-system")


def test_services_as_a_source_get_read_rights_on_services_where_upstreams_would() -> None:
    both = objects_of({"namespaces": ["team-a"], "sources": ["upstreams", "services"]})
    assert rules(both, "team-a") == {"upstreams": ["get", "list", "watch"], "services": ["get", "list", "watch"]}
    role = find(both, "Role", "proxycontroller", "team-a")
    assert {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]} in role["rules"]
    only = objects_of({"namespaces": ["team-a"], "sources": ["services"]})
    assert rules(only, "team-a") == {"services": ["get", "list", "watch"]}  # no Upstreams read: no right to
    everywhere = objects_of({"namespaces": ["*"], "sources": ["services"]})
    assert rules(everywhere, None) == {"services": ["get", "list", "watch"]}
    assert rules(objects_of({"namespaces": ["*"]}), None) == {"upstreams": ["get", "list", "watch"]}


def test_proxies_only_in_their_namespaces_and_the_lease_in_the_first() -> None:
    config = {
        "instance": "team-x",
        "namespaces": ["apps"],
        "proxies": [{"name": "b-proxy", "namespace": "zeta"}, {"name": "a-proxy", "namespace": "alpha"}],
    }
    objects = objects_of(config)
    assert rules(objects, "alpha") == {
        "proxies": ["get", "list", "watch", "create", "update", "delete"],
        "events": ["create", "patch"],
        "leases": ["get", "create", "update"],  # manager/run.py: the first Proxy namespace, sorted
    }
    assert rules(objects, "zeta") == {
        "proxies": ["get", "list", "watch", "create", "update", "delete"],
        "events": ["create", "patch"],
    }
    assert rules(objects, "apps") == {"upstreams": ["get", "list", "watch"]}
    account = find(objects, "ServiceAccount", "proxycontroller-team-x", "alpha")
    assert account["metadata"]["labels"]["app.kubernetes.io/instance"] == "team-x"


def test_the_controller_deployment_is_hardened_and_reads_the_file_as_written() -> None:
    text = "# our routing\nnamespaces: [gloo-system]\n"
    objects = objects_of({"namespaces": ["gloo-system"]}, text)
    assert find(objects, "ConfigMap", "proxycontroller", "gloo-system")["data"] == {"config.yaml": text}
    deployment = find(objects, "Deployment", "proxycontroller", "gloo-system")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "proxycontroller"
    (container,) = pod["containers"]
    assert "--leader-elect" in container["args"]
    assert "--config=/etc/proxycontroller/config.yaml" in container["args"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    assert container["ports"] == [{"name": "probes", "containerPort": 9091, "protocol": "TCP"}]
    budget = find(objects, "PodDisruptionBudget", "proxycontroller", "gloo-system")
    assert budget["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    # A changed file rolls the pods: its hash is on the pod template.
    other = find(objects_of({}, text + "# changed\n"), "Deployment", "proxycontroller", "gloo-system")
    annotation = "proxycontroller.io/config-sha256"
    assert (
        other["spec"]["template"]["metadata"]["annotations"][annotation]
        != (spec["template"]["metadata"]["annotations"][annotation])
    )


def test_each_proxy_gets_gloos_envoy_bound_to_it_by_role() -> None:
    config = {
        "glooNamespace": "gloo",
        "proxies": [
            {
                "name": "edge",
                "namespace": "gloo",
                "listeners": [
                    {"name": "http", "bindPort": 8080},
                    {
                        "name": "https",
                        "bindPort": 443,
                        "sslConfigurations": [{"secretRef": {"name": "tls", "namespace": "gloo"}}],
                    },
                ],
            }
        ],
        "deployment": {"envoy": {"glooVersion": "1.21.3", "serviceType": "NodePort"}},
    }
    objects = objects_of(config)
    bootstrap = yaml.safe_load(find(objects, "ConfigMap", "edge-envoy-config", "gloo")["data"]["envoy.yaml"])
    assert bootstrap["node"]["metadata"]["role"] == "gloo~edge"
    (cluster,) = bootstrap["static_resources"]["clusters"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "gloo.gloo.svc.cluster.local", "port_value": 9977}
    assert bootstrap["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"
    assert bootstrap["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    (container,) = find(objects, "Deployment", "edge", "gloo")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "quay.io/solo-io/gloo-envoy-wrapper:1.21.3"
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}  # 443
    service = find(objects, "Service", "edge", "gloo")
    assert service["spec"]["type"] == "NodePort"
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("http-8080", 8080), ("https-443", 443)]


def test_a_sharded_proxy_gets_an_envoy_per_shard_on_its_ports() -> None:
    objects = objects_of({"proxies": [{"name": "edge", "shards": 2, "shardPortStep": 10}]})
    for shard, port in ((0, 8080), (1, 8090)):
        service = find(objects, "Service", f"edge-{shard}", "gloo-system")
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
        bootstrap = find(objects, "ConfigMap", f"edge-{shard}-envoy-config", "gloo-system")["data"]["envoy.yaml"]
        assert yaml.safe_load(bootstrap)["node"]["metadata"]["role"] == f"gloo-system~edge-{shard}"


def test_deployment_settings_and_flags(tmp_path: Path) -> None:
    config = "deployment: {namespace: ops, envoy: {namespace: edge, xdsAddress: gloo.internal, xdsPort: 19977}}\n"
    code, out, err = manifests(
        "--image", "registry.example/pc:1", "--service-type", "ClusterIP", config=config, tmp_path=tmp_path
    )
    assert (code, err) == (0, "")
    objects = list(yaml.safe_load_all(out))
    controller = find(objects, "Deployment", "proxycontroller", "ops")
    assert controller["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/pc:1"
    assert find(objects, "RoleBinding", "proxycontroller", "gloo-system")["subjects"][0]["namespace"] == "ops"
    assert find(objects, "Service", "my-cool-proxy", "edge")["spec"]["type"] == "ClusterIP"
    bootstrap = yaml.safe_load(find(objects, "ConfigMap", "my-cool-proxy-envoy-config", "edge")["data"]["envoy.yaml"])
    address = bootstrap["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert address["endpoint"]["address"]["socket_address"] == {"address": "gloo.internal", "port_value": 19977}


@pytest.mark.parametrize(
    ("args", "config", "culprit"),
    [
        (["--gloo-version", "1.22 .1"], None, "error: --gloo-version: '1.22 .1' is not an image tag"),
        (["--image", "Bad Image"], None, "error: --image: 'Bad Image' is not an image reference"),
        (["--service-type", "Ingress"], None, "error: invalid value for '--service-type'"),
        (["--xds-address", "[::1]"], None, "error: --xds-address: '[::1]' is not a host name or IP address"),
        ([], "deployment: {replicas: 0}\n", "deployment.replicas: Input should be greater than or equal to 1"),
        ([], "deployment: {envoy: {resources: {limits: {memory: lots}}}}\n", "'lots' is not a Kubernetes quantity"),
        ([], "deployment: {colour: blue}\n", "deployment.colour: Extra inputs are not permitted"),
        ([], "proxies: [{name: edge.v2}]\n", "proxies[0].name: 'edge.v2' cannot name its Envoy's Service"),
        (
            [],
            "deployment: {envoy: {namespace: edge}}\nproxies: [{name: p, namespace: a}, {name: p, namespace: b}]\n",
            "proxies[1].name: its Envoy and that of proxies[0].name would both be edge/p",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_it(args: list[str], config: str | None, culprit: str, tmp_path: Path) -> None:
    code, out, err = manifests(*args, config=config, tmp_path=tmp_path)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("error: ")
    assert culprit in err


def test_render_is_pure_and_refuses_a_config_too_large_for_a_configmap() -> None:
    with pytest.raises(ManifestError, match="a ConfigMap holds at most about 1 MiB"):
        render_manifests(ControllerConfig(), "#" * (1024 * 1024))


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=200))
def test_the_configuration_file_comes_back_byte_for_byte(text: str) -> None:
    """Whatever the file holds (trailing spaces, tabs, CRs, a document marker, non-ASCII), the ConfigMap in the
    YAML stream holds exactly it: a literal block where YAML can keep it exact, a quoted string where not."""
    documents = list(yaml.safe_load_all(dump_manifests(render_manifests(ControllerConfig(), text))))
    assert find(documents, "ConfigMap", "proxycontroller", "gloo-system")["data"]["config.yaml"] == text
