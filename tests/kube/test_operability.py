"""Operating `proxycontroller run` on the real API server, as an operator sees it: JSON log lines naming the
objects, /metrics moving, Events on the Proxy, a clean SIGTERM that releases the Lease, `status` on a compressed
Proxy, and two controllers on one machine."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, KubeConfig
from lightkube.resources.coordination_v1 import Lease

from proxycontroller.testing.servers.apiserver import KubeTestCluster
from proxycontroller.testing.servers.processes import ManagedProcess, http_ready
from tests.kube.test_events import events_on
from tests.kube.test_run_command import ProxyCR, UpstreamCR, eventually
from tests.unit.test_cli_errors import invoke

NAMESPACE = "gloo-system"
REPORTING_CONTROLLER = "proxycontroller.io/proxycontroller"


def upstream(name: str, annotations: dict[str, str] | None = None) -> Any:
    metadata: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if annotations:
        metadata["annotations"] = annotations
    return UpstreamCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": metadata,
            "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 1}]}},
        }
    )


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, each parsed as one JSON object (a line that is not fails the test)."""
    lines = path.read_text().splitlines()
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{path}:{number} is not JSON: {line!r}") from exc
    return parsed


def served_urls(path: Path) -> dict[str, str]:
    """What the controller said it serves: `{"/metrics": url, "/healthz": url}` from its JSON log."""
    urls: dict[str, str] = {}
    for line in log_lines(path) if path.exists() else []:
        if line["message"].startswith("serving ") and "url" in line:
            for served in line["message"].removeprefix("serving ").split(" on ")[0].split(", "):
                urls[served] = line["url"]
    return urls


