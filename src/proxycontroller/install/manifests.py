"""`proxycontroller manifests`: everything a cluster needs, in an order `kubectl apply -f -` can apply at once.

Plain objects with fixed names (no generateName, nothing random: rendering twice gives the same bytes, and
kustomize can patch them by name): the ServiceAccount, the RBAC, the controller's ConfigMap, Deployment and
PodDisruptionBudget, then per managed Proxy (in the configuration's order) its Envoy's ConfigMap, Deployment and
Service. Namespaces are not created: they are the ones Gloo and the routed services already live in.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from proxycontroller.config import ControllerConfig
from proxycontroller.install import controller, envoy, rbac
from proxycontroller.install.layout import Layout, ManifestError

# The API server refuses a ConfigMap over 1 MiB (data and metadata together).
MAX_CONFIG_BYTES = 1024 * 1024 - 16 * 1024


def render_manifests(config: ControllerConfig, config_text: str) -> list[dict[str, Any]]:
    """The objects, as plain JSON-able dicts (no object shared between two places, so YAML has no aliases).
    `config_text`: the configuration file as written, for the controller's ConfigMap. ManifestError if the
    configuration cannot be installed."""
    if len(config_text.encode()) > MAX_CONFIG_BYTES:
        raise ManifestError(
            f"the configuration file is {len(config_text.encode())} bytes; a ConfigMap holds at most about 1 MiB"
        )
    layout = Layout(config)
    # With the Gateway API output no Proxy is written: the Gateway's implementation runs its own Envoys.
    envoys = layout.envoys() if config.output != "gateway-api" else []
    objects = [
        rbac.service_account(layout),
        *rbac.rbac_objects(layout),
        controller.config_map(layout, config_text),
        controller.deployment(layout, config_text),
        controller.disruption_budget(layout),
    ]
    for each in envoys:
        objects.extend(envoy.envoy_objects(layout, each))
    copied: list[dict[str, Any]] = json.loads(json.dumps(objects))
    return copied


def render_rbac(config: ControllerConfig) -> list[dict[str, Any]]:
    """Only the ServiceAccount and its RBAC (what the test API server runs every controller under)."""
    layout = Layout(config)
    copied: list[dict[str, Any]] = json.loads(json.dumps([rbac.service_account(layout), *rbac.rbac_objects(layout)]))
    return copied


def as_list(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """A `kind: List`, as `kubectl get -o json` writes several objects."""
    return {"apiVersion": "v1", "kind": "List", "items": objects}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the configuration file, Envoy's bootstrap) as literal blocks, readable in a review;
    PyYAML falls back to a quoted string where a block cannot hold one exactly."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def dump_manifests(objects: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream, keys in the order they were built (apiVersion, kind, metadata first)."""
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=True)


__all__ = ["ManifestError", "as_list", "dump_manifests", "render_manifests", "render_rbac"]
