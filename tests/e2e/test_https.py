"""HTTPS through the real Gloo and a real Envoy, in directory mode: plain HTTP answers every upstream with a
redirect to https (the https-redirect strategy), an upstream that opts out stays on plain HTTP, and a TLS
listener serves the upstreams with the certificate of a Gloo secret (a CA and a certificate the test makes)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from proxycontroller.testing.servers.envoy import Envoy
from proxycontroller.testing.servers.gloo import Gloo, write_resource
from proxycontroller.testing.servers.petstore import PETS_BODY
from proxycontroller.testing.servers.processes import free_port
from proxycontroller.translate.redirect import OPT_OUT_ANNOTATION
from tests.e2e.conftest import controller_serving, run_with_fresh_gloo
from tests.e2e.test_controller_directory import PETSTORE, SECOND, static_upstream

pytestmark = pytest.mark.e2e

SECRET = "petstore-tls"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path

    def cert_der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())


def make_certificates(directory: Path, domain: str) -> Certificates:
    """A CA, and a certificate for `domain` it signs (openssl: the `cryptography` package is not installed)."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed to make the test's CA"
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    key, csr, cert = directory / "tls.key", directory / "tls.csr", directory / "tls.crt"
    extensions = directory / "san.ext"
    extensions.write_text(f"subjectAltName=DNS:{domain}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        [
            openssl,
            "req",
            "-x509",
            *ec,
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=proxycontroller test CA",
        ],
        [openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={domain}"],
        [
            openssl,
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-extfile",
            extensions,
        ],
    ):
        subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=60)
    return Certificates(ca=ca, cert=cert, key=key)


def tls_secret(certificates: Certificates) -> dict[str, Any]:
    """A Gloo TLS secret in flat form, as Gloo's directory secret source reads it (secrets/<ns>/<name>.yaml)."""
    return {
        "metadata": {"name": SECRET, "namespace": "gloo-system"},
        "tls": {"certChain": certificates.cert.read_text(), "privateKey": certificates.key.read_text()},
    }


@dataclass(frozen=True)
class Ports:
    redirect: int  # plain HTTP: a 301 to https://<host>/...
    redirect_to_tls: int  # plain HTTP: a 308 to https://<host>:<tls>/...
    tls: int


def https_config(ports: Ports) -> dict[str, Any]:
    # A request for https://<name>:<port>/ carries the port in its Host header, and Envoy matches domains with it.
    host_header = {"kind": "host-header", "options": {"domainTemplates": ["{name}", f"{{name}}:{ports.tls}"]}}
    return {
        "proxies": [
            {
                "listeners": [
                    {
                        "name": "http",
                        "bindAddress": LOOPBACK,
                        "bindPort": ports.redirect,
                        "strategies": [{"kind": "https-redirect"}],
                    },
                    {
                        "name": "http-to-tls-port",
                        "bindAddress": LOOPBACK,
                        "bindPort": ports.redirect_to_tls,
                        "strategies": [
                            {"kind": "https-redirect", "options": {"responseCode": 308, "httpsPort": ports.tls}}
                        ],
                    },
                    {
                        "name": "https",
                        "bindAddress": LOOPBACK,
                        "bindPort": ports.tls,
                        "sslConfigurations": [{"secretRef": {"name": SECRET, "namespace": "gloo-system"}}],
                        "strategies": [host_header],
                    },
                ]
            }
        ]
    }


@contextlib.contextmanager
def serving_https(gloo: Gloo, petstore_port: int, work_dir: Path) -> Iterator[tuple[Ports, Certificates, Envoy]]:
    """The petstore and a second upstream that opts out of the redirect, the secret, the controller with
    `https_config`, the Proxy accepted by Gloo, and an Envoy serving it."""
    certificates = make_certificates(work_dir / "certs", PETSTORE)
    write_resource(gloo.tree.secret_dir, "secrets", tls_secret(certificates))
    gloo.tree.write("upstreams", static_upstream(PETSTORE, petstore_port))
    opted_out = static_upstream(SECOND, petstore_port)
    opted_out["metadata"]["annotations"] = {OPT_OUT_ANNOTATION: "false"}
    gloo.tree.write("upstreams", opted_out)
    ports = Ports(redirect=free_port(), redirect_to_tls=free_port(), tls=free_port())
    with controller_serving(gloo, work_dir, https_config(ports)) as (_, envoy, _):
        yield ports, certificates, envoy


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def curl(*args: str) -> Answer:
    """What curl answers (never following a redirect); status 0 when nothing answered yet."""
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "5", "--dump-header", "/dev/stderr", *args],
        capture_output=True,
        timeout=30,
        check=False,
    )
    lines = result.stderr.decode(errors="replace").splitlines()
    if result.returncode != 0 or not lines or not lines[0].startswith("HTTP/"):
        return Answer(0, {"curl": " ".join(lines)[-300:]}, b"")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, result.stdout)