@contextlib.contextmanager
def controller(work_dir: Path, kubeconfig: Path, config: dict[str, Any], *extra: str) -> Iterator[ManagedProcess]:
    """`proxycontroller run` with JSON logs and both listeners on port 0; ready when it said where it listens
    and /readyz answers there."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "controller.yaml"
    config_path.write_text(yaml.safe_dump(config))
    args = [
        str(Path(sys.executable).parent / "proxycontroller"),
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--config",
        str(config_path),
        "--log-format",
        "json",
        "--metrics-bind-address",
        "127.0.0.1:0",
        "--health-probe-bind-address",
        "127.0.0.1:0",
        *extra,
    ]
    process = ManagedProcess("proxycontroller", args, work_dir / "controller.log")
    process.start()
    try:

        def ready() -> bool:
            urls = served_urls(process.log_path)
            return "/readyz" in urls and "/metrics" in urls and http_ready(urls["/readyz"] + "/readyz")()

        process.wait_ready(ready, timeout=60)
        yield process
    finally:
        process.stop()


def scrape(url: str) -> dict[str, float]:
    """/metrics as `{'name{labels}': value}` (Prometheus' text format)."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def routed(client: Client, name: str) -> list[str]:
    try:
        raw: Any = client.get(ProxyCR, name, namespace=NAMESPACE)
    except Exception:  # not written yet
        return []
    return [vh["name"] for vh in virtual_hosts(raw.to_dict())]


def virtual_hosts(proxy: dict[str, Any]) -> list[dict[str, Any]]:
    spec = proxy.get("spec") or {}
    if "compressedSpec" in spec:
        import base64
        import zlib

        spec = json.loads(zlib.decompress(base64.b64decode(spec["compressedSpec"])))
    listeners = spec.get("listeners") or [{}]
    return list((listeners[0].get("httpListener") or {}).get("virtualHosts") or [])


def test_json_logs_metrics_events_and_a_clean_stop(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    admin = Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests")
    proxy, instance = "operated-proxy", "operated"
    config = {
        "proxy": {"name": proxy},
        "instance": instance,
        "namespaces": [NAMESPACE],
        "reconcile": {"compressThresholdBytes": 64},  # every spec compressed: `status` must say so
    }
    names = ("ops-alpha", "ops-beta", "ops-bad")
    try:
        admin.create(upstream("ops-alpha"))
        with controller(tmp_path / "c", kube_cluster.controller_kubeconfig, config) as process:
            urls = served_urls(process.log_path)
            assert urls["/metrics"] != urls["/healthz"]  # two listeners, each on a port of its own
            eventually(lambda: routed(admin, proxy) == ["ops-alpha"])
            before = scrape(urls["/metrics"])

            admin.create(upstream("ops-beta"))
            eventually(lambda: routed(admin, proxy) == ["ops-alpha", "ops-beta"])
            admin.create(upstream("ops-bad", {"proxycontroller.io/expose": "yes"}))  # left out, with a reason
            admin.delete(UpstreamCR, "ops-alpha", namespace=NAMESPACE)
            eventually(lambda: routed(admin, proxy) == ["ops-beta"])

            stored: Any = admin.get(ProxyCR, proxy, namespace=NAMESPACE)
            assert stored.metadata.annotations["gloo.solo.io/compress"] == "true"
            uid = stored.metadata.uid

            def skip_event() -> Any:
                return next((e for e in events_on(admin, proxy) if e.get("reason") == "UpstreamSkipped"), None)

            event = eventually(skip_event)
            assert event["type"] == "Warning"
            assert "gloo-system/ops-bad" in event["note"]
            assert "proxycontroller.io/expose='yes'" in event["note"]
            regarding = event["regarding"]
            assert (regarding["kind"], regarding["namespace"], regarding["uid"]) == ("Proxy", NAMESPACE, uid)
            assert event["reportingController"] == REPORTING_CONTROLLER
            assert event["reportingInstance"] == socket.gethostname()

            after = eventually(lambda: (m := scrape(urls["/metrics"])).get(events_created) and m)
            for counter in (
                'controller_runtime_reconcile_total{controller="proxy",result="success"}',
                'proxycontroller_writes_total{operation="update"}',
                'workqueue_adds_total{name="proxy"}',
            ):
                assert after[counter] > before.get(counter, 0), counter
            assert after['controller_runtime_reconcile_time_seconds_count{controller="proxy"}'] > 0
            assert after['workqueue_depth{name="proxy"}'] in (0, 1)
            assert after[f'leader_election_master_status{{name="proxycontroller-{instance}"}}'] == 1

            config_path = tmp_path / "c" / "controller.yaml"
            kubeconfig = str(kube_cluster.controller_kubeconfig)
            status = invoke(["status", "--kubeconfig", kubeconfig, "--config", str(config_path)], tmp_path)
            assert status.returncode == 0, status.stderr
            row = next(line for line in status.stdout.splitlines() if line.startswith(f"{NAMESPACE}/{proxy} "))
            assert re.match(rf"{NAMESPACE}/{proxy} +1 +\d+ +yes \(\d+ bytes stored\)", row), status.stdout

            stopped = time.monotonic()
            process.stop(grace=15)
            took = time.monotonic() - stopped
        assert process.returncode == 0, process.log_tail()
        assert took < 10, f"SIGTERM took {took:.1f}s"
        lease: Any = admin.get(Lease, f"proxycontroller-{instance}", namespace=NAMESPACE)
        assert not lease.spec.holderIdentity, "the Lease was not released"

        lines = log_lines(process.log_path)
        assert {"time", "level", "logger", "message"} <= lines[0].keys()
        ours = [line for line in lines if line.get("proxy") == f"{NAMESPACE}/{proxy}"]
        updates = [line for line in ours if "updated" in line["message"]]
        assert any(line.get("added") == ["ops-beta"] and line.get("addedCount") == 1 for line in updates), updates
        assert any(line.get("removed") == ["ops-alpha"] and line.get("removedCount") == 1 for line in updates), updates
        skipped = [line for line in lines if line.get("upstream") == f"{NAMESPACE}/ops-bad"]
        assert skipped, "no log line names the upstream left out"
        assert (skipped[0]["level"], skipped[0]["reason"]) == ("warning", "UpstreamSkipped")
        assert skipped[0]["proxy"] == f"{NAMESPACE}/{proxy}"
        assert any(line["message"].startswith("SIGTERM: stopping") for line in lines)
    finally:
        for name in names:
            with contextlib.suppress(Exception):  # already gone
                admin.delete(UpstreamCR, name, namespace=NAMESPACE)
        with contextlib.suppress(Exception):
            admin.delete(ProxyCR, proxy, namespace=NAMESPACE)
        admin.close()


events_created = 'proxycontroller_events_total{outcome="created"}'


def test_two_controllers_on_one_machine_and_a_taken_port(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    """Port 0 everywhere: two replicas start side by side (one leads, the other stands by, both ready); a third
    asking for a port the first holds ends in one line naming the flag."""
    config = {"proxy": {"name": "side-by-side"}, "instance": "side-by-side", "namespaces": [NAMESPACE]}
    kubeconfig = kube_cluster.controller_kubeconfig
    with (
        controller(tmp_path / "a", kubeconfig, config) as first,
        controller(tmp_path / "b", kubeconfig, config) as second,
    ):
        first_urls, second_urls = served_urls(first.log_path), served_urls(second.log_path)
        assert len({*first_urls.values(), *second_urls.values()}) == 4
        leading = 'leader_election_master_status{name="proxycontroller-side-by-side"}'
        eventually(lambda: sorted(scrape(urls["/metrics"])[leading] for urls in (first_urls, second_urls)) == [0, 1])
        taken = first_urls["/metrics"].rpartition(":")[2]
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        args = ["run", "--kubeconfig", str(kubeconfig), "--config", str(tmp_path / "c.yaml")]
        third = invoke([*args, "--metrics-bind-address", f"127.0.0.1:{taken}"], tmp_path)
        assert third.returncode != 0
        assert third.stderr == f"error: --metrics-bind-address 127.0.0.1:{taken}: address already in use\n"
        assert first.running()
        assert second.running()
    assert first.returncode == 0
    assert second.returncode == 0


def test_a_foreign_proxy_and_gloos_rejection_are_events_on_the_proxy(
    kube_cluster: KubeTestCluster, tmp_path: Path
) -> None:
    """A Proxy at one of our names that is not ours is left alone with a NotManaged Event on it; Gloo's Rejected
    verdict on one of ours (written into its status, where Gloo writes it) is a Rejected Event on it."""
    admin = Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests")
    foreign, judged = "someone-elses-proxy", "judged-proxy"
    config = {
        "proxies": [{"name": foreign}, {"name": judged, "listeners": [{"name": "other", "bindPort": 8081}]}],
        "instance": "judged",
        "namespaces": [NAMESPACE],
    }
    try:
        admin.create(upstream("judged-alpha"))
        planted: Any = admin.create(
            ProxyCR.from_dict(
                {
                    "apiVersion": "gloo.solo.io/v1",
                    "kind": "Proxy",
                    "metadata": {"name": foreign, "namespace": NAMESPACE, "labels": {"team": "other"}},
                    "spec": {"listeners": []},
                }
            )
        )
        with controller(tmp_path / "c", kube_cluster.controller_kubeconfig, config) as process:
            eventually(lambda: routed(admin, judged) == ["judged-alpha"])
            written: Any = admin.get(ProxyCR, judged, namespace=NAMESPACE)
            raw = written.to_dict()
            raw["status"] = {"statuses": {NAMESPACE: {"state": 2, "reason": "invalid listener", "reportedBy": "gloo"}}}
            admin.replace(ProxyCR.from_dict(raw))

            def event(name: str, reason: str) -> Any:
                return next((e for e in events_on(admin, name) if e.get("reason") == reason), None)

            not_ours = eventually(lambda: event(foreign, "NotManaged"))
            assert not_ours["regarding"]["uid"] == planted.metadata.uid
            assert "is not managed by this controller" in not_ours["note"]
            rejected = eventually(lambda: event(judged, "Rejected"))
            assert rejected["type"] == "Warning"
            assert rejected["note"] == f"Gloo reports Proxy {NAMESPACE}/{judged} REJECTED: invalid listener"
            assert rejected["regarding"]["uid"] == written.metadata.uid
            unchanged: Any = admin.get(ProxyCR, foreign, namespace=NAMESPACE)
            assert unchanged.metadata.resourceVersion == planted.metadata.resourceVersion  # left alone
        lines = log_lines(process.log_path)
        assert any(line.get("proxy") == f"{NAMESPACE}/{foreign}" and line["level"] == "error" for line in lines)
        verdicts = [line for line in lines if line.get("state") == "REJECTED"]
        assert verdicts[0]["proxy"] == f"{NAMESPACE}/{judged}"
    finally:
        with contextlib.suppress(Exception):  # already gone
            admin.delete(UpstreamCR, "judged-alpha", namespace=NAMESPACE)
        for name in (foreign, judged):
            with contextlib.suppress(Exception):
                admin.delete(ProxyCR, name, namespace=NAMESPACE)
        admin.close()


def test_status_on_a_compressed_spec_nobody_can_read_says_so(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    admin = Client(KubeConfig.from_file(kube_cluster.admin_kubeconfig), field_manager="kube-tests")
    labels = {"app.kubernetes.io/managed-by": "proxycontroller", "app.kubernetes.io/instance": "damaged"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"proxy": {"name": "damaged-proxy"}, "instance": "damaged"}))
    try:
        admin.create(
            ProxyCR.from_dict(
                {
                    "apiVersion": "gloo.solo.io/v1",
                    "kind": "Proxy",
                    "metadata": {
                        "name": "damaged-proxy",
                        "namespace": NAMESPACE,
                        "labels": labels,
                        "annotations": {"gloo.solo.io/compress": "true"},
                    },
                    "spec": {"compressedSpec": "bm90IHpsaWI="},  # base64 of "not zlib"
                }
            )
        )
        kubeconfig = str(kube_cluster.controller_kubeconfig)
        result = invoke(["status", "--kubeconfig", kubeconfig, "--config", str(tmp_path / "config.yaml")], tmp_path)
        assert result.returncode == 0, result.stderr
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"{NAMESPACE}/damaged-proxy "))
        assert re.match(rf"{NAMESPACE}/damaged-proxy +\? +\? +yes \(12 bytes stored\) .*spec unreadable: ", row), row
        assert "Traceback" not in result.stderr
    finally:
        with contextlib.suppress(Exception):
            admin.delete(ProxyCR, "damaged-proxy", namespace=NAMESPACE)
        admin.close()


