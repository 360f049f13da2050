"""Small builders for test inputs."""

from __future__ import annotations

from proxycontroller.model.resources import Upstream


def kube_upstream(name: str, namespace: str = "gloo-system", port: int = 8080) -> Upstream:
    return Upstream.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"kube": {"serviceName": name, "serviceNamespace": "default", "servicePort": port}},
        }
    )
