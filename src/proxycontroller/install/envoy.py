"""The second Envoy of each managed Proxy: its bootstrap in a ConfigMap, a Deployment of Gloo's Envoy image
and a Service exposing each listener.

Gloo serves an Envoy the xDS snapshot of the Proxy named by its `node.metadata.role` (`<namespace>~<name>`), over
one ADS stream to Gloo's xDS port; the listeners it then opens are the Proxy's (`bindPort`). Gloo's image runs
`envoyinit`, which reads the bootstrap from /etc/envoy/envoy.yaml and passes its arguments on to Envoy. Each pod
names itself with `--service-node` (the node id; Gloo keys nothing by it).
"""

from __future__ import annotations

from typing import Any

from proxycontroller.config import ListenerSettings
from proxycontroller.install.controller import resources, restricted_security_context
from proxycontroller.install.layout import (
    APP,
    COMPONENT_LABEL,
    CONFIG_HASH_ANNOTATION,
    INSTANCE_LABEL,
    NAME_LABEL,
    PART_OF_LABEL,
    EnvoyLayout,
    Layout,
    digest,
)
from proxycontroller.model.documents import dump_yaml

XDS_CLUSTER = "xds_cluster"
BOOTSTRAP_KEY = "envoy.yaml"
BOOTSTRAP_DIR = "/etc/envoy"  # where envoyinit reads envoy.yaml
ENVOY_USER = 10101  # the user Gloo's Envoy image runs as
ADMIN_HOST = "127.0.0.1"


def ads_config_source(**extra: str) -> dict[str, Any]:
    """A config source that says: over the ADS stream (v3), with `extra` (e.g. `initial_fetch_timeout`)."""
    return {"ads": {}, "resource_api_version": "V3", **extra}


def xds_cluster(address: dict[str, Any], *, resolve_dns: bool = False) -> dict[str, Any]:
    """The static cluster Envoy reaches its xDS server through, at `address` (an Envoy core Address). With
    `resolve_dns` the address is a host name, resolved again as its DNS answer changes."""
    resolution = {"type": "STRICT_DNS", "respect_dns_ttl": True} if resolve_dns else {"type": "STATIC"}
    return {
        "name": XDS_CLUSTER,
        **resolution,
        "connect_timeout": "5s",
        # gRPC needs HTTP/2 to the control plane.
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
    }


def ads_dynamic_resources(**extra: str) -> dict[str, Any]:
    """Every listener and cluster (and through them routes and endpoints) over one ADS stream on `xds_cluster`;
    `extra` is added to the CDS and LDS config sources."""
    return {
        "ads_config": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
        },
        "cds_config": ads_config_source(**extra),
        "lds_config": ads_config_source(**extra),
    }


def bootstrap(layout: Layout, envoy: EnvoyLayout) -> dict[str, Any]:
    """Envoy's v3 bootstrap: everything (CDS, LDS and through them EDS, RDS) from Gloo over ADS."""
    settings = layout.settings.envoy
    address = {"socket_address": {"address": layout.xds_address, "port_value": settings.xds_port}}
    return {
        "node": {"id": envoy.name, "cluster": envoy.name, "metadata": {"role": envoy.role}},
        # Gloo's Service name, resolved again as its DNS answer changes (Gloo restarted elsewhere).
        "static_resources": {"clusters": [xds_cluster(address, resolve_dns=True)]},
        "dynamic_resources": ads_dynamic_resources(),
        # Loopback only: the admin interface can stop Envoy. The probes run inside the pod.
        "admin": {"address": {"socket_address": {"address": ADMIN_HOST, "port_value": settings.admin_port}}},
    }


def port_name(listener: ListenerSettings, port: int) -> str:
    """A Service port's name (at most 15 characters): `http-8080`, or `https-8443` for a TLS listener, which
    `proxycontroller url` reads back to choose the scheme."""
    return f"{'https' if listener.ssl_configurations else 'http'}-{port}"


def _labels(layout: Layout, envoy: EnvoyLayout) -> dict[str, str]:
    return {
        **envoy.selector,
        NAME_LABEL: "gloo-envoy",
        INSTANCE_LABEL: layout.config.instance,
        COMPONENT_LABEL: "envoy",
        PART_OF_LABEL: APP,
    }


def _meta(layout: Layout, envoy: EnvoyLayout, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": envoy.namespace, "labels": _labels(layout, envoy)}


def config_map(layout: Layout, envoy: EnvoyLayout) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(layout, envoy, envoy.config_map),
        "data": {BOOTSTRAP_KEY: dump_yaml(bootstrap(layout, envoy))},
    }


def _admin_probe(layout: Layout, path: str) -> dict[str, Any]:
    # The admin interface listens on loopback only, out of the kubelet's reach: probe from inside (Gloo's chart
    # does the same; its image has wget).
    url = f"http://{ADMIN_HOST}:{layout.settings.envoy.admin_port}{path}"
    return {"exec": {"command": ["wget", "-q", "-O", "/dev/null", url]}, "periodSeconds": 10, "failureThreshold": 3}


def deployment(layout: Layout, envoy: EnvoyLayout) -> dict[str, Any]:
    settings = layout.settings.envoy
    # A port under 1024 needs the one capability a non-root process binds it with.
    privileged_port = any(port < 1024 for _, port in envoy.listeners)
    container = {
        "name": "envoy",
        "image": f"{settings.image}:{settings.gloo_version}",
        "imagePullPolicy": settings.image_pull_policy,
        # Envoy's command line takes `--flag value`, not `--flag=value`.
        "args": ["--disable-hot-restart", "--service-node", "$(POD_NAME).$(POD_NAMESPACE)"],
        "env": [
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [
            {"name": port_name(listener, port), "containerPort": port, "protocol": "TCP"}
            for listener, port in envoy.listeners
        ],
        "readinessProbe": {**_admin_probe(layout, "/ready"), "initialDelaySeconds": 3},
        "livenessProbe": {**_admin_probe(layout, "/server_info"), "initialDelaySeconds": 10},
        "resources": resources(settings.resources),
        "securityContext": restricted_security_context(ENVOY_USER, ("NET_BIND_SERVICE",) if privileged_port else ()),
        "volumeMounts": [{"name": "envoy-config", "mountPath": BOOTSTRAP_DIR, "readOnly": True}],
    }
    bootstrap_text = config_map(layout, envoy)["data"][BOOTSTRAP_KEY]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(layout, envoy, envoy.name),
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": envoy.selector},
            "template": {
                "metadata": {
                    "labels": _labels(layout, envoy),
                    "annotations": {CONFIG_HASH_ANNOTATION: digest(bootstrap_text)},
                },
                "spec": {
                    # Envoy needs no Kubernetes API.
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "envoy-config", "configMap": {"name": envoy.config_map}}],
                },
            },
        },
    }


def service(layout: Layout, envoy: EnvoyLayout) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(layout, envoy, envoy.name),
        "spec": {
            "type": layout.settings.envoy.service_type,
            "selector": envoy.selector,
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                for name, port in ((port_name(listener, port), port) for listener, port in envoy.listeners)
            ],
        },
    }


def envoy_objects(layout: Layout, envoy: EnvoyLayout) -> list[dict[str, Any]]:
    return [config_map(layout, envoy), deployment(layout, envoy), service(layout, envoy)]