class FreezableRelay:
    """A TCP relay on loopback to the API server that can freeze: connections stay open and nothing passes, as
    over a network that drops every packet (requests hang instead of failing)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                return
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while self.frozen.is_set() and not self.closed.is_set():
                    time.sleep(0.05)
                sink.sendall(data)

    def close(self) -> None:
        self.closed.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_stop_that_cannot_finish_ends_at_the_grace_period(kube_cluster: KubeTestCluster, tmp_path: Path) -> None:
    """The API server stops answering (requests hang) just before SIGTERM: the write in flight (if the first one
    is still going) and releasing the Lease cannot finish, so the process exits after --graceful-shutdown-timeout,
    with status 1 and a line saying why, and nothing left dangling (no error from an abandoned request)."""
    host, _, port = kube_cluster.server_url.removeprefix("https://").rpartition(":")
    relay = FreezableRelay((host, int(port)))
    kubeconfig = yaml.safe_load(kube_cluster.controller_kubeconfig.read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://{host}:{relay.port}"
    relayed = tmp_path / "relayed.kubeconfig"
    relayed.write_text(yaml.safe_dump(kubeconfig))
    config = {"proxy": {"name": "frozen-proxy"}, "instance": "frozen", "namespaces": [NAMESPACE]}
    try:
        with controller(tmp_path / "c", relayed, config, "--graceful-shutdown-timeout", "2") as process:
            eventually(lambda: "became leader" in process.log_path.read_text())
            relay.frozen.set()
            stopped = time.monotonic()
            process.stop(grace=15)
            took = time.monotonic() - stopped
        assert process.returncode == 1, process.log_tail()
        assert 2 <= took < 8, f"took {took:.1f}s"
        *lines, last = process.log_path.read_text().splitlines()
        assert last == "error: did not stop within the grace period of 2s; exiting anyway"
        said = [json.loads(line) for line in lines]
        assert [line["message"] for line in said if line["level"] == "error"] == []  # nothing left unexplained
    finally:
        relay.close()
