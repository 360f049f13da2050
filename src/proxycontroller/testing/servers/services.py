"""A Service whose endpoints are written by hand: the test API server runs no endpoint controller.

The testbin builds kube-apiserver and etcd only (no kube-controller-manager, no kubelet), so nothing turns a
Service's selector into EndpointSlices. `service_objects` returns a Service without selector and the
EndpointSlice the endpoint controller would have written for it, pointing at an address of the test host
(`netns.py`: the API server refuses loopback endpoint addresses).
"""

from __future__ import annotations

from typing import Any

MANAGED_BY = "proxycontroller-tests"


def service_objects(
    *, name: str, namespace: str, port: int, address: str, target_port: int, port_name: str = "http"
) -> list[dict[str, Any]]:
    """The Service (ClusterIP, one TCP port) and its EndpointSlice with one ready endpoint `address:target_port`."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": port_name, "port": port, "targetPort": target_port, "protocol": "TCP"}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": namespace,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": port_name, "port": target_port, "protocol": "TCP"}],
        },
    ]
