"""TLS in Kubernetes mode: a listener's `sslConfigurations[].secretRef` names a Kubernetes TLS Secret (type
kubernetes.io/tls) holding a certificate the test's own CA signed; the controller (as its service account, under
the rendered RBAC, which grants it no Secrets) writes the Proxy, the real Gloo reads the Secret and the Proxy from the
API server, and a real Envoy serves the pets over TLS with exactly that certificate, and with the next one when the
Secret is replaced."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import start_envoy
from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import free_port
from tests.e2e.kube_fixtures import KubeGloo, static_upstream_cr, wait_for_proxy_state
from tests.e2e.test_https import Certificates, curl, make_certificates, served_certificate, wait_for_curl

pytestmark = pytest.mark.e2e

PROXY = "my-cool-proxy"
PETSTORE = "default-petstore-8080"
SECRET = "petstore-tls"
GLOO_SYSTEM = "gloo-system"
LOOPBACK = "127.0.0.1"


def tls_secret(certificates: Certificates) -> Secret:
    """What `kubectl create secret tls petstore-tls -n gloo-system --cert tls.crt --key tls.key` creates."""
    return Secret(
        metadata=ObjectMeta(name=SECRET, namespace=GLOO_SYSTEM),
        type="kubernetes.io/tls",
        stringData={"tls.crt": certificates.cert.read_text(), "tls.key": certificates.key.read_text()},
    )


def tls_config(port: int) -> dict[str, Any]:
    # https://<name>:<port>/ carries the port in its Host header, and Envoy matches domains with it.
    host_header = {"kind": "host-header", "options": {"domainTemplates": ["{name}", f"{{name}}:{port}"]}}
    listener = {
        "name": "https",
        "bindAddress": LOOPBACK,
        "bindPort": port,
        "sslConfigurations": [{"secretRef": {"name": SECRET, "namespace": GLOO_SYSTEM}}],
        "strategies": [host_header],
    }
    return {"proxies": [{"name": PROXY, "namespace": GLOO_SYSTEM, "listeners": [listener]}]}


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def wait_for_served_certificate(port: int, certificates: Certificates, timeout: float = 60) -> bytes:
    """The certificate Envoy presents for the petstore's SNI, once it is the one in `certificates` (verified
    against their CA: a TLS error, e.g. the previous certificate's CA, counts as not yet)."""
    deadline = time.monotonic() + timeout
    served = b""
    while time.monotonic() < deadline:
        try:
            served = served_certificate(port, PETSTORE, certificates.ca)
        except OSError:  # ssl.SSLError included
            served = b""
        if served == certificates.cert_der():
            return served
        time.sleep(0.2)
    raise AssertionError(f"Envoy on :{port} never presented {certificates.cert}; last: sha256 {sha256(served)}")


def test_tls_listener_serves_the_pets_with_the_certificate_of_a_kubernetes_tls_secret(
    kube_gloo: KubeGloo, admin: Client, petstore_port: int, tmp_path: Path
) -> None:
    first = make_certificates(tmp_path / "certs-1", PETSTORE)
    admin.create(tls_secret(first))
    admin.create(static_upstream_cr(PETSTORE, petstore_port))
    port = free_port()
    url = f"https://{PETSTORE}:{port}/api/pets"
    resolve = f"{PETSTORE}:{port}:{LOOPBACK}"
    backend = ["--kubeconfig", str(kube_gloo.cluster.controller_kubeconfig)]
    with controller_process(tmp_path / "controller", backend, tls_config(port)) as (controller, _):
        try:
            wait_for_proxy_state(admin, PROXY, timeout=60, alive=kube_gloo.process.running)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(
                f"{error}\n--- controller:\n{controller.log_tail()}\n--- gloo:\n{kube_gloo.process.log_tail()}"
            ) from None
        with start_envoy(tmp_path / "envoy", xds_port=kube_gloo.xds_port, proxy_name=PROXY) as envoy:
            try:
                # The issue's curl: verified against the test's CA, so only a certificate it signed passes.
                answer = wait_for_curl(200, "--cacert", str(first.ca), "--resolve", resolve, url)
                assert answer.body == PETS_BODY
                served = served_certificate(port, PETSTORE, first.ca)
                assert sha256(served) == sha256(first.cert_der())
                # A client that does not trust the test's CA refuses the server; plain HTTP gets no answer.
                untrusted = curl("--resolve", resolve, url)
                assert untrusted.status == 0
                assert "certificate" in untrusted.headers["curl"].lower()
                assert curl("-H", f"Host: {PETSTORE}", f"http://{LOOPBACK}:{port}/api/pets").status == 0

                # The certificate comes from the Secret: replace it (another CA, too) and Envoy presents the new
                # one, which the old CA no longer verifies.
                second = make_certificates(tmp_path / "certs-2", PETSTORE)
                admin.replace(tls_secret(second))
                assert sha256(wait_for_served_certificate(port, second)) == sha256(second.cert_der())
                answer = wait_for_curl(200, "--cacert", str(second.ca), "--resolve", resolve, url)
                assert answer.body == PETS_BODY
                assert curl("--cacert", str(first.ca), "--resolve", resolve, url).status == 0
            except AssertionError as error:
                raise AssertionError(
                    f"{error}\n--- controller:\n{controller.log_tail()}\n--- gloo:\n{kube_gloo.process.log_tail()}"
                    f"\n--- envoy:\n{envoy.process.log_tail()}"
                ) from None
        assert controller.running(), controller.log_tail()
