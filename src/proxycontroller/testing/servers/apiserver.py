"""A real Kubernetes API server for tests: etcd and kube-apiserver, built from their Go modules.

Nothing here fakes the API: `tools/testbin/build-kube.sh` builds the real `kube-apiserver` of
k8s.io/kubernetes and the real `etcd`, and `KubeTestCluster` runs them on loopback (free ports) in a work
directory, with the RBAC authorizer, static bearer tokens for an admin (group system:masters) and for the
controller's service account, Gloo's own CRDs (read from Gloo's Go module) and the controller's RBAC as
`proxycontroller manifests` renders it for every namespace (`controller_rbac_manifest`) applied.

    with kube_test_cluster(tmp_path) as cluster:
        client = lightkube.Client(lightkube.KubeConfig.from_file(cluster.controller_kubeconfig))

The watch cache is off by default so that `compact_etcd()` makes older resourceVersions answer 410 Gone at
once, as etcd itself does; with it on, the API server keeps serving recent history from memory.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from proxycontroller.testing.servers.processes import ManagedProcess, ProcessFailedError, free_port, http_ready

LOOPBACK = "127.0.0.1"
CONTROLLER_NAMESPACE = "gloo-system"
CONTROLLER_SERVICE_ACCOUNT = "proxycontroller"
CONTROLLER_USER = f"system:serviceaccount:{CONTROLLER_NAMESPACE}:{CONTROLLER_SERVICE_ACCOUNT}"
CONTROLLER_GROUPS = (
    "system:serviceaccounts",
    f"system:serviceaccounts:{CONTROLLER_NAMESPACE}",
    "system:authenticated",
)
ADMIN_USER = "test-admin"
ADMIN_GROUPS = ("system:masters",)
GLOO_CRD_KINDS = ("Proxy", "Upstream", "UpstreamGroup", "Settings")
FIELD_MANAGER = "proxycontroller-test-cluster"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class KubeBuildError(RuntimeError):
    """tools/testbin/build.sh could not build kube-apiserver and etcd."""


def find_repo_root(start: Path | None = None) -> Path:
    """The checkout this module runs from: the nearest directory above with tools/testbin/build.sh."""
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "tools" / "testbin" / "build.sh").is_file():
            return candidate
    raise FileNotFoundError(f"no tools/testbin/build.sh above {here}; pass repo_root explicitly")


@dataclass(frozen=True)
class Permission:
    """One request the RBAC authorizer is asked about (resource attributes of a SubjectAccessReview)."""

    verb: str
    resource: str
    group: str = ""
    namespace: str | None = None  # None: cluster-wide (every namespace)


# What the rendered RBAC grants the controller; start() waits until the authorizer allows each of them.
CONTROLLER_PERMISSIONS = (
    Permission("list", "upstreams", "gloo.solo.io"),
    Permission("watch", "upstreams", "gloo.solo.io"),
    Permission("create", "proxies", "gloo.solo.io", CONTROLLER_NAMESPACE),
    Permission("update", "leases", "coordination.k8s.io", CONTROLLER_NAMESPACE),
)


@dataclass(frozen=True)
class KubeBinaries:
    kube_apiserver: Path
    etcd: Path
    etcdctl: Path | None = None
    kubectl: Path | None = None  # the same Kubernetes release's


def _run_script(args: Sequence[str], what: str) -> str:
    """Run a testbin script; its stderr (progress) is passed on, its stdout returned."""
    result = subprocess.run(list(args), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-40:])
        raise KubeBuildError(f"{what} failed (exit {result.returncode}): {' '.join(args)}\n{tail}")
    return result.stdout


def build_kube_binaries(repo_root: Path | None = None) -> KubeBinaries:
    """Build (or take from the cache) kube-apiserver, etcd and etcdctl via `tools/testbin/build.sh kube`."""
    root = repo_root or find_repo_root()
    out = _run_script([str(root / "tools" / "testbin" / "build.sh"), "kube"], "building kube-apiserver/etcd")
    paths: dict[str, Path] = {}
    for line in out.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in ("KUBE_APISERVER", "ETCD", "ETCDCTL", "KUBECTL"):
            paths[name] = Path(value)
    missing = [n for n in ("KUBE_APISERVER", "ETCD") if n not in paths or not paths[n].is_file()]
    if missing:
        raise KubeBuildError(f"build.sh kube printed no usable {', '.join(missing)}; stdout was:\n{out}")
    etcdctl, kubectl = paths.get("ETCDCTL"), paths.get("KUBECTL")
    return KubeBinaries(
        kube_apiserver=paths["KUBE_APISERVER"],
        etcd=paths["ETCD"],
        etcdctl=etcdctl if etcdctl is not None and etcdctl.is_file() else None,
        kubectl=kubectl if kubectl is not None and kubectl.is_file() else None,
    )


def gloo_crd_files(repo_root: Path | None = None) -> list[Path]:
    """Gloo's CRD manifests for Proxy, Upstream, UpstreamGroup and Settings, from Gloo's Go module."""
    root = repo_root or find_repo_root()
    out = _run_script([str(root / "tools" / "testbin" / "gloo-module.sh")], "locating Gloo's Go module")
    module_dir = Path(out.strip().splitlines()[-1])
    crd_dir = module_dir / "install" / "helm" / "gloo" / "crds"
    files = [crd_dir / f"gloo.solo.io_v1_{kind}.yaml" for kind in GLOO_CRD_KINDS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"Gloo CRDs not found: {', '.join(missing)}")
    return files


def _unverified_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class KubeTestCluster:
    """etcd + kube-apiserver on loopback, bootstrapped with Gloo's CRDs, namespaces and the controller's RBAC.

    Call `start()` once and `stop()` always (or use `kube_test_cluster()`, which does both).
    """

    def __init__(
        self,
        workdir: Path,
        binaries: KubeBinaries,
        *,
        crd_files: Sequence[Path] = (),
        manifests: Sequence[Path] = (),
        namespaces: Sequence[str] = (CONTROLLER_NAMESPACE, "default"),
        controller_permissions: Sequence[Permission] = (),
        watch_cache: bool = False,
        ready_timeout: float = 120.0,
    ) -> None:
        self.workdir = workdir.resolve()
        self.binaries = binaries
        self.crd_files = tuple(crd_files)
        self.manifests = tuple(manifests)
        self.namespaces = tuple(namespaces)
        self.controller_permissions = tuple(controller_permissions)
        self.watch_cache = watch_cache
        self.ready_timeout = ready_timeout
        self.admin_token = secrets.token_urlsafe(32)
        self.controller_token = secrets.token_urlsafe(32)
        self.etcd_port = free_port(LOOPBACK)
        self.etcd_peer_port = free_port(LOOPBACK)
        self.apiserver_port = free_port(LOOPBACK)
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None

    # -- where things are ------------------------------------------------------------------------------

    @property
    def server_url(self) -> str:
        return f"https://{LOOPBACK}:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://{LOOPBACK}:{self.etcd_port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def controller_kubeconfig(self) -> Path:
        return self.workdir / "controller.kubeconfig"

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "pki"

    @property
    def ca_file(self) -> Path:
        """The API server's self-signed serving certificate bundle (leaf + its CA), written at first start."""
        return self.cert_dir / "apiserver.crt"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def etcd_log(self) -> Path:
        return self.log_dir / "etcd.log"

    @property
    def apiserver_log(self) -> Path:
        return self.log_dir / "kube-apiserver.log"

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> KubeTestCluster:
        """Start etcd and kube-apiserver, wait until ready, write kubeconfigs, install CRDs and RBAC."""
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._write_credentials()
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfigs()
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd; safe to call any number of times, also after a failed start."""
        try:
            if self._apiserver is not None:
                self._apiserver.stop(grace=15.0)
        finally:
            if self._etcd is not None:
                self._etcd.stop(grace=10.0)

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver, start it again (same port, etcd, certificates, tokens), wait until ready."""
        if self._apiserver is not None:
            self._apiserver.stop(grace=15.0)
        self._start_apiserver()

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running servers, by name (etcd, kube-apiserver)."""
        return {p.name: p.pid for p in (self._etcd, self._apiserver) if p is not None and p.running()}

    def apiserver_running(self) -> bool:
        return self._apiserver is not None and self._apiserver.running()

    def etcd_running(self) -> bool:
        return self._etcd is not None and self._etcd.running()

    # -- etcd ------------------------------------------------------------------------------------------

    def etcd_revision(self) -> int:
        """etcd's current revision (what the API server reports as resourceVersion)."""
        answer = self._etcd_call("/v3/kv/range", {"key": base64.b64encode(b"\0").decode(), "count_only": True})
        return int(answer["header"]["revision"])

    def compact_etcd(self) -> int:
        """Compact etcd at its current revision, so every older resourceVersion answers 410 Gone; returns it.

        Uses etcd's own v3 API (its HTTP gateway), physically, so the compaction is done on return.
        """
        revision = self.etcd_revision()
        try:
            self._etcd_call("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            if "compacted" not in body:  # already compacted at this revision: nothing newer was written
                raise RuntimeError(f"etcd compaction at {revision} failed: {error.code} {body}") from error
        return revision

    def _etcd_call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.etcd_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return cast(dict[str, Any], json.loads(response.read()))

    # -- internals -------------------------------------------------------------------------------------

    def _write_credentials(self) -> None:
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"{",".join(ADMIN_GROUPS)}"\n'
            f'{self.controller_token},{CONTROLLER_USER},{CONTROLLER_USER},"{",".join(CONTROLLER_GROUPS)}"\n'
        )
        tokens.chmod(0o600)
        key, public = self.cert_dir / "service-account.key", self.cert_dir / "service-account.pub"
        if not (key.exists() and public.exists()):
            openssl = shutil.which("openssl")
            if openssl is None:
                raise FileNotFoundError("openssl is needed to generate the service-account signing key")
            # An ECDSA P-256 key (signs ES256 service-account tokens) and its public half (verifies them).
            for command in (
                [openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
                [openssl, "ec", "-in", str(key), "-pubout", "-out", str(public)],
            ):
                subprocess.run(command, check=True, capture_output=True, stdin=subprocess.DEVNULL)
            key.chmod(0o600)

    def _start_etcd(self) -> None:
        peer = f"http://{LOOPBACK}:{self.etcd_peer_port}"
        args = [
            str(self.binaries.etcd),
            "--name=test",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--initial-cluster-state=new",
            # A test cluster's data is thrown away: skipping fsync makes every write much faster.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        self._etcd = ManagedProcess("etcd", args, self.etcd_log, cwd=self.workdir)
        self._etcd.start()
        self._etcd.wait_ready(http_ready(f"{self.etcd_url}/health"), timeout=self.ready_timeout)

    def _apiserver_args(self) -> list[str]:
        key, public = self.cert_dir / "service-account.key", self.cert_dir / "service-account.pub"
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={self.cert_dir}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={public}",
            f"--service-account-signing-key-file={key}",
            # Only the range Service objects are given addresses from; nothing listens or routes there.
            "--service-cluster-ip-range=10.0.0.0/24",
            # Loopback is no valid Endpoints address: do not publish this server in the `kubernetes` Service.
            "--endpoint-reconciler-type=none",
            # Compaction only when a test asks for it (compact_etcd), never on a timer.
            "--etcd-compaction-interval=0",
            f"--watch-cache={'true' if self.watch_cache else 'false'}",
            "--profiling=false",
        ]

    def _start_apiserver(self) -> None:
        process = ManagedProcess("kube-apiserver", self._apiserver_args(), self.apiserver_log, cwd=self.workdir)
        self._apiserver = process
        process.start()
        process.wait_ready(self._readyz, timeout=self.ready_timeout)

    def _readyz(self) -> bool:
        request = urllib.request.Request(
            f"{self.server_url}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2, context=_unverified_tls()) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def _kubeconfig(self, user: str, token: str, namespace: str) -> dict[str, Any]:
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kube-test",
                    "cluster": {"server": self.server_url, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "kube-test", "user": user, "namespace": namespace}}],
            "current-context": user,
        }

    def _write_kubeconfigs(self) -> None:
        for path, config in (
            (self.admin_kubeconfig, self._kubeconfig("admin", self.admin_token, "default")),
            (
                self.controller_kubeconfig,
                self._kubeconfig(CONTROLLER_SERVICE_ACCOUNT, self.controller_token, CONTROLLER_NAMESPACE),
            ),
        ):
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            path.chmod(0o600)

    def _bootstrap(self) -> None:
        from lightkube import ApiError, Client, KubeConfig
        from lightkube.codecs import load_all_yaml
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
        from lightkube.resources.core_v1 import Namespace

        client = Client(KubeConfig.from_file(self.admin_kubeconfig), field_manager=FIELD_MANAGER)
        try:

            def apply(obj: Any) -> None:
                # The API server's own bootstrap creates `default` concurrently: retry a lost create race.
                for attempt in range(5):
                    try:
                        client.apply(obj, force=True)
                        return
                    except ApiError as error:
                        if error.status.code != 409 or attempt == 4:
                            raise
                        time.sleep(0.2)

            crd_names: list[str] = []
            for crd_file in self.crd_files:
                for obj in load_all_yaml(crd_file.read_text()):
                    apply(obj)
                    if isinstance(obj, CustomResourceDefinition) and obj.metadata and obj.metadata.name:
                        crd_names.append(obj.metadata.name)
            for namespace in self.namespaces:
                apply(Namespace(metadata=ObjectMeta(name=namespace)))
            for name in crd_names:

                def established(crd_name: str = name) -> bool:
                    crd = client.get(CustomResourceDefinition, crd_name)
                    conditions = (crd.status.conditions if crd.status else None) or []
                    return any(c.type == "Established" and c.status == "True" for c in conditions)

                _poll(established, self.ready_timeout, f"CRD {name} Established")
            for manifest in self.manifests:
                for obj in load_all_yaml(manifest.read_text()):
                    apply(obj)
            # RBAC objects reach the authorizer through its informers a moment after they are written.
            for permission in self.controller_permissions:
                _poll(
                    functools.partial(self._controller_allowed, client, permission),
                    self.ready_timeout,
                    f"the authorizer to allow the controller {permission}",
                )
        finally:
            client.close()

    @staticmethod
    def _controller_allowed(client: Any, permission: Permission) -> bool:
        from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
        from lightkube.resources.authorization_v1 import SubjectAccessReview

        review = SubjectAccessReview(
            spec=SubjectAccessReviewSpec(
                user=CONTROLLER_USER,
                groups=list(CONTROLLER_GROUPS),
                resourceAttributes=ResourceAttributes(
                    verb=permission.verb,
                    group=permission.group,
                    resource=permission.resource,
                    namespace=permission.namespace,
                ),
            )
        )
        answer = client.create(review)
        return bool(answer.status is not None and answer.status.allowed)

    # -- acting as a user ------------------------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str = "") -> list[str]:
        """`kubectl` of the API server's release, built with it, as the admin (the user's own tool, so a test proves
        what users run); its output lines. AssertionError with kubectl's stderr if it fails."""
        binary = self.binaries.kubectl
        assert binary is not None, "tools/testbin/build.sh kube printed no KUBECTL="
        result = subprocess.run(
            [str(binary), "--kubeconfig", str(self.admin_kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout.splitlines()

    def service_account_kubeconfig(self, name: str, namespace: str, path: Path) -> Path:
        """A kubeconfig for the ServiceAccount `namespace/name` (it must exist), with a token the API server
        issues for it (TokenRequest), as the kubelet mounts one into a pod."""
        from lightkube import Client, KubeConfig
        from lightkube.models.authentication_v1 import TokenRequestSpec
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.core_v1 import ServiceAccount

        client = Client(KubeConfig.from_file(self.admin_kubeconfig), field_manager=FIELD_MANAGER)
        try:
            request = ServiceAccount.Token(
                metadata=ObjectMeta(name=name, namespace=namespace),
                spec=TokenRequestSpec(audiences=[], expirationSeconds=3600),
            )
            answer: Any = client.create(request, name, namespace=namespace)
        finally:
            client.close()
        path.write_text(yaml.safe_dump(self._kubeconfig(name, answer.status.token, namespace), sort_keys=False))
        path.chmod(0o600)
        return path

    def __enter__(self) -> KubeTestCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise ProcessFailedError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def controller_rbac_manifest(workdir: Path) -> Path:
    """The controller's ServiceAccount and RBAC as `proxycontroller manifests` renders them when every namespace is
    routed (`namespaces: ["*"]`, the Proxies, Lease and Events in gloo-system), written into `workdir`: the rules
    the tests run the controller under, so they prove the renderer's RBAC."""
    from proxycontroller.config import ControllerConfig
    from proxycontroller.install.manifests import dump_manifests, render_rbac

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "controller-rbac.yaml"
    path.write_text(dump_manifests(render_rbac(ControllerConfig(namespaces=("*",)))))
    return path


@contextlib.contextmanager
def kube_test_cluster(
    workdir: Path,
    *,
    binaries: KubeBinaries | None = None,
    repo_root: Path | None = None,
    watch_cache: bool = False,
) -> Iterator[KubeTestCluster]:
    """A started `KubeTestCluster` with Gloo's CRDs and the controller's rendered RBAC; stopped on exit, also on
    error.

    `binaries` defaults to building them (instant when cached) with tools/testbin/build.sh kube.
    """
    root = repo_root or find_repo_root()
    cluster = KubeTestCluster(
        workdir,
        binaries or build_kube_binaries(root),
        crd_files=gloo_crd_files(root),
        manifests=[controller_rbac_manifest(workdir)],
        controller_permissions=CONTROLLER_PERMISSIONS,
        watch_cache=watch_cache,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