def wait_for_curl(status: int, *args: str, timeout: float = 60) -> Answer:
    deadline = time.monotonic() + timeout
    answer = curl(*args)
    while answer.status != status and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = curl(*args)
    assert answer.status == status, f"curl {' '.join(args)} never answered {status}; last: {answer}"
    return answer


def served_certificate(port: int, server_name: str, ca: Path) -> bytes:
    """The certificate (DER) Envoy presents for this SNI, verified against the test's CA."""
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((LOOPBACK, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_plain_http_answers_301_to_https_and_an_upstream_that_opts_out_stays_on_http(
    gloo_binary: Path, petstore_port: int, tmp_path: Path
) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, lambda gloo, root: redirects(gloo, petstore_port, root))


def redirects(gloo: Gloo, petstore_port: int, work_dir: Path) -> None:
    with serving_https(gloo, petstore_port, work_dir) as (ports, certificates, _):
        # The issue's curl, on the listener's port.
        answer = wait_for_curl(301, "-H", f"Host: {PETSTORE}", f"http://{LOOPBACK}:{ports.redirect}/api/pets")
        assert answer.headers["location"] == f"https://{PETSTORE}/api/pets"
        # The query stays; another status and the HTTPS listener's port when configured, and that Location,
        # followed over TLS, gives the pets.
        answer = wait_for_curl(
            308, "-H", f"Host: {PETSTORE}", f"http://{LOOPBACK}:{ports.redirect_to_tls}/api/pets?x=1"
        )
        location = f"https://{PETSTORE}:{ports.tls}/api/pets?x=1"
        assert answer.headers["location"] == location
        followed = wait_for_curl(
            200, "--cacert", str(certificates.ca), "--resolve", f"{PETSTORE}:{ports.tls}:{LOOPBACK}", location
        )
        assert followed.body == PETS_BODY
        # The upstream that opted out answers over plain HTTP on the same listener; an unknown host finds nothing.
        plain = wait_for_curl(200, "-H", f"Host: {SECOND}", f"http://{LOOPBACK}:{ports.redirect}/api/pets")
        assert plain.body == PETS_BODY
        assert curl("-H", "Host: unknown.example", f"http://{LOOPBACK}:{ports.redirect}/api/pets").status == 404


def test_tls_listener_serves_the_pets_with_the_configured_certificate(
    gloo_binary: Path, petstore_port: int, tmp_path: Path
) -> None:
    run_with_fresh_gloo(gloo_binary, tmp_path, lambda gloo, root: serves_tls(gloo, petstore_port, root))


def serves_tls(gloo: Gloo, petstore_port: int, work_dir: Path) -> None:
    with serving_https(gloo, petstore_port, work_dir) as (ports, certificates, _):
        url = f"https://{PETSTORE}:{ports.tls}/api/pets"
        # The issue's curl, on the listener's port: verified against the test's CA, so only its certificate passes.
        answer = wait_for_curl(
            200, "--cacert", str(certificates.ca), "--resolve", f"{PETSTORE}:{ports.tls}:{LOOPBACK}", url
        )
        assert answer.body == PETS_BODY
        served = served_certificate(ports.tls, PETSTORE, certificates.ca)
        assert hashlib.sha256(served).hexdigest() == hashlib.sha256(certificates.cert_der()).hexdigest()
        # Plain HTTP on the TLS port is refused, and a client that does not trust the test's CA refuses the server.
        assert curl("-H", f"Host: {PETSTORE}", f"http://{LOOPBACK}:{ports.tls}/api/pets").status == 0
        untrusted = curl("--resolve", f"{PETSTORE}:{ports.tls}:{LOOPBACK}", url)
        assert untrusted.status == 0
        assert "certificate" in untrusted.headers["curl"].lower()
